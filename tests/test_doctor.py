"""`minicontainer doctor` on the machine it runs on: this host (cgroup v1 hybrid) and the cgroup-v2
VM (tests/vm/, where MC_IN_VM=1). What doctor says is compared with what the machine really does:
the cgroup layout with the mount table, the user-namespace line with real unshare(1) calls, the
exit status with a real ✗ (doctor run as an unprivileged user where user namespaces are off —
inside a user namespace of the test's own, whose max_user_namespaces is 0), and doctor as the
unprivileged user test_rootless.py creates (its helpers are reused: `users`).

Made up: module_state's decision table (a kernel with modules loaded, loadable or missing),
because this host's kernel has no module support at all — the VM stage runs the same file on a
Debian kernel whose modules are really loaded; and the AppArmor sysctl (this kernel has no
AppArmor), over a real failure at the step AppArmor blocks.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from minicontainer import doctor
from minicontainer.cgroups.layout import detect_layout
from test_rootless import in_own_user_namespace, rootless_users

IN_VM = os.environ.get("MC_IN_VM") == "1"


def run_doctor(*args, user: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "minicontainer", "doctor", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def report():
    return doctor.diagnose()


@pytest.fixture(scope="module")
def users(busybox_tar):
    """test_rootless.py's two unprivileged users (made here once more, removed after)."""
    with rootless_users(busybox_tar) as made:
        yield made


pytestmark = pytest.mark.root


def test_this_machine_can_run_containers(report):
    failed = [f"{f.section}/{f.name}: {f.detail}" for f in report.findings if f.required and not f.ok]
    assert report.ok and not failed, failed


def test_cli_prints_one_line_per_finding_and_exits_0(report):
    proc = run_doctor()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    marks = [line for line in proc.stdout.splitlines() if line.startswith(("  ✓ ", "  ✗ "))]
    assert len(marks) == len(report.findings)
    for title in ("namespaces", "cgroups", "kernel modules", "user namespaces", "where this runs"):
        assert any(line.startswith(title) for line in proc.stdout.splitlines()), title
    assert proc.stdout.rstrip().endswith("✓ this machine can run minicontainer")


def test_json_format(report):
    data = json.loads(run_doctor("--format", "json").stdout)
    assert data["ok"] is True
    assert {(f["section"], f["name"]) for f in data["findings"]} == {(f.section, f.name) for f in report.findings}
    bad = run_doctor("--format", "yaml")
    assert bad.returncode == 125 and "use text or json" in bad.stderr


def test_namespaces_match_proc(report):
    for name in doctor.NAMESPACES:
        assert report.find("namespaces", name).ok == os.path.exists(f"/proc/self/ns/{name}")


def test_cgroup_layout_matches_the_mount_table(report):
    fs_type = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True).stdout.strip()
    layout = report.find("cgroups", "layout").detail
    if fs_type == "cgroup2fs":
        assert layout.startswith("unified") and "uses v2" in layout
    else:
        assert layout.startswith(("hybrid", "legacy")) and "uses v1" in layout
        assert layout.startswith("hybrid") == os.path.isfile("/sys/fs/cgroup/unified/cgroup.controllers")
    assert layout.split()[0].rstrip(":") == detect_layout().kind
    if IN_VM:
        assert layout.startswith("unified"), "the VM boots with cgroup_no_v1=all: pure cgroup v2"
    for controller in doctor.NEEDED_CONTROLLERS:
        assert report.find("cgroups", controller).ok, report.find("cgroups", controller).detail


def test_needed_modules_are_there(report):
    for name in ("overlay", "veth", "bridge"):
        finding = report.find("modules", name)
        assert finding.ok, finding.detail
    if IN_VM:   # the VM's initramfs insmods these (tests/vm/build_boot_files.py WANTED_MODULES)
        for name in ("overlay", "veth", "bridge"):
            assert doctor.module_state(name).state == "loaded"
    elif not os.path.exists("/proc/modules"):
        assert report.find("modules", "support").detail.startswith("this kernel has no loadable modules")
    lab08 = report.find("modules", "lab 08").detail        # which path of lab 08 applies here
    assert lab08.startswith("this kernel loads modules") == os.path.exists("/proc/modules"), lab08
    assert ("QEMU VM" in lab08) != os.path.exists("/proc/modules"), lab08


