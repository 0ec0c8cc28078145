"""Tests of minicontainer.cgroups, in three kinds:

  parse      Docker's flags → Limits; pure Python, no root.
  fake tree  layout detection and the files written, on a directory tree that imitates cgroupfs
             (a FAKE: the kernel's part — filling a new cgroup directory with control files — is
             done by the `fake_kernel` fixture). Used so the v2 backend's writes (subtree_control,
             memory.max, cpu.max, cpu.weight …) are checked on a v1 host too.
  real       @pytest.mark.root: real cgroups on the host's own layout (v1 hybrid here; pure v2 in
             the QEMU VM stage, where the same tests run unchanged), with forked child processes.
             Also `partial v2` tests on the controller-less cgroup2 of a hybrid host
             (/sys/fs/cgroup/unified): mkdir, cgroup.procs, freeze, kill, rmdir without controllers.

Real tests create their groups under <mount>/minicontainer-test-PID/, apart from real containers.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from minicontainer.cgroups.base import PARENT   # MINICONTAINER_CGROUP_PARENT: the test session sets its own

from minicontainer.cgroups import (Limits, create_cgroup, detect_layout, list_cgroups, open_cgroup,
                                   parse_limits, remove_parent, shares_to_weight)
from minicontainer.cgroups import base as cg_base
from minicontainer.cgroups.limits import count_cpus, format_cpu_list, online_cpus
from minicontainer.errors import CgroupError, ConfigError

MiB = 1 << 20


# ================================================================================ parse
@pytest.mark.parametrize("text, expected", [
    ("32m", 32 * MiB), ("32M", 32 * MiB), ("32mb", 32 * MiB), ("32MiB", 32 * MiB), ("32 m", 32 * MiB),
    ("1g", 1 << 30), ("1.5g", 3 << 29), ("7000k", 7000 << 10), ("6291456", 6291456),
    ("6291456b", 6291456), (64 * MiB, 64 * MiB),
])
def test_memory_units_as_docker(text, expected):
    assert parse_limits(memory=text).memory == expected


@pytest.mark.parametrize("text", ["32x", "", "m", "-5m", "1.2.3m", "abc", "32 mm", "0x10"])
def test_memory_bad_value_is_one_clear_line(text):
    with pytest.raises(ConfigError) as err:
        parse_limits(memory=text)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f'invalid --memory "{text}"')
    assert "b, k, m or g" in message


@pytest.mark.parametrize("text", ["5m", "1k", "6291455"])
def test_memory_below_docker_minimum(text):
    with pytest.raises(ConfigError, match="minimum is 6m"):
        parse_limits(memory=text)


def test_memory_zero_means_no_limit():
    assert parse_limits(memory="0").memory is None


def test_memory_swap_rules():
    assert parse_limits(memory="32m").swap_total() == 64 * MiB           # Docker: swap = memory
    assert parse_limits(memory="32m", memory_swap="-1").swap_total() == -1
    assert parse_limits(memory="32m", memory_swap="32m").swap_total() == 32 * MiB
    assert parse_limits(memory="32m", memory_swap="1g").memory_swap == 1 << 30
    assert parse_limits(memory="32m", memory_swap="0").memory_swap is None
    with pytest.raises(ConfigError, match="at least --memory"):
        parse_limits(memory="32m", memory_swap="16m")
    with pytest.raises(ConfigError, match="needs --memory"):
        parse_limits(memory_swap="64m")
    with pytest.raises(ConfigError, match='invalid --memory-swap "lots"'):
        parse_limits(memory="32m", memory_swap="lots")


@pytest.mark.parametrize("value, expected", [(20, 20), ("20", 20), ("-1", None), (0, None), (None, None)])
def test_pids_limit(value, expected):
    assert parse_limits(pids_limit=value).pids_limit == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "-5", ""])
def test_pids_limit_bad(value):
    with pytest.raises(ConfigError, match=f'invalid --pids-limit "{value}"'):
        parse_limits(pids_limit=value)


def test_cpus_to_quota_and_period():
    limits = parse_limits(cpus="0.2")
    assert limits.nano_cpus == 200_000_000
    assert limits.cpu_quota() == (20_000, 100_000)
    assert parse_limits(cpus="0.01").cpu_quota() == (1000, 100_000)
    assert parse_limits(cpus=str(count_cpus())).cpu_quota() == (count_cpus() * 100_000, 100_000)
    assert parse_limits(cpus="0").nano_cpus is None


@pytest.mark.parametrize("value, words", [
    ("abc", "use a number of CPUs"), ("-1", "use a number of CPUs"), ("nan", "use a number"),
    ("inf", "use a number"), ("0.001", "the range is 0.01"), ("0.0000000001", "too precise"),
    ("1000", "the range is 0.01"),
])
def test_cpus_bad(value, words):
    with pytest.raises(ConfigError, match=words) as err:
        parse_limits(cpus=value)
    assert str(err.value).startswith(f'invalid --cpus "{value}"')


def test_cpu_shares_and_v2_weight():
    assert parse_limits(cpu_shares="512").cpu_shares == 512
    assert parse_limits(cpu_shares=0).cpu_shares is None
    # runc/crun's map: weight = 1 + ((shares - 2) * 9999) / 262142
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39 and parse_limits(cpu_shares=512).cpu_weight() == 20
    for bad in ("1", "262145", "abc", "-3", "1.5"):
        with pytest.raises(ConfigError, match=f'invalid --cpu-shares "{bad}": use a whole number from 2'):
            parse_limits(cpu_shares=bad)


def test_cpuset_cpus():
    online = online_cpus()
    first = min(online)
    assert parse_limits(cpuset_cpus=str(first)).cpuset_cpus == str(first)
    assert parse_limits(cpuset_cpus=format_cpu_list(online)).cpuset_cpus == format_cpu_list(online)
    for bad, words in (("0-a", "like 0-1,3"), ("0,,1", "like 0-1,3"), ("1-0", "low to high"),
                       ("4096", "CPU 4096 is not available")):
        with pytest.raises(ConfigError, match=words) as err:
            parse_limits(cpuset_cpus=bad)
        assert str(err.value).startswith(f'invalid --cpuset-cpus "{bad}"')


def test_no_flags_no_limits():
    limits = parse_limits()
    assert limits == Limits() and limits.empty
    assert Limits(**parse_limits(memory="64m", cpus="0.5").to_dict()) == parse_limits(memory="64m", cpus="0.5")


# ============================================================================ fake tree
V2_FILES = {
    "cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0", "cgroup.freeze": "0", "cgroup.kill": "",
    "memory.max": "max", "memory.swap.max": "max", "memory.current": "0", "memory.events": "oom_kill 0",
    "pids.max": "max", "pids.current": "0", "cpu.max": "max 100000", "cpu.weight": "100",
    "cpu.stat": "usage_usec 0", "cpuset.cpus": "", "cpuset.mems": "",
}
V1_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"},
    "cpuacct": {"cpuacct.usage": "0"},
    "memory": {"memory.limit_in_bytes": str((1 << 63) - 4096), "memory.memsw.limit_in_bytes": "0",
               "memory.usage_in_bytes": "0", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "freezer": {"freezer.state": "THAWED"},
}


def fill(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text)


@pytest.fixture
def fake_kernel(monkeypatch):
    """FAKE: what the kernel does on mkdir in cgroupfs (create the control files) and on rmdir."""
    def fake_make_dir(path, why, explain, exist_ok=False):
        if explain:
            explain(f"mkdir {'-p ' if exist_ok else ''}{path}", why)
        if path.exists() and exist_ok:
            return False
        path.mkdir()
        hierarchy = next(p for p in [path, *path.parents] if p.parent.name == "fake-cgroup")
        if (hierarchy / "cgroup.controllers").exists():
            fill(path, V2_FILES)
        else:
            fill(path, {"cgroup.procs": ""})
            for controller in hierarchy.name.split(","):
                fill(path, V1_FILES.get(controller, {}))
        return True

    def fake_remove_dir(path, why, explain, timeout=2.0):
        shutil.rmtree(path, ignore_errors=True)

    monkeypatch.setattr(cg_base, "make_dir", fake_make_dir)
    monkeypatch.setattr(cg_base, "remove_dir", fake_remove_dir)


@pytest.fixture
def fake_v2(tmp_path):
    """A fake unified tree: /…/fake-cgroup/root with the root's control files."""
    root = tmp_path / "fake-cgroup" / "root"
    root.mkdir(parents=True)
    fill(root, {"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": "",
                "cgroup.procs": "1"})
    return root


