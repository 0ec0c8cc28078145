"""Rootless mode (issue 7), for real: users this test creates run `minicontainer` themselves.

Two users, made with useradd and removed (with their homes and /etc/subuid lines) at the end:

    ranged   a range in /etc/subuid and /etc/subgid: newuidmap/newgidmap map 0 → the user,
             1…65536 → the range
    single   no range: the single-id map the kernel allows any user (0 → the user, nothing else)

Each imports busybox into its *own* state root (~/.local/share/minicontainer, the default rule
for a user) and runs containers as itself: subprocess(user=…, group=…, extra_groups=[]). The
test session is root in a private mount and network namespace (conftest.py); the users'
processes inherit both, as any child would. What the host sees is checked from here, as root:
/proc/PID/status of a running container, owners of the files it made.

Needs the checkout and its virtual environment readable by other users (they run this
Python); the first test says so clearly when they are not. Nothing here is faked but the two
sysctls the AppArmor message needs (this kernel has no AppArmor), and a v2 cgroup tree for the
delegation rule (this host is cgroup v1): both are said where they are used.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from archives import build, directory, file

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.root                   # creating users needs root


# ── the users ─────────────────────────────────────────────────────────────────────────────

@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path
    subuid: tuple[int, int] | None              # (start, count) of its /etc/subuid range

    @property
    def state(self) -> Path:
        return self.home / ".local" / "share" / "minicontainer"

    def env(self) -> dict:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "minicontainer", *args]

    def mc(self, *args, timeout=60, check=False) -> subprocess.CompletedProcess:
        """`minicontainer ARGS…` as this user (no --root: the default rule applies)."""
        p = subprocess.run(self.argv(*args), user=self.uid, group=self.gid, extra_groups=[],
                           env=self.env(), cwd=self.home, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} as {self.name} → {p.returncode}\n{p.stderr}")
        return p

    def popen(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), user=self.uid, group=self.gid, extra_groups=[],
                                env=self.env(), cwd=self.home, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def give(self, path: Path) -> Path:
        """Copy a file into the user's home, owned by the user."""
        target = self.home / path.name
        shutil.copyfile(path, target)
        os.chown(target, self.uid, self.gid)
        return target


def free_subordinate_start(count: int = 65536) -> int:
    """A start above every range in /etc/subuid and /etc/subgid (ranges must not overlap)."""
    end = 200000
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    end = max(end, int(parts[1]) + int(parts[2]))
        except FileNotFoundError:
            pass
    return -(-end // count) * count


def create_user(ranged: bool, homes: Path) -> User:
    """useradd, with the home below `homes` (the temporary directory's filesystem: in the
    cgroup-v2 VM /home is an overlayfs, which cannot hold a container's upper directory)."""
    import pwd
    name = f"mc-rl-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--create-home", "--home-dir", str(homes / name), "--shell", "/bin/sh",
                    "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    sub = None
    if ranged:
        start = free_subordinate_start()
        sub = (start, 65536)
        span = f"{start}-{start + 65535}"
        subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name], check=True,
                       capture_output=True)
    return User(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), sub)


def remove_user(user: User) -> None:
    """Kill what the user still runs (only processes of this test's own user), then userdel -r,
    which also removes its home and its /etc/subuid and /etc/subgid lines."""
    for _ in range(50):
        left = processes_of(user.uid)
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    subprocess.run(["userdel", "--remove", user.name], capture_output=True)
    shutil.rmtree(user.home, ignore_errors=True)       # files of subordinate ids userdel left


def processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            except (OSError, StopIteration):
                continue
            if str(uid) in uids:
                pids.append(int(entry))
    return pids


def unreadable_for_others() -> str:
    """The first directory on the way to this checkout or its Python that other users cannot
    enter (or file they cannot read), or ""."""
    paths = [REPO / "minicontainer" / "__init__.py", Path(sys.executable).resolve(),
             Path(sys.prefix) / "pyvenv.cfg"]
    for path in paths:
        for part in [*reversed(path.parents), path]:
            if not part.exists():
                continue
            mode = part.stat().st_mode
            needed = stat.S_IXOTH if part.is_dir() else stat.S_IROTH
            if not mode & needed:
                return str(part)
    return ""


