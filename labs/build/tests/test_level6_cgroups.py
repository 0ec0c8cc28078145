"""Level 6 — cgroups: memory and process limits the kernel enforces.

Implement: create_cgroup(paths, memory, pids), join_cgroup(paths, pid), remove_cgroup(paths).
Man: cgroups(7); Documentation/admin-guide/cgroup-v2.rst.
"""
import sys
from pathlib import Path


def test_joins_its_cgroup(minirun):
    p = minirun("--pids", "100", "--", "cat", "/proc/self/cgroup")
    assert p.returncode == 0, p.said
    assert "minirun-" in p.stdout, f"the command is not in a minirun cgroup:\n{p.stdout}"


FORKER = """
import os, time
n = 0
try:
    for _ in range(40):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except BlockingIOError:          # fork(): EAGAIN, the pids limit
    pass
print(n)
"""


def test_pids_limit(minirun):
    """With --pids 20, a program that forks 40 times gets 19 children (itself is the 20th).
    The children are still sleeping when it exits: remove_cgroup must kill them."""
    p = minirun("--pids", "20", "--", sys.executable, "-c", FORKER)
    assert p.returncode == 0 and p.stdout.strip().isdigit(), p.said
    assert int(p.stdout) == 19, f"{p.stdout.strip()} forks succeeded with --pids 20"


def test_memory_limit_is_an_oom_kill(minirun):
    p = minirun("--memory", str(32 << 20), "--", "sh", "-c", "head -c 200m /dev/zero | tail > /dev/null")
    assert p.returncode == 137, f"expected 137 (SIGKILL by the OOM killer); got {p.said}"


def test_cgroup_is_removed_afterwards(minirun):
    """Even when the command leaves a background process behind: kill it, then rmdir."""
    p = minirun("--pids", "50", "--", "sh", "-c", "sleep 30 & echo started")
    assert p.returncode == 0, p.said
    root = Path("/sys/fs/cgroup")
    leftovers = list(root.glob("minirun/minirun-*")) + list(root.glob("*/minirun/minirun-*"))
    assert not leftovers, f"cgroups left behind: {leftovers}"