def make_fake_v1(tmp_path, hierarchies=("cpu,cpuacct", "cpuset", "memory", "pids", "freezer"),
                 unified=True) -> Path:
    """A fake v1 tree: one directory per hierarchy (co-mounted ones named "cpu,cpuacct")."""
    root = tmp_path / "fake-cgroup"
    root.mkdir()
    for name in hierarchies:
        (root / name).mkdir()
        fill(root / name, {"cgroup.procs": "1"})
        if name == "cpuset":
            fill(root / name, {"cpuset.cpus": "0-1", "cpuset.mems": "0"})
        for controller in name.split(","):
            if "," in name:
                (root / controller).symlink_to(name)   # as systemd does: cpu -> cpu,cpuacct
    if unified:
        (root / "unified").mkdir()
        fill(root / "unified", {"cgroup.controllers": ""})
    return root


def recorder():
    lines: list[str] = []
    return lines, lambda line, why: lines.append(line)


def test_layout_fake_v2(fake_v2):
    layout = detect_layout(fake_v2)
    assert (layout.kind, layout.version, layout.unified) == ("unified", 2, fake_v2)


def test_layout_fake_v1_comounted_and_hybrid(tmp_path):
    root = make_fake_v1(tmp_path)
    layout = detect_layout(root)
    assert (layout.kind, layout.version) == ("hybrid", 1)
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == root / "cpu,cpuacct"
    assert layout.v1["memory"] == root / "memory"