@pytest.fixture(scope="module")
def users(busybox_tar):
    """{"ranged": User, "single": User}, each with busybox imported into its own state root."""
    with rootless_users(busybox_tar) as made:
        yield made


@contextlib.contextmanager
def rootless_users(busybox_tar: Path):
    """The two users, made and removed (the `users` fixture; test_doctor.py uses it too)."""
    blocked = unreadable_for_others()
    if blocked:
        pytest.fail(f"the rootless tests run minicontainer as a new unprivileged user, who cannot "
                    f"read {blocked}: make the checkout and its .venv readable (chmod o+rx on each "
                    f"directory on the way, o+r on files), or check it out elsewhere")
    made = {}
    homes = Path(tempfile.mkdtemp(prefix="mc-rootless-homes-"))
    homes.chmod(0o755)                                  # each user can reach its own home
    try:
        for kind in ("ranged", "single"):
            user = made[kind] = create_user(kind == "ranged", homes)
            user.mc("image", "import", str(user.give(busybox_tar)), "busybox", check=True)
        yield made
    finally:
        for user in made.values():
            remove_user(user)
        shutil.rmtree(homes, ignore_errors=True)


def status_ids(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.split() for k, _, v in (line.partition(":") for line in f) if k in ("Uid", "Gid")}


def no_containers_left(user: User) -> list[str]:
    root = user.state / "containers"
    return [p.name for p in root.iterdir() if not p.name.startswith(".")] if root.is_dir() else []


# ── the state root ────────────────────────────────────────────────────────────────────────

def test_each_user_keeps_its_state_in_its_own_home(users):
    for user in users.values():
        image = user.state / "images" / "busybox" / "latest" / "rootfs"
        assert image.is_dir()
        owners = {os.lstat(os.path.join(d, n)).st_uid for d, dirs, files in os.walk(image) for n in dirs + files}
        assert owners == {user.uid}                 # unpacking cannot chown: every file is the user's


def test_state_root_rule(monkeypatch, tmp_path):
    from minicontainer.state import state_root
    monkeypatch.delenv("MINICONTAINER_ROOT", raising=False)
    assert str(state_root()) == "/var/lib/minicontainer"              # root: the system's
    monkeypatch.setattr(os, "geteuid", lambda: 1000)                    # (as an ordinary user would)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert state_root() == tmp_path / ".local/share/minicontainer"
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert str(state_root()) == "/srv/data/minicontainer"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")             # the XDG spec
    assert state_root() == tmp_path / ".local/share/minicontainer"
    monkeypatch.setenv("MINICONTAINER_ROOT", "/elsewhere")
    assert str(state_root()) == "/elsewhere" and str(state_root("/given")) == "/given"


# ── running containers ────────────────────────────────────────────────────────────────────

SCRIPT = "id -u; id -g; cat /proc/self/uid_map; echo pid=$$; hostname; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status"


@pytest.mark.parametrize("kind", ["ranged", "single"])
def test_root_inside_is_the_user_outside(users, kind):
    user = users[kind]
    p = user.mc("run", "--rm", "--net", "none", "--hostname", "rootless", "busybox", "sh", "-c", SCRIPT)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["0", "0"]                                       # root inside
    maps = [line.split() for line in lines[2:-5]]
    expected = [["0", str(user.uid), "1"]]
    if kind == "ranged":
        expected.append(["1", str(user.subuid[0]), str(user.subuid[1])])   # newuidmap, /etc/subuid
    assert maps == expected
    assert lines[-5:-3] == ["pid=1", "rootless"]
    status = dict(line.split(":\t") for line in lines[-3:])
    assert status == {"CapEff": "00000000a80425fb", "NoNewPrivs": "1", "Seccomp": "2"}
    assert "limits" in p.stderr                                          # said, in one line
    assert no_containers_left(user) == []


