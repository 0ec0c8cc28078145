"""`minicontainer doctor` on the machine it runs on: this host (cgroup v1 hybrid) and the cgroup-v2
VM (tests/vm/, where MC_IN_VM=1). What doctor says is compared with what the machine really does:
the cgroup layout with the mount table, the user-namespace line with a real unshare, the exit
status with a real ✗ (doctor run as an unprivileged user).

Only module_state's decision table is tested on made-up facts (a kernel with modules loaded,
loadable or missing), because this host's kernel has no module support at all; the VM stage
runs the same file on a Debian kernel whose modules are really loaded.
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

IN_VM = os.environ.get("MC_IN_VM") == "1"


def run_doctor(*args, user: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "minicontainer", "doctor", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def report():
    return doctor.diagnose()


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


def test_unprivileged_userns_line_matches_a_real_unshare(report):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    real = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "unshare", "--user", "true"], capture_output=True).returncode == 0
    finding = report.find("user namespaces", "unprivileged")
    assert finding.ok == real and not finding.required
    assert bool(finding.fix) != real


def test_environment_lines(report):
    vm = report.find("environment", "vm").detail
    if IN_VM:
        assert vm.startswith("inside a virtual machine")
    container = report.find("environment", "container").detail
    assert container.startswith("inside a container") == bool(doctor.detect_container())


def test_a_failure_exits_1_with_its_fix():
    """As an unprivileged user, the `root` line is ✗, with the fix, and doctor exits 1."""
    proc = run_doctor(user=65534)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ root" in proc.stdout and "fix: run `sudo minicontainer …`" in proc.stdout
    assert "problem(s) stop minicontainer here" in proc.stdout


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
    report.add("kernel", "root", False, "running as uid 1000", "run with sudo")
    report.add("tools", "gcc", False, "not installed", "apt-get install gcc", required=False)
    report.add("namespaces", "pid", True, "ok", "never shown")
    text = doctor.format_report(report)
    assert "fix: run with sudo" in text and "fix: apt-get install gcc" in text and "never shown" not in text
    assert "(optional)" in text and "✗ 1 problem(s)" in text
    assert not report.ok