def test_layout_fake_legacy_separate_mounts(tmp_path):
    root = make_fake_v1(tmp_path, ("cpu", "cpuacct", "memory"), unified=False)
    layout = detect_layout(root)
    assert layout.kind == "legacy" and layout.v1["cpu"] != layout.v1["cpuacct"]


def test_layout_nothing_there(tmp_path):
    with pytest.raises(CgroupError, match="no cgroup"):
        detect_layout(tmp_path / "absent")


def test_layout_of_this_host_matches_mountinfo():
    fstype = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == "/sys/fs/cgroup":
            fstype = line.split(" - ")[1].split()[0]       # the last mount on the point wins
    layout = detect_layout()
    if fstype == "cgroup2":
        assert (layout.kind, layout.version) == ("unified", 2)
    else:
        assert layout.kind in ("hybrid", "legacy") and layout.version == 1 and layout.v1


def test_mountinfo_octal_escapes():
    from minicontainer.procfs import unescape
    assert unescape(r"/mnt/with\040space\134x") == "/mnt/with space\\x"


def test_v2_files_written(fake_kernel, fake_v2):
    lines, explain = recorder()
    limits = parse_limits(memory="32m", memory_swap="96m", pids_limit=20, cpus="0.2", cpu_shares=512,
                          cpuset_cpus="0")
    cg = create_cgroup("c1", limits, explain=explain, root=fake_v2)
    p = fake_v2 / PARENT / "c1"
    assert cg.paths == {"": p} and cg.version == 2
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+cpu +cpuset +memory +pids"
    assert (fake_v2 / PARENT / "cgroup.subtree_control").read_text() == "+cpu +cpuset +memory +pids"
    assert (p / "memory.max").read_text() == str(32 * MiB)
    assert (p / "memory.swap.max").read_text() == str(64 * MiB)      # v2: swap alone = 96m - 32m
    assert (p / "pids.max").read_text() == "20"
    assert (p / "cpu.max").read_text() == "20000 100000"
    assert (p / "cpu.weight").read_text() == "20"
    assert (p / "cpuset.cpus").read_text() == "0"
    # --explain: every mkdir and write as shell, the top-down order the kernel requires.
    assert lines == [
        f"echo '+cpu +cpuset +memory +pids' > {fake_v2}/cgroup.subtree_control",
        f"mkdir -p {fake_v2}/{PARENT}",
        f"echo '+cpu +cpuset +memory +pids' > {fake_v2}/{PARENT}/cgroup.subtree_control",
        f"mkdir {p}",
        f"echo 33554432 > {p}/memory.max",
        f"echo 67108864 > {p}/memory.swap.max",
        f"echo 20 > {p}/pids.max",
        f"echo '20000 100000' > {p}/cpu.max",
        f"echo 20 > {p}/cpu.weight",
        f"echo 0 > {p}/cpuset.cpus",
    ]
    cg.add_process(4242)
    assert (p / "cgroup.procs").read_text() == "4242"
    assert cg.stats() == {"memory_usage": 0, "memory_limit": 32 * MiB, "cpu_usage_ns": 0,
                          "pids_current": 0, "pids_limit": 20, "oom_kills": 0}


