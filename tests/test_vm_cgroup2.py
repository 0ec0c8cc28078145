"""The cgroup-v2 VM stage: run the cgroup tests again on a kernel that has nothing but cgroup v2.

This machine mounts cgroups in the v1 "hybrid" layout, most users' machines in the pure v2 one, and
the runtime must work on both. This module boots ONE QEMU VM (tests/vm/vmrunner.py) with a Debian
kernel booted with cgroup_no_v1=all, runs vmrunner.GUEST_SELECTION there with pytest from this same
checkout, and fails with the guest's own pytest output when anything in the guest fails. Tests marked
`vm_2cpus` (cpuset pinning) run in a second, short boot with 2 vCPUs, only if there are any.
Run only this stage: `make test-vm`, or `python tests/vm/vmrunner.py` to watch the guest live.
Skip it in a quick local run with MC_SKIP_VM=1; with CI=true nothing skips it: it fails instead.
"""
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def load_vmrunner():
    """tests/vm is not a package: load the runner from its file."""
    path = Path(__file__).parent / "vm" / "vmrunner.py"
    spec = importlib.util.spec_from_file_location("vmrunner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vmrunner"] = module
    spec.loader.exec_module(module)
    return module


vmrunner = load_vmrunner()
IN_CI = os.environ.get("CI") == "true"


def why_vm_cannot_run() -> str:
    """The reason this machine cannot run the VM stage, or '' when it can."""
    if os.environ.get("MC_SKIP_VM") == "1":
        return "MC_SKIP_VM=1 is set"
    if platform.machine() != "x86_64":
        return f"the VM stage boots an amd64 kernel; this machine is {platform.machine()}"
    if shutil.which(vmrunner.QEMU) is None:
        return f"{vmrunner.QEMU} is not installed: run scripts/setup.sh (apt-get install qemu-system-x86)"
    if os.geteuid() != 0:
        return "the VM stage needs root (it downloads the kernel into /var/cache and the guest tests need root)"
    return ""


def require_vm() -> None:
    if os.environ.get("MC_IN_VM") == "1":
        pytest.skip("already inside the cgroup-v2 VM")
    reason = why_vm_cannot_run()
    if reason and IN_CI:
        pytest.fail(f"the cgroup-v2 VM stage must run in CI, but {reason}", pytrace=False)
    if reason:
        pytest.skip(f"cgroup-v2 VM stage skipped: {reason}")


def stream_if_verbose():
    """MC_VM_VERBOSE=1 shows the guest's output live on stderr (pytest captures stdout)."""
    if os.environ.get("MC_VM_VERBOSE") == "1":
        return lambda line: print(f"[vm] {line}", file=sys.__stderr__, flush=True)
    return None


def call_or_fail(function, *args, **kwargs):
    """vmrunner raises RuntimeError for a setup problem (nothing selected, prepare.sh failed):
    report its message alone, not a traceback."""
    try:
        return function(*args, **kwargs)
    except RuntimeError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


def selection_args(markers: str) -> list[str]:
    return call_or_fail(vmrunner.selection_args, markers)


def boot_and_run(markers: str, cpus: int):
    run = call_or_fail(vmrunner.run_guest_pytest, selection_args(markers), cpus=cpus,
                       on_line=stream_if_verbose())
    boot = f"{run.boot_seconds:.1f} s" if run.boot_seconds is not None else "never"
    print(f"vm ({cpus} vCPU, {run.accel}): guest's first line after {boot}, done after {run.seconds:.1f} s")
    for note in run.notes:
        print(f"vm: note: {note}")
    if run.status == 0:
        vmrunner.discard_run_dir(run)
    return run


@pytest.fixture(scope="module")
def guest_run():
    """The one boot that runs the whole selection with 1 vCPU."""
    require_vm()
    return boot_and_run(f"not {vmrunner.TWO_CPU_MARKER}", cpus=1)


@pytest.fixture(scope="module")
def two_cpu_guest_run():
    require_vm()
    if vmrunner.count_selected(selection_args(vmrunner.TWO_CPU_MARKER)) == 0:
        pytest.skip(f"no test in the VM selection is marked {vmrunner.TWO_CPU_MARKER}")
    return boot_and_run(vmrunner.TWO_CPU_MARKER, cpus=2)


def test_guest_runs_on_pure_cgroup_v2(guest_run):
    if not guest_run.began:
        pytest.fail(guest_run.describe_failure(), pytrace=False)
    fs_type, _, controllers = guest_run.header("CGROUP").partition(" controllers: ")
    assert fs_type == "cgroup2", guest_run.output
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= set(controllers.split())


def test_guest_selection_passes(guest_run):
    if guest_run.status != 0:
        pytest.fail(guest_run.describe_failure(), pytrace=False)


def test_guest_two_cpu_selection_passes(two_cpu_guest_run):
    if two_cpu_guest_run.status != 0:
        pytest.fail(two_cpu_guest_run.describe_failure(), pytrace=False)


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox, the guest init's shell")
def test_a_command_for_the_guest_runs_in_bash_with_kmod(tmp_path):
    """`make vm-shell CMD=…` (vmrunner --sh, lab 08): the guest's init runs job.sh with busybox sh,
    which prefers its own applets (lsmod, modprobe, ls …). The command must reach the host's bash,
    with kmod's lsmod and the venv's minicontainer. Checked here, without a boot: busybox sh runs
    the same job.sh on the host (its `cd` is to this checkout)."""
    vmrunner.write_job(tmp_path, vmrunner.CHECKOUT, sys.executable, [],
                       shell='echo "bash=$BASH_VERSION"; type -P lsmod minicontainer')
    job = subprocess.run(["/bin/busybox", "sh", str(tmp_path / "job.sh")], capture_output=True, text=True)
    bash, lsmod, minicontainer = (job.stdout.splitlines() + ["", "", ""])[:3]
    assert job.returncode == 0 and bash != "bash=", job.stdout + job.stderr
    assert Path(lsmod).resolve().name == "kmod", f"lsmod is {lsmod}"
    assert minicontainer == str(Path(sys.executable).parent / "minicontainer"), job.stdout