def test_unprivileged_userns_line_matches_a_real_unshare(report):
    """A user namespace that can be made *and used*: the shell equivalent of userns.probe()."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    real = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--user",
                           "--map-root-user", "unshare", "--uts", "true"], capture_output=True).returncode == 0
    finding = report.find("user namespaces", "unprivileged")
    assert finding.ok == real and not finding.required
    assert bool(finding.fix) != real
    assert report.find("kernel", "privileges").ok                        # root: whatever the line says


def test_environment_lines(report):
    vm = report.find("environment", "vm").detail
    if IN_VM:
        assert vm.startswith("inside a virtual machine")
    container = report.find("environment", "container").detail
    assert container.startswith("inside a container") == bool(doctor.detect_container())


def test_an_unprivileged_user_runs_rootless(users):
    """As an ordinary user (test_rootless's) where user namespaces work: privileges ✓, with what
    rootless mode cannot do; the delegated-cgroup line says why there is none (v1 host; in the
    VM this process is not in a delegated scope)."""
    user = users["single"]
    proc = user.mc("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("✓ this machine can run minicontainer")
    found = {f["name"]: f for f in json.loads(user.mc("doctor", "--format", "json").stdout)["findings"]}
    assert found["privileges"]["ok"] and found["unprivileged"]["ok"]
    assert found["privileges"]["detail"].startswith(f"running as uid {user.uid}: rootless mode")
    assert "bridge networks and -p" in found["privileges"]["detail"]              # what it cannot do
    delegated = found["delegated cgroup"]
    assert not delegated["ok"] and not delegated["required"] and delegated["fix"]
    assert "delegated cgroup" not in run_doctor().stdout                 # root has no such line


def test_a_failure_exits_1_with_its_fix():
    """For real, without touching the host's setting: user.max_user_namespaces=0 in a user
    namespace of our own, and doctor as an ordinary user (uid 1000) there. Rootless mode cannot
    work: privileges ✗ with the fix, and doctor exits 1."""
    out = in_own_user_namespace(
        "echo 0 > /proc/sys/user/max_user_namespaces && setpriv --reuid=1000 --regid=1000 --clear-groups "
        f"{sys.executable} -m minicontainer doctor; echo exit=$?")
    assert out.rstrip().endswith("exit=1"), out
    assert "✗ privileges          running as uid 1000, and rootless mode cannot work: unshare(CLONE_NEWUSER) " \
           "fails for an unprivileged user: user.max_user_namespaces is 0" in out
    assert "fix: sysctl -w user.max_user_namespaces=15000; or run `sudo minicontainer …`" in out
    assert "✗ unprivileged" in out and "problem(s) stop minicontainer here" in out


def test_a_namespace_made_but_not_usable_is_caught(monkeypatch):
    """Ubuntu's AppArmor restriction lets unshare(CLONE_NEWUSER) succeed and then refuses its
    root everything; a bare `unshare -U` check passes there. The same shape for real: in a user
    namespace of our own, max_uts_namespaces=0 — a user namespace can be made, a namespace
    inside it cannot. The AppArmor sysctl itself is faked (this kernel has no AppArmor)."""
    monkeypatch.setenv("MC_DOCTOR_SCRIPT", (
        "import json\n"
        "from minicontainer import doctor, userns\n"
        "real = userns._sysctl\n"
        "userns._sysctl = lambda n: '1' if n == 'kernel.apparmor_restrict_unprivileged_userns' else real(n)\n"
        "r = doctor.diagnose()\n"
        "print(json.dumps([r.find('kernel', 'privileges').__dict__, r.find('user namespaces', 'unprivileged').__dict__]))\n"))
    out = in_own_user_namespace(
        "echo 0 > /proc/sys/user/max_uts_namespaces && setpriv --reuid=1000 --regid=1000 --clear-groups sh -c "
        "'unshare --user true && echo bare-unshare-works; "
        f"{sys.executable} -c \"$MC_DOCTOR_SCRIPT\"'")
    lines = out.strip().splitlines()
    assert "bare-unshare-works" in lines, out
    privileges, unprivileged = json.loads(lines[-1])
    assert not privileges["ok"] and not unprivileged["ok"]
    assert "unshare(CLONE_NEWUTS) inside it fails for an unprivileged user: AppArmor restricts" in unprivileged["detail"]
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in unprivileged["fix"]
    assert privileges["fix"].startswith(unprivileged["fix"])


def test_kernel_version_parsing():
    assert doctor.kernel_version("6.18.44-fc-v509") == (6, 18)
    assert doctor.kernel_version("4.19.0-27-amd64") == (4, 19)
    assert doctor.kernel_version("garbage") == (0, 0)


@pytest.mark.parametrize("facts,expected", [
    (dict(loaded={"veth"}, builtin=set(), files={"veth"}, config=None), "loaded"),
    (dict(loaded=set(), builtin={"veth"}, files=set(), config=None), "builtin"),
    (dict(loaded=None, builtin=None, files=None, config={"VETH": "y"}), "builtin"),
    (dict(loaded=set(), builtin=set(), files={"veth"}, config=None), "loadable"),
    (dict(loaded=set(), builtin=None, files=None, config={"VETH": "m"}), "loadable"),
    (dict(loaded=set(), builtin=set(), files={"other"}, config={"VETH": "n"}), "missing"),
    (dict(loaded=None, builtin=None, files=None, config=None), "unknown"),
    (dict(loaded=set(), builtin=None, files=None, config=None), "unknown"),
])
def test_module_state_decision_table(monkeypatch, facts, expected):
    """Kernels this host does not have: made-up facts (see the module docstring)."""
    monkeypatch.setattr(doctor, "_FACTS", facts)
    assert doctor.module_state("veth").state == expected


def test_format_shows_fix_only_for_failures():
    report = doctor.Report()
    report.add("kernel", "privileges", False, "running as uid 1000", "run with sudo")
    report.add("tools", "gcc", False, "not installed", "apt-get install gcc", required=False)
    report.add("namespaces", "pid", True, "ok", "never shown")
    text = doctor.format_report(report)
    assert "fix: run with sudo" in text and "fix: apt-get install gcc" in text and "never shown" not in text
    assert "(optional)" in text and "✗ 1 problem(s)" in text
    assert not report.ok