def test_v2_swap_unlimited_and_default(fake_kernel, fake_v2):
    cg = create_cgroup("c1", parse_limits(memory="32m", memory_swap="-1"), root=fake_v2)
    assert (cg.path / "memory.swap.max").read_text() == "max"
    cg = create_cgroup("c2", parse_limits(memory="32m"), root=fake_v2)
    assert (cg.path / "memory.swap.max").read_text() == str(32 * MiB)    # Docker: as much swap as memory


def test_v2_enables_only_offered_controllers(fake_kernel, fake_v2):
    (fake_v2 / "cgroup.controllers").write_text("memory io")
    create_cgroup("c1", parse_limits(memory="32m"), root=fake_v2)
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+memory"
    with pytest.raises(CgroupError, match="--cpus needs the cpu cgroup controller"):
        create_cgroup("c2", parse_limits(cpus="0.5"), root=fake_v2)
    assert not (fake_v2 / PARENT / "c2").exists()


def test_v2_oom_killed_reads_memory_events(fake_kernel, fake_v2):
    cg = create_cgroup("c1", root=fake_v2)
    assert cg.oom_killed() is False
    (cg.path / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0")
    assert cg.oom_killed() is True


def test_v1_files_written_comounted(fake_kernel, tmp_path):
    root = make_fake_v1(tmp_path)
    lines, explain = recorder()
    limits = parse_limits(memory="32m", pids_limit=20, cpus="0.2", cpu_shares=512, cpuset_cpus="0")
    cg = create_cgroup("c1", limits, explain=explain, root=root)
    assert cg.version == 1
    assert cg.paths["cpu"] == cg.paths["cpuacct"] == root / "cpu,cpuacct" / PARENT / "c1"
    assert len(cg.dirs) == 5                                     # cpu,cpuacct counted once
    mem, cpu, cpuset = cg.paths["memory"], cg.paths["cpu"], cg.paths["cpuset"]
    assert (mem / "memory.limit_in_bytes").read_text() == str(32 * MiB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(64 * MiB)
    assert (cg.paths["pids"] / "pids.max").read_text() == "20"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "20000"
    assert (cpu / "cpu.shares").read_text() == "512"
    # cpuset: copied into minicontainer/ from the root, then the container's own CPUs.
    assert (cpuset.parent / "cpuset.cpus").read_text() == "0-1"
    assert (cpuset / "cpuset.cpus").read_text() == "0" and (cpuset / "cpuset.mems").read_text() == "0"
    assert lines.count(f"mkdir {cpu}") == 1
    assert lines.index(f"echo 33554432 > {mem}/memory.limit_in_bytes") < \
        lines.index(f"echo 67108864 > {mem}/memory.memsw.limit_in_bytes")   # memsw may never be < limit
    cg.add_process(4242)
    assert all((d / "cgroup.procs").read_text() == "4242" for d in cg.dirs)


def test_v1_separate_cpu_and_cpuacct(fake_kernel, tmp_path):
    root = make_fake_v1(tmp_path, ("cpu", "cpuacct", "memory", "cpuset"), unified=False)
    cg = create_cgroup("c1", parse_limits(cpus="1"), root=root)
    assert cg.paths["cpu"] != cg.paths["cpuacct"] and len(cg.dirs) == 4
    assert (cg.paths["cpu"] / "cpu.cfs_quota_us").read_text() == "100000"
    with pytest.raises(CgroupError, match="--pids-limit needs the pids cgroup controller"):
        create_cgroup("c2", parse_limits(pids_limit=5), root=root)


def test_v1_no_swap_accounting_is_a_warning(fake_kernel, tmp_path, monkeypatch):
    monkeypatch.delitem(V1_FILES["memory"], "memory.memsw.limit_in_bytes")   # kernel without swapaccount
    root = make_fake_v1(tmp_path, ("memory",), unified=False)
    cg = create_cgroup("c1", parse_limits(memory="32m"), root=root)
    assert cg.warnings and "swap accounting" in cg.warnings[0]
    assert (cg.paths["memory"] / "memory.limit_in_bytes").read_text() == str(32 * MiB)


def test_list_and_open_fake(fake_kernel, fake_v2):
    create_cgroup("c1", root=fake_v2)
    create_cgroup("c2", root=fake_v2)
    assert list_cgroups(fake_v2) == ["c1", "c2"]
    assert open_cgroup("c1", fake_v2).path == fake_v2 / PARENT / "c1"
    assert open_cgroup("nope", fake_v2) is None


def test_bad_container_id(fake_v2):
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        create_cgroup("../etc", root=fake_v2)


# ================================================================================ real
TEST_PARENT = f"minicontainer-test-{os.getpid()}"


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def cgroups(request):
    """Make real cgroups on this host's layout (under TEST_PARENT); all removed afterwards."""
    if not is_root():
        pytest.skip("creating cgroups needs root")
    made, root = [], getattr(request, "param", "/sys/fs/cgroup")

    def make(limits=None, explain=None, name=None):
        cid = name or f"t{len(made)}"
        cg = create_cgroup(cid, limits, explain=explain, root=root, parent=TEST_PARENT)
        made.append(cg)
        return cg

    yield make
    for cg in made:
        cg.explain = None
        cg.remove()
    remove_parent(root, TEST_PARENT)


def need(controller: str) -> None:
    layout = detect_layout()
    have = layout.v1 if layout.version == 1 else \
        (layout.unified / "cgroup.controllers").read_text().split()
    if controller not in have:
        pytest.skip(f"this host has no {controller} cgroup controller")


def spawn(work=None):
    """fork() a child that waits on a pipe until go() is called, then runs work() and exits."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(w)
            os.read(r, 1)
            code = work() if work else (time.sleep(30) or 0)
        except BaseException:
            code = 99
        finally:
            os._exit(code or 0)
    os.close(r)

    def go():
        os.write(w, b"x")
        os.close(w)
    return pid, go


def exit_status(pid: int) -> int:
    """The shell's view of how a child ended: its code, or 128 + the killing signal."""
    status = os.waitpid(pid, 0)[1]
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@pytest.mark.root
def test_real_create_add_remove(cgroups):
    lines, explain = recorder()
    cg = cgroups(explain=explain)
    assert cg.exists() and all(d.is_dir() for d in cg.dirs)
    assert all(line.startswith(("mkdir ", "echo ")) for line in lines)
    pid, go = spawn()
    cg.add_process(pid)
    assert cg.procs() == [pid]
    membership = Path(f"/proc/{pid}/cgroup").read_text()
    assert membership.count(cg.relpath) == len(cg.dirs)          # one line per hierarchy joined
    cg.remove()                                                  # kills the sleeping child
    assert exit_status(pid) == 137
    assert not any(d.exists() for d in cg.dirs)
    cg.remove()                                                  # idempotent
    assert open_cgroup(cg.id, parent=TEST_PARENT) is None


@pytest.mark.root
def test_real_join_moves_the_calling_process(cgroups):
    """join() is what a just-forked child calls (v1: `echo 0 > tasks`, its one thread; v2:
    cgroup.procs): the whole process is in the group, in every hierarchy."""
    cg = cgroups()
    r, w = os.pipe()                                             # child → parent: its membership
    go_r, go_w = os.pipe()                                       # parent → child: looked, exit
    pid = os.fork()                                              # (one pipe each way: a child
    if pid == 0:                                                 # reading the pipe it wrote could
        try:                                                     # take its own first byte)
            cg.join()                                            # one thread, as the setup child
            os.write(w, Path("/proc/self/cgroup").read_bytes())
            os.read(go_r, 1)                                     # stay until the parent looked
        finally:
            os._exit(0)
    membership = os.read(r, 65536).decode()
    try:
        assert membership.count(cg.relpath) == len(cg.dirs)      # one line per hierarchy joined
        assert cg.procs() == [pid]
    finally:
        os.write(go_w, b"x"), os.waitpid(pid, 0)
        for fd in (r, w, go_r, go_w):
            os.close(fd)
    cg.remove()


@pytest.mark.root
def test_real_default_parent_and_list(cgroups):
    cg = create_cgroup(f"mctest-{os.getpid()}")                  # the default parent (the test session's)
    try:
        assert cg.id in list_cgroups()
        assert cg.relpath == f"/{PARENT}/mctest-{os.getpid()}"
    finally:
        cg.remove()
    assert cg.id not in list_cgroups()


@pytest.mark.root
def test_real_explain_names_the_version_files(cgroups):
    need("memory")
    lines, explain = recorder()
    cg = cgroups(parse_limits(memory="64m"), explain=explain)
    file = "memory.max" if cg.version == 2 else "memory.limit_in_bytes"
    assert f"echo 67108864 > {cg.paths.get('memory', cg.paths.get(''))}/{file}" in lines


@pytest.mark.root
def test_real_oom_kill_is_137_and_reported(cgroups):
    need("memory")
    cg = cgroups(parse_limits(memory="32m"))

    def hog():
        chunks = [b"\x01" * MiB for _ in range(100)]   # 100 MiB, every page touched
        return 3 if chunks else 4                      # reached only if the limit did not bite

    pid, go = spawn(hog)
    cg.add_process(pid)
    go()
    assert exit_status(pid) == 137
    assert cg.oom_killed() is True
    quiet = cgroups()
    assert quiet.oom_killed() is False


@pytest.mark.root
def test_real_pids_limit_stops_fork(cgroups):
    need("pids")
    cg = cgroups(parse_limits(pids_limit=20))
    r, w = os.pipe()

    def forker():
        kids = []
        try:
            for _ in range(60):                         # bounded: never a real fork bomb
                kid = os.fork()
                if kid == 0:
                    time.sleep(30)
                    os._exit(0)
                kids.append(kid)
        except BlockingIOError:                         # fork(): EAGAIN at pids.max
            pass
        os.write(w, str(len(kids)).encode())
        for kid in kids:                                # leave no orphan behind
            os.kill(kid, signal.SIGKILL)
            os.waitpid(kid, 0)
        return 0

    pid, go = spawn(forker)
    cg.add_process(pid)
    go()
    forked = int(os.read(r, 16))
    os.close(r), os.close(w)
    assert exit_status(pid) == 0
    assert forked == 19                                 # 20 tasks: the child and 19 forks
    assert cg.stats()["pids_limit"] == 20


@pytest.mark.root
def test_real_cpus_quota_ratio(cgroups):
    """--cpus 0.2: the group's own CPU usage over ~1.5 s of wall time is about 0.2 CPUs."""
    need("cpu")
    cg = cgroups(parse_limits(cpus="0.2"))

    def spin():
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        return 0

    pid, go = spawn(spin)
    cg.add_process(pid)
    start = time.monotonic()
    go()
    assert exit_status(pid) == 0
    wall = time.monotonic() - start
    ratio = cg.stats()["cpu_usage_ns"] / (wall * 1e9)
    assert 0.15 <= ratio <= 0.25, f"used {ratio:.3f} CPUs, wanted 0.2"


@pytest.mark.root
def test_real_cpuset_pins_the_process(cgroups):
    need("cpuset")
    last = str(max(online_cpus()))
    cg = cgroups(parse_limits(cpuset_cpus=last))
    pid, go = spawn()
    cg.add_process(pid)
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"Cpus_allowed_list:\t{last}\n" in status
    cg.remove()
    assert exit_status(pid) == 137


@pytest.mark.root
def test_real_cpu_shares_written(cgroups):
    need("cpu")
    cg = cgroups(parse_limits(cpu_shares=512))
    if cg.version == 2:
        assert (cg.path / "cpu.weight").read_text().strip() == "20"
    else:
        assert (cg.paths["cpu"] / "cpu.shares").read_text().strip() == "512"


@pytest.mark.root
def test_real_freeze_and_thaw(cgroups):
    cg = cgroups()
    if cg.version == 1 and "freezer" not in cg.paths:
        pytest.skip("this host has no freezer cgroup controller")

    def spin():
        while True:
            pass

    pid, go = spawn(spin)
    cg.add_process(pid)
    go()
    time.sleep(0.05)
    cg.freeze()
    used = cpu_time(pid)
    time.sleep(0.2)
    assert cpu_time(pid) == used                          # frozen: not one more tick
    cg.thaw()
    time.sleep(0.2)
    assert cpu_time(pid) > used
    cg.remove()
    assert exit_status(pid) == 137


def cpu_time(pid: int) -> int:
    """utime + stime of a process in clock ticks (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.root
def test_real_stats(cgroups):
    need("memory")
    cg = cgroups(parse_limits(memory="64m"))
    r, w = os.pipe()

    def hold():
        data = b"\x01" * (16 * MiB)
        os.write(w, b"!")
        time.sleep(30)
        return len(data)

    pid, go = spawn(hold)
    cg.add_process(pid)
    go()
    os.read(r, 1)
    stats = cg.stats()
    assert stats["memory_usage"] >= 16 * MiB
    assert stats["memory_limit"] == 64 * MiB
    assert stats["cpu_usage_ns"] > 0
    if stats["pids_current"] is not None:
        assert stats["pids_current"] == 1
    cg.remove()
    assert exit_status(pid) == 137
    os.close(r), os.close(w)
    unlimited = cgroups()
    assert unlimited.stats()["memory_limit"] is None


@pytest.mark.root
def test_real_remove_kills_every_process(cgroups):
    cg = cgroups()
    children = [spawn()[0] for _ in range(3)]
    for pid in children:
        cg.add_process(pid)
    assert cg.procs() == sorted(children)
    cg.remove()
    assert [exit_status(pid) for pid in children] == [137, 137, 137]
    assert not cg.exists()


@pytest.mark.root
def test_real_cleanup_after_a_crash(cgroups):
    """A minicontainer killed mid-run leaves a group; a later run finds it by id and removes it."""
    cg = cgroups(name="crashed")
    pid, _ = spawn()
    cg.add_process(pid)
    del cg
    assert "crashed" in list_cgroups(parent=TEST_PARENT)
    found = open_cgroup("crashed", parent=TEST_PARENT)
    assert found.procs() == [pid]
    found.remove()
    assert exit_status(pid) == 137
    assert "crashed" not in list_cgroups(parent=TEST_PARENT)


@pytest.mark.root
def test_real_same_id_twice_is_refused_and_kept(cgroups):
    cg = cgroups(name="twice")
    with pytest.raises(CgroupError, match="exists already"):
        cgroups(name="twice")
    assert cg.exists()


@pytest.mark.root
def test_real_kernel_refusal_leaves_nothing(cgroups):
    """A value the kernel rejects (a 0 us CPU quota: EINVAL) fails with the path and errno."""
    need("cpu")
    with pytest.raises(CgroupError) as err:
        cgroups(Limits(nano_cpus=1000), name="refused")
    assert "EINVAL" in str(err.value) and ("cpu.max" in str(err.value) or "cfs_quota_us" in str(err.value))
    assert open_cgroup("refused", parent=TEST_PARENT) is None


@pytest.mark.root
def test_real_v2_controllers_enabled_top_down(cgroups):
    cg = cgroups()
    if cg.version != 2:
        pytest.skip("v2 only: this host uses cgroup v1 (see the partial v2 tests below)")
    offered = set((cg.base / "cgroup.controllers").read_text().split())
    wanted = {"cpu", "cpuset", "memory", "pids"} & offered
    for group in (cg.base, cg.path.parent):
        assert wanted <= set((group / "cgroup.subtree_control").read_text().split())
    assert wanted <= set((cg.path / "cgroup.controllers").read_text().split())


@pytest.mark.root
def test_real_v2_no_internal_processes(cgroups):
    """v2: a parent that holds a process cannot hand controllers to children (EBUSY), and says so."""
    if not is_root():
        pytest.skip("needs root")
    layout = detect_layout()
    if layout.version != 2:
        pytest.skip("v2 only: the rule does not exist in cgroup v1")
    offered = (layout.unified / "cgroup.controllers").read_text().split()
    if "memory" not in offered:
        pytest.skip("no memory controller to enable")
    parent = f"mctest-nip-{os.getpid()}"
    (layout.unified / parent).mkdir()
    pid, _ = spawn()
    try:
        (layout.unified / parent / "cgroup.procs").write_text(str(pid))
        with pytest.raises(CgroupError, match="no-internal-processes"):
            create_cgroup("c1", parse_limits(memory="32m"), parent=parent)
    finally:
        os.kill(pid, signal.SIGKILL)
        exit_status(pid)
        (layout.unified / parent).rmdir()


# ---- partial v2 on a hybrid host: the controller-less cgroup2 at /sys/fs/cgroup/unified
UNIFIED = Path("/sys/fs/cgroup/unified")
partial_v2 = pytest.mark.skipif(not (UNIFIED / "cgroup.controllers").exists(),
                                reason="no hybrid cgroup2 at /sys/fs/cgroup/unified (pure v2 hosts "
                                       "run the full v2 tests above instead)")


@pytest.mark.root
@partial_v2
@pytest.mark.parametrize("cgroups", [str(UNIFIED)], indirect=True)
def test_partial_v2_lifecycle_without_controllers(cgroups):
    lines, explain = recorder()
    cg = cgroups(explain=explain)
    assert cg.version == 2 and cg.path.parent == UNIFIED / TEST_PARENT
    assert not any("subtree_control" in line for line in lines)   # nothing to enable here
    pid, go = spawn()
    cg.add_process(pid)
    assert f"0::{cg.relpath}\n" in Path(f"/proc/{pid}/cgroup").read_text()
    cg.freeze()                                                    # cgroup.freeze is core v2
    assert "frozen 1" in (cg.path / "cgroup.events").read_text()
    cg.thaw()
    assert cg.stats()["memory_usage"] is None                      # no memory controller here
    cg.kill_all()                                                  # cgroup.kill (5.14+)
    assert exit_status(pid) == 137
    cg.remove()
    assert not cg.path.exists()


@pytest.mark.root
@partial_v2
def test_partial_v2_limit_without_controller_is_refused():
    if not is_root():
        pytest.skip("needs root")
    with pytest.raises(CgroupError, match="--memory needs the memory cgroup controller"):
        create_cgroup("nomem", parse_limits(memory="32m"), root=UNIFIED, parent=TEST_PARENT)
    assert not (UNIFIED / TEST_PARENT / "nomem").exists()