@pytest.mark.parametrize("kind", ["ranged", "single"])
def test_a_running_container_is_the_user_on_the_host(users, kind):
    user = users[kind]
    proc = user.popen("run", "--name", "live", "--net", "none", "busybox", "sh", "-c", "echo ready; exec sleep 60")
    try:
        assert proc.stdout.readline() == "ready\n"
        rows = json.loads(user.mc("ps", "--format", "json", check=True).stdout)
        pid = next(r["pid"] for r in rows if r["name"] == "live")
        ids = status_ids(pid)                          # read here, as the host's root sees it
        assert ids["Uid"] == [str(user.uid)] * 4 and ids["Gid"] == [str(user.gid)] * 4
        with open(f"/proc/{pid}/uid_map") as f:
            assert f.read().split()[:3] == ["0", str(user.uid), "1"]
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        user.mc("kill", "live", check=True)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    user.mc("rm", "-f", "live", check=True)
    assert no_containers_left(user) == []


@pytest.mark.parametrize("kind", ["ranged", "single"])
def test_exec_joins_the_containers_user_namespace_first(users, kind):
    """exec as the user: setns(user) first (it gives the capabilities the other setns calls
    need), then the rest; root inside, PID 1 is the container's, the exit status comes back."""
    user = users[kind]
    user.mc("run", "-d", "--name", "ex", "--net", "none", "busybox", "sleep", "60", check=True)
    try:
        pid = json.loads(user.mc("inspect", "ex", check=True).stdout)[0]["State"]["Pid"]
        p = user.mc("exec", "ex", "sh", "-c", "whoami; cat /proc/1/cmdline; echo; readlink /proc/self/ns/user; "
                                              "echo $$; exit 7")
        assert p.returncode == 7, p.stderr
        whoami, cmdline, userns, inner_pid = p.stdout.splitlines()
        assert whoami == "root" and cmdline == "sleep\x0060\x00"     # PID 1 is the container's
        assert userns == os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        assert int(inner_pid) > 1                           # a PID of the container's namespace
        p = user.mc("exec", "-u", "1000", "ex", "id", "-u")
        if kind == "ranged":
            assert p.returncode == 0 and p.stdout == "1000\n", p.stderr
        else:                                               # the same refusal as run's
            assert p.returncode == 125 and "only root (uid 0) exists" in p.stderr, p.stderr
            assert len(p.stderr.strip().splitlines()) == 1
    finally:
        user.mc("rm", "-f", "ex")
    assert no_containers_left(user) == []


def test_without_a_cgroup_stats_and_pause_say_why(users):
    """No delegated cgroup here (v1 host; on v2 this test process is not in a delegated
    scope): the container runs without one, and what needs one says so in one line."""
    user = users["single"]
    user.mc("run", "-d", "--name", "nocg", "--net", "none", "busybox", "sleep", "60", check=True)
    try:
        for verb, status in ((["stats", "--no-stream"], 125), (["pause"], 1)):    # pause: Docker's
            p = user.mc(*verb, "nocg")                                            # multi-container verb
            assert p.returncode == status and len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert "no cgroup, because it was started rootless where none is delegated to you" in p.stderr
        assert user.mc("stats", "--no-stream", "--format", "json", check=True).stdout.strip() == "[]"
        info = json.loads(user.mc("inspect", "nocg", check=True).stdout)[0]
        assert info["Cgroup"] == {"Name": "", "Path": "", "Dirs": []} and info["State"]["Status"] == "running"
        top = user.mc("top", "nocg", check=True).stdout        # from PID 1's PID namespace instead
        assert "sleep 60" in top and str(info["State"]["Pid"]) in top
    finally:
        user.mc("rm", "-f", "nocg")
    assert no_containers_left(user) == []


