"""Each namespace, observed from inside the container and from the host (issue 2).

The container prints what it sees; the test compares that with what the host sees at the
same moment, using /proc/PID/ns/* inode numbers from the host side.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root


def start_sleeper(mc_root, *extra):
    """A running container (`sleep`), as a Popen of the CLI, plus its host PID once running."""
    name = f"iso-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run",
                             "--rm", "--name", name, *extra, "busybox", "sleep", "30"])
    from minicontainer.state import StateStore
    store = StateStore(mc_root)
    for _ in range(500):
        recs = [r for r in store.list() if r.name == name and r.status == "running"]
        if recs:
            return proc, recs[0]
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("container did not start")


def stop(proc, rec):
    os.kill(rec.pid, 9)
    assert proc.wait(timeout=10) == 137


def test_pid_namespace(mc):
    out = mc("run", "--rm", "busybox", "sh", "-c", "echo $$; ps -o pid,comm | wc -l", check=True).stdout.split()
    assert out[0] == "1"                       # the command is PID 1 inside
    assert int(out[1]) <= 4                    # header + sh + ps (+ wc): no host processes


def test_namespaces_differ_from_host(mc_root):
    proc, rec = start_sleeper(mc_root)
    try:
        for ns in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
            assert os.readlink(f"/proc/{rec.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        # the host sees the container's PID 1 as an ordinary process with a large PID…
        assert rec.pid > 1
        # …and inside its namespace the same process is PID 1 (NSpid lists both numbers)
        status = open(f"/proc/{rec.pid}/status").read()
        nspid = [l for l in status.splitlines() if l.startswith("NSpid:")][0].split()[1:]
        assert nspid == [str(rec.pid), "1"]
    finally:
        stop(proc, rec)


def test_hostname(mc):
    host = os.uname().nodename
    assert mc("run", "--rm", "--hostname", "box1", "busybox", "hostname", check=True).stdout.strip() == "box1"
    assert os.uname().nodename == host         # the host's hostname is unchanged
    # the default hostname is the container's short ID, as with Docker
    out = mc("run", "--rm", "busybox", "hostname", check=True).stdout.strip()
    assert len(out) == 12 and all(c in "0123456789abcdef" for c in out)


def test_mount_table(mc, mc_root):
    inside = mc("run", "--rm", "busybox", "cat", "/proc/self/mountinfo", check=True).stdout
    root_line = [l for l in inside.splitlines() if l.split()[4] == "/"][0]
    assert " - overlay overlay " in root_line  # / is the overlay of the image
    assert str(mc_root) not in " ".join(l.split()[4] for l in inside.splitlines())  # no host paths mounted
    assert "/work" not in [l.split()[4] for l in inside.splitlines()]
    # and the host side never sees the container's mounts
    proc, rec = start_sleeper(mc_root)
    try:
        assert "merged" not in open("/proc/self/mountinfo").read()
    finally:
        stop(proc, rec)


def test_network_only_lo(mc):
    out = mc("run", "--rm", "--net", "none", "busybox", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; "
             "ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok", check=True).stdout.split()
    assert out[0] == "lo" and len(out) == 3
    assert out[-1] == "ping-ok"                # lo is up


def test_ipc_namespace(mc):
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0
    qid = libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600)        # a message queue on the host
    assert qid >= 0
    try:
        assert f" {qid} " in open("/proc/sysvipc/msg").read()
        inside = mc("run", "--rm", "busybox", "cat", "/proc/sysvipc/msg", check=True).stdout
        assert len(inside.strip().splitlines()) == 1       # only the header: the queue is invisible
    finally:
        libc.msgctl(qid, IPC_RMID, None)


def test_dev_is_minimal(mc):
    out = mc("run", "--rm", "busybox", "ls", "/dev", check=True).stdout.split()
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd"} <= set(out)
    assert not any(d.startswith(("sd", "vd", "nvme", "mem", "kmsg")) for d in out)
    assert mc("run", "--rm", "busybox", "sh", "-c", "echo x > /dev/null && head -c4 /dev/zero | wc -c",
              check=True).stdout.strip() == "4"


def test_sys_is_read_only(mc):
    p = mc("run", "--rm", "busybox", "sh", "-c", "echo 1 > /sys/kernel/profiling")
    assert p.returncode != 0 and "Read-only" in p.stderr
