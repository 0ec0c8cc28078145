"""Smoke test of the cgroup-v2 VM stage: the guest really is a pure cgroup v2 machine whose limits bite,
and its kernel loads and unloads modules with the host's kmod (lab 08's VM path).

Runs inside the VM (tests/vm/vmrunner.py GUEST_SELECTION) and on any host with pure cgroup v2;
skipped on hosts with the v1/hybrid layout, where tests/test_vm_cgroup2.py boots the VM to run it.
See: Documentation/admin-guide/cgroup-v2.rst ("memory.max", "memory.events"), man 7 cgroups.
Shell equivalent of the OOM test:
    mkdir /sys/fs/cgroup/t && echo 32M >/sys/fs/cgroup/t/memory.max
    sh -c 'echo $$ >/sys/fs/cgroup/t/cgroup.procs; exec python3 -c "x = b\"x\" * (64 << 20)"'  # Killed
    grep oom_kill /sys/fs/cgroup/t/memory.events
and of the module test:  modprobe macvlan; cat /sys/module/macvlan/initstate; modprobe -r macvlan
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
IN_VM = os.environ.get("MC_IN_VM") == "1"


def mounted_fs_type(path: str) -> str:
    """File system type of the mount at exactly `path` (the last one listed wins), '' if none."""
    fs_type = ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == path:
            fs_type = fields[2]
    return fs_type


def read_keyed(path: Path) -> dict[str, int]:
    """A cgroup 'flat keyed' file ('key value' lines), like memory.events."""
    return {key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())}


pytestmark = [
    pytest.mark.skipif(mounted_fs_type(str(CGROUP_ROOT)) != "cgroup2",
                       reason="needs pure cgroup v2 at /sys/fs/cgroup; the VM stage (tests/test_vm_cgroup2.py) runs it"),
    pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root"),
]


@pytest.mark.skipif(not IN_VM, reason="loads a module into the running kernel: only in the VM, whose kernel is ours")
def test_kmod_loads_and_unloads_a_module():
    """The guest's /lib/modules/$(uname -r) (build_boot_files.py write_module_tree, linked by
    guest_init.sh) lets the host's kmod load macvlan and remove it again: what lab 08's modprobe task
    and its checker need. Seen in the kernel's own /sys/module, not in a tool's output."""
    module = Path("/sys/module/macvlan")
    assert not module.exists(), "macvlan is loaded before the test: nothing in the VM should load it"
    kmod = subprocess.run(["modprobe", "--version"], capture_output=True, text=True)
    assert kmod.stdout.startswith("kmod"), f"modprobe here is not kmod's: {kmod.stdout}{kmod.stderr}"
    loaded = subprocess.run(["modprobe", "macvlan"], capture_output=True, text=True)
    try:
        assert loaded.returncode == 0, loaded.stderr
        assert (module / "initstate").read_text().strip() == "live"
        assert "macvlan" in subprocess.run(["lsmod"], capture_output=True, text=True, check=True).stdout.split()
    finally:
        removed = subprocess.run(["modprobe", "-r", "macvlan"], capture_output=True, text=True)
    assert removed.returncode == 0 and not module.exists(), removed.stderr


def test_cgroup2_offers_the_controllers_the_runtime_uses():
    controllers = (CGROUP_ROOT / "cgroup.controllers").read_text().split()
    assert {"memory", "pids", "cpu"} <= set(controllers)


@pytest.mark.skipif(not IN_VM, reason="the VM's init enables every controller; a host's init chooses its own")
def test_vm_init_hands_every_controller_down():
    controllers = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    enabled = set((CGROUP_ROOT / "cgroup.subtree_control").read_text().split())
    assert controllers <= enabled


@pytest.fixture
def child_cgroup():
    """A fresh cgroup under the root, removed afterwards (rmdir works once no process is left in it)."""
    if "memory" not in (CGROUP_ROOT / "cgroup.subtree_control").read_text().split():
        pytest.skip("the memory controller is not enabled for the root's children here")
    path = CGROUP_ROOT / f"mc-smoke-{os.getpid()}"
    path.mkdir()
    yield path
    path.rmdir()


def test_memory_max_oom_kills_an_allocating_child(child_cgroup):
    (child_cgroup / "memory.max").write_text("32M")
    swap_max = child_cgroup / "memory.swap.max"
    if swap_max.exists():
        swap_max.write_text("0")      # with swap allowed, the child would swap instead of being killed

    def join_cgroup():                # runs in the child between fork and exec
        (child_cgroup / "cgroup.procs").write_text(str(os.getpid()))

    child = subprocess.run([sys.executable, "-c", "chunks = [b'x' * (1 << 20) for _ in range(128)]"],
                           preexec_fn=join_cgroup, capture_output=True)

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert read_keyed(child_cgroup / "memory.events")["oom_kill"] >= 1


@pytest.mark.vm_2cpus
def test_cpuset_pins_a_child_to_one_cpu(child_cgroup):
    """Runs in the VM stage's 2-vCPU boot: with two CPUs, pinning to the second one is observable."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs")
    if "cpuset" not in (CGROUP_ROOT / "cgroup.subtree_control").read_text().split():
        pytest.skip("the cpuset controller is not enabled for the root's children here")
    (child_cgroup / "cpuset.cpus").write_text(str(cpus[-1]))

    def join_cgroup():
        (child_cgroup / "cgroup.procs").write_text(str(os.getpid()))

    child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                           preexec_fn=join_cgroup, capture_output=True, text=True, check=True)

    assert child.stdout.strip() == str([cpus[-1]])