def test_gc_as_a_user_leaves_roots_cgroups_alone(users):
    """A group of root's (here: one with a process, under the test session's parent) is not a
    user's garbage: gc as the user looks only in the tree delegated to it (none here)."""
    from minicontainer.cgroups import PARENT, create_cgroup
    user = users["single"]
    sleeper = subprocess.Popen(["sleep", "60"])
    cgroup = create_cgroup(f"rl-gc-{os.getpid()}", parent=PARENT)
    try:
        cgroup.add_process(sleeper.pid)
        p = subprocess.run(user.argv("gc", "--dry-run"), user=user.uid, group=user.gid, extra_groups=[],
                           env={**user.env(), "MINICONTAINER_CGROUP_PARENT": PARENT}, cwd=user.home,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "cgroup" not in p.stdout, p.stdout + p.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
        cgroup.remove()


def test_files_made_inside_belong_to_the_user_and_its_range(users):
    user = users["ranged"]
    user.mc("run", "--name", "files", "--net", "none", "busybox", "sh", "-c",
            "touch /by-root; mkdir -p /home/u/deep && touch /home/u/deep/f && chown -R 1000:1000 /home/u "
            "&& chmod 700 /home/u", check=True)
    (cid,) = no_containers_left(user)
    upper = user.state / "containers" / cid / "upper"
    assert os.lstat(upper / "by-root").st_uid == user.uid                   # root inside → the user
    assert os.lstat(upper / "home/u").st_uid == user.subuid[0] + 999        # uid 1000 → range + 999
    p = user.mc("run", "--rm", "--net", "none", "-u", "1000:1000", "busybox", "id", "-u")
    assert p.returncode == 0 and p.stdout == "1000\n"
    user.mc("rm", "files", check=True)                # files of uid 100999 too: removed in its userns
    assert no_containers_left(user) == []
    assert not (user.state / "containers" / cid).exists()


def test_single_id_map_has_only_root_and_says_why(users):
    user = users["single"]
    p = user.mc("run", "--rm", "--net", "none", "busybox", "sh", "-c",
                "cat /proc/self/setgroups; touch /mine; stat -c %u /mine")
    assert p.returncode == 0 and p.stdout.split() == ["deny", "0"]
    p = user.mc("run", "--rm", "--net", "none", "-u", "1000", "busybox", "true")
    assert p.returncode == 125 and "only root (uid 0) exists" in p.stderr and "/etc/subuid" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flags", [["-m", "64m"], ["--pids-limit", "10"], ["--cpus", "0.5"]])
def test_a_limit_is_refused_where_no_cgroup_is_delegated(users, flags):
    """This host has cgroup v1 (no delegation to users); on a v2 host this test process is
    not in a delegated cgroup either. A limit that is set must be enforced: 125, one line."""
    user = users["ranged"]
    p = user.mc("run", "--rm", "--net", "none", *flags, "busybox", "true")
    assert p.returncode == 125, p.stderr
    named = {"-m": "--memory"}.get(flags[0], flags[0])
    assert p.stderr.startswith(f"minicontainer: {named}: rootless mode cannot enforce limits here: ")
    assert len(p.stderr.strip().splitlines()) == 1
    assert no_containers_left(user) == []


def test_networks_none_and_host(users):
    user = users["ranged"]
    p = user.mc("run", "--rm", "--net", "none", "busybox", "cat", "/proc/net/dev", check=True)
    assert [line.split(":")[0].strip() for line in p.stdout.splitlines()[2:]] == ["lo"]
    p = user.mc("run", "--rm", "--net", "host", "busybox", "sh", "-c",
                "cat /proc/net/dev; touch /sys/x; echo rc=$?", check=True)
    with open("/proc/net/dev") as f:                   # the test session's network namespace
        ours = sorted(line.split(":")[0].strip() for line in f.read().splitlines()[2:])
    theirs = sorted(line.split(":")[0].strip() for line in p.stdout.splitlines()[2:-1])
    assert theirs == ours and "rc=1" in p.stdout        # the host's interfaces; /sys read-only
    p = user.mc("run", "--rm", "busybox", "cat", "/proc/net/dev")    # the default: bridge → none
    assert p.returncode == 0 and "--net none" in p.stderr
    for bad in (["-p", "8080:80"], ["--net", "mynet"]):
        p = user.mc("run", "--rm", *bad, "busybox", "true")
        assert p.returncode == 125 and "rootless" in p.stderr, bad


def test_an_image_imported_by_a_user_keeps_modes_but_not_owners(users, tmp_path):
    """Unpacking as a user cannot chown: every file is the user's (root inside); modes,
    setuid bits included, stay as the archive says."""
    user = users["single"]
    archive = build(tmp_path / "owners.tar", [directory("./"), directory("bin"),
                                               file("bin/su", b"#!", mode=0o4755, uid=0, gid=0),
                                               file("home/alice/notes", b"hi", mode=0o600, uid=1000, gid=1000)])
    user.mc("image", "import", str(user.give(archive)), "owners", check=True)
    rootfs = user.state / "images" / "owners" / "latest" / "rootfs"
    su, notes = os.lstat(rootfs / "bin/su"), os.lstat(rootfs / "home/alice/notes")
    assert (su.st_uid, stat.S_IMODE(su.st_mode)) == (user.uid, 0o4755)
    assert (notes.st_uid, stat.S_IMODE(notes.st_mode)) == (user.uid, 0o600)
    user.mc("image", "rm", "owners", check=True)


# ── the pieces, directly ──────────────────────────────────────────────────────────────────

def test_subordinate_ranges_are_read_by_name_or_uid(tmp_path):
    from minicontainer.userns import subordinate_range
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\n1001:300000:1000\nbroken line\nbob:400000:0\n")
    assert subordinate_range(str(f), "alice", 1000) == (100000, 65536)
    assert subordinate_range(str(f), "carol", 1001) == (300000, 1000)
    assert subordinate_range(str(f), "bob", 1002) is None          # a count of 0 is no range
    assert subordinate_range(str(tmp_path / "missing"), "alice", 1000) is None


def test_the_probe_finds_user_namespaces_usable_here():
    from minicontainer import userns
    ok, detail, fix = userns.probe()                   # as root: the probe drops to nobody first
    assert ok and fix == "", detail


def test_apparmor_restriction_is_named_with_its_fix(monkeypatch):
    """A fake: this kernel has no AppArmor, so the sysctl Ubuntu ≥ 23.10 sets is simulated."""
    import errno
    from minicontainer import userns
    knobs = {"user.max_user_namespaces": "15000", "kernel.apparmor_restrict_unprivileged_userns": "1"}
    monkeypatch.setattr(userns, "_sysctl", knobs.get)
    reason, fix = userns.why_userns_fails(errno.EPERM)
    assert "AppArmor" in reason and "kernel.apparmor_restrict_unprivileged_userns=0" in fix
    knobs["user.max_user_namespaces"] = "0"
    assert userns.why_userns_fails(errno.ENOSPC)[1] == "sysctl -w user.max_user_namespaces=15000"


def test_delegation_on_this_host_is_reported():
    from minicontainer.cgroups.delegation import find_delegated_cgroup
    from minicontainer.cgroups.layout import detect_layout
    where, why = find_delegated_cgroup(uid=4242)
    assert where is None
    assert ("cgroup v1" in why) if detect_layout().version == 1 else ("not delegated" in why)


def test_delegation_rule_on_a_v2_tree(tmp_path):
    """A fake cgroup v2 tree (this host is v1): a delegated subtree is the highest group, on
    the way up from our own, that belongs to the user — and we must not sit in it directly."""
    from minicontainer.cgroups.delegation import find_delegated_cgroup
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    service = tmp_path / "user.slice" / "user-4242.slice" / "user@4242.service"
    scope = service / "app.slice" / "term.scope"
    scope.mkdir(parents=True)
    for group in (service, service / "app.slice", scope):
        (group / "cgroup.procs").touch()
        os.chown(group, 4242, 4242)
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/user.slice/user-4242.slice/user@4242.service/app.slice/term.scope\n")
    assert find_delegated_cgroup(4242, tmp_path, str(proc)) == (service, "")
    assert "not delegated" in find_delegated_cgroup(4243, tmp_path, str(proc))[1]
    proc.write_text("0::/user.slice/user-4242.slice/user@4242.service\n")
    where, why = find_delegated_cgroup(4242, tmp_path, str(proc))
    assert where is None and "no processes" in why


def in_own_user_namespace(script: str) -> str:
    """Run `sh -c SCRIPT` as root of a new user namespace that maps uids 0…65535 to the
    same host uids (root writes that map from outside, as newuidmap would). Its sysctls under
    /proc/sys/user are its own: a limit set there binds only it and what it creates."""
    from minicontainer.kernel.namespaces import CLONE_NEWUSER, unshare
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                                  # never returns
        try:
            os.close(out_r), os.close(go_w)
            unshare(CLONE_NEWUSER)
            os.read(go_r, 1)                                      # the map is written
            os.dup2(out_w, 1), os.dup2(out_w, 2)
            os.execv("/bin/sh", ["sh", "-c", script])
        finally:
            os._exit(127)
    os.close(out_w), os.close(go_r)
    for _ in range(1000):                                         # until the child has unshared
        if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            break
        time.sleep(0.001)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 0 65536")
    os.write(go_w, b"x"), os.close(go_w)
    with os.fdopen(out_r) as f:
        output = f.read()
    os.waitpid(pid, 0)
    return output


def test_the_preflight_refuses_with_the_fix_where_user_namespaces_are_off():
    """For real, without touching the host's setting: user.max_user_namespaces=0 inside a
    user namespace of our own, then `run`'s preflight as an ordinary user (uid 1000) there."""
    plan = ("from minicontainer import userns; from minicontainer.config import ContainerConfig; "
            "from minicontainer.cgroups import Limits\n"
            "try:\n    userns.plan_container(ContainerConfig('busybox', net='none'), Limits())\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = in_own_user_namespace(
        "echo 0 > /proc/sys/user/max_user_namespaces && "
        f"{sys.executable} -c 'from minicontainer import userns; print(userns.probe())' && "
        f"setpriv --reuid=1000 --regid=1000 --clear-groups {sys.executable} -c \"{plan}\"")
    probe_line, refusal = out.strip().splitlines()[-2:]
    assert probe_line.startswith("(False, 'unshare(CLONE_NEWUSER) fails") and "max_user_namespaces is 0" in probe_line
    assert refusal.startswith("ContainerError rootless mode needs user namespaces")
    assert refusal.endswith("sysctl -w user.max_user_namespaces=15000")


@contextlib.contextmanager
def delegated_cgroup(user: User):
    """cgroup v2 only (on a v1 host the test is skipped; the cgroup-v2 VM stage runs it): root
    delegates a group to the user as systemd does (chown of the directory and of cgroup.procs,
    cgroup.subtree_control, cgroup.threads), with a child group cli/ for the user's commands.
    Yields (the delegated group, mc) where mc(*args) runs `minicontainer ARGS…` as the user from
    inside cli/ — as `systemd-run --user --scope -p Delegate=yes minicontainer …` would."""
    from minicontainer.cgroups.layout import detect_layout
    layout = detect_layout()
    if layout.version != 2:
        pytest.skip("cgroup v1 cannot be delegated to a user; the cgroup-v2 VM stage runs this test")
    top = layout.unified / f"mc-delegated-{user.name}"
    cli = top / "cli"
    top.mkdir()

    def enter_cli_group_then_become_the_user():       # in the child, still root: the move
        (cli / "cgroup.procs").write_text(str(os.getpid()))     # needs root's write on "/"
        os.setgroups([])
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)

    def mc(*args, popen=False):
        how = dict(preexec_fn=enter_cli_group_then_become_the_user, env=user.env(), cwd=user.home, text=True)
        if popen:
            return subprocess.Popen(user.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **how)
        return subprocess.run(user.argv(*args), capture_output=True, timeout=60, **how)
    try:
        cli.mkdir()
        for path in (top, top / "cgroup.procs", top / "cgroup.subtree_control", top / "cgroup.threads",
                     cli, cli / "cgroup.procs"):
            os.chown(path, user.uid, user.gid)
        yield top, mc
    finally:
        for group in (top / "minicontainer", cli, top):
            try:
                group.rmdir()
            except OSError:
                pass


def test_limits_apply_in_a_cgroup_delegated_to_the_user(users):
    """`run -m 64m` as the user makes <group>/minicontainer/<id> and the limit holds."""
    user = users["ranged"]
    with delegated_cgroup(user) as (top, mc):
        p = mc("run", "--rm", "--net", "none", "-m", "64m", "--pids-limit", "20",
               "busybox", "sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max")
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == [str(64 << 20), "20"] and "limits" not in p.stderr
        assert [g.name for g in (top / "minicontainer").iterdir() if g.is_dir()] == []   # removed after


def test_exec_stats_pause_find_the_delegated_cgroup(users):
    """The record names where the group was made (cgroup_root): stats, pause, inspect and exec
    find it there, not under /sys/fs/cgroup; gc as the user looks only in that tree."""
    user = users["ranged"]
    with delegated_cgroup(user) as (top, mc):
        proc = mc("run", "--name", "dl", "--net", "none", "-m", "64m", "busybox", "sh", "-c",
                  "echo ready; exec sleep 60", popen=True)
        try:
            assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.poll() is not None else ""
            info = json.loads(mc("inspect", "dl").stdout)[0]
            group = top / "minicontainer" / info["Id"]
            assert info["Cgroup"]["Dirs"] == [str(group)]
            p = mc("stats", "--no-stream", "--format", "json", "dl")
            assert p.returncode == 0, p.stderr
            (row,) = json.loads(p.stdout)
            assert row["memory_limit"] == 64 << 20 and row["pids"] >= 1
            p = mc("exec", "dl", "cat", "/proc/self/cgroup")            # joined: the root of its
            assert p.returncode == 0 and p.stdout == "0::/\n", p.stderr  # cgroup namespace
            assert mc("pause", "dl").returncode == 0
            assert (group / "cgroup.freeze").read_text() == "1\n"
            assert "paused" in mc("exec", "dl", "true").stderr
            assert mc("unpause", "dl").returncode == 0
            assert (group / "cgroup.freeze").read_text() == "0\n"
            p = mc("gc", "--dry-run")
            assert p.returncode == 0 and "cgroup" not in p.stdout, p.stdout   # its group has a record
            doctor = {f["name"]: f for f in json.loads(mc("doctor", "--format", "json").stdout)["findings"]}
            assert doctor["delegated cgroup"]["ok"] and str(top) in doctor["delegated cgroup"]["detail"]
            assert mc("rm", "-f", "dl").returncode == 0
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert [g.name for g in (top / "minicontainer").iterdir() if g.is_dir()] == []


def test_a_failed_cleanup_as_mapped_root_is_reported(tmp_path):
    """remove_tree's last resort runs in a child that is root of a user namespace: when what
    it runs fails, the reason comes back and is raised — never swallowed."""
    from minicontainer import userns
    from minicontainer.errors import ContainerError
    mapping = userns.IdMapping(user="root", uid_map=(userns.IdRange(0, 0, 1),),
                               gid_map=(userns.IdRange(0, 0, 1),), helpers=False)
    ran = tmp_path / "ran"
    userns.run_as_mapped_root(mapping, lambda: ran.write_text("yes"))      # the handshake works
    assert ran.read_text() == "yes"

    def fail():
        raise OSError(errno.EACCES, "Permission denied", str(tmp_path / "stuck"))
    with pytest.raises(ContainerError, match=f"Permission denied: {tmp_path / 'stuck'} "
                                             r"\(as root of a user namespace"):
        userns.run_as_mapped_root(mapping, fail)
