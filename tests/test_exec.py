"""`minicontainer exec` (issue 4): a new process in every namespace, the cgroup and the root of a
running container, under its security policy; its exit status comes back."""
from __future__ import annotations

import os

import pytest

from test_lifecycle import record, until

pytestmark = pytest.mark.root


def inode(path: str) -> int:
    return int(os.readlink(path).split("[")[1].rstrip("]"))


def test_exec_joins_every_namespace(mc, mc_root, detached):
    detached("busybox", "sleep", "30", name="ex-ns")
    rec = record(mc_root, "ex-ns")
    out = mc("exec", "ex-ns", "sh", "-c",
             "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done; echo $$; hostname",
             check=True).stdout.splitlines()
    for line, ns in zip(out, ("pid", "mnt", "uts", "ipc", "net", "cgroup")):
        assert int(line.split("[")[1].rstrip("]")) == inode(f"/proc/{rec.pid}/ns/{ns}"), ns
        assert inode(f"/proc/{rec.pid}/ns/{ns}") != inode(f"/proc/self/ns/{ns}")
    assert int(out[6]) > 1                                  # a PID inside the container's namespace
    assert out[7] == rec.hostname


def test_exec_sees_the_container_root_and_cgroup(mc, mc_root, detached):
    cid = detached("busybox", "sh", "-c", "echo from-pid-1 > /tmp/mark; exec sleep 30", name="ex-root")
    until(lambda: (mc_root / "containers" / cid / "upper" / "tmp" / "mark").exists(), what="mark")
    assert mc("exec", "ex-root", "cat", "/tmp/mark", check=True).stdout == "from-pid-1\n"
    mountinfo = mc("exec", "ex-root", "cat", "/proc/self/mountinfo", check=True).stdout
    assert [l.split()[4] for l in mountinfo.splitlines() if l.split()[4] == "/"] == ["/"]
    assert not [l for l in mountinfo.splitlines() if str(mc_root) in l.split()[4]]   # no host path
    out = mc("exec", "ex-root", "sh", "-c", "sleep 0.5 & cat /proc/self/cgroup; wait", check=True).stdout
    assert all(line.endswith(":/") for line in out.splitlines())   # the root of its cgroup namespace
    from minicontainer.cgroups import open_cgroup
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "exec", "ex-root",
                          "sleep", "2"])
    try:
        cg = open_cgroup(cid)
        until(lambda: len(cg.procs()) >= 3, what="exec'd process in the cgroup")  # sleep 30, E1, sleep 2
    finally:
        p.wait(timeout=20)


def test_exec_chroot_isolation(mc, mc_root, detached):
    """--isolation chroot: the mount namespace's root is the host's; exec still lands in PID 1's root."""
    detached("--isolation", "chroot", "busybox", "sleep", "30", name="ex-chroot")
    assert mc("exec", "ex-chroot", "cat", "/etc/os-release", check=True).stdout.startswith('NAME="minicontainer')


def test_exec_exit_status(mc, detached):
    detached("busybox", "sleep", "30", name="ex-st")
    assert mc("exec", "ex-st", "sh", "-c", "exit 5").returncode == 5
    assert mc("exec", "ex-st", "sh", "-c", "kill -9 $$").returncode == 137
    p = mc("exec", "ex-st", "nosuchcommand")
    assert p.returncode == 127 and "not found" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_exec_options(mc, monkeypatch, detached):
    detached("-e", "FROM_RUN=1", "busybox", "sleep", "30", name="ex-opt")
    monkeypatch.setenv("MC_EXEC_COPY", "copied")
    out = mc("exec", "-u", "student", "-w", "/tmp", "-e", "A=b c", "-e", "MC_EXEC_COPY", "ex-opt", "sh", "-c",
             'echo "$(id -u):$(id -g)|$(pwd)|$A|$MC_EXEC_COPY|$FROM_RUN|$HOME"', check=True).stdout
    assert out == "1000:1000|/tmp|b c|copied|1|/home/student\n"
    assert mc("exec", "-i", "ex-opt", "cat", input="through stdin").stdout == "through stdin"
    assert mc("exec", "ex-opt", "cat", input="not passed").stdout == ""


def test_exec_security_policy(mc, detached):
    """The same least privilege as PID 1: capabilities, no_new_privs, seccomp."""
    detached("--cap-drop", "NET_RAW", "busybox", "sleep", "30", name="ex-sec")
    status = dict(l.split(":\t", 1) for l in mc("exec", "ex-sec", "cat", "/proc/self/status",
                                                check=True).stdout.splitlines() if ":\t" in l)
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    assert int(status["CapEff"], 16) == 0xa80425fb & ~(1 << 13)      # Docker's set minus NET_RAW
    p = mc("exec", "ex-sec", "mount", "-t", "tmpfs", "x", "/mnt")
    assert p.returncode != 0                                          # no CAP_SYS_ADMIN, no mount


def test_exec_not_running(mc, mc_root, detached):
    detached("busybox", "true", name="ex-dead")
    until(lambda: record(mc_root, "ex-dead").status == "exited", what="exit")
    p = mc("exec", "ex-dead", "true")
    assert p.returncode == 125 and p.stderr.strip() == "minicontainer: container ex-dead is not running " \
                                                       "(see `minicontainer ps -a`)"
    p = mc("exec", "no-such-container", "true")
    assert p.returncode == 125 and "no such container" in p.stderr


def test_exec_explain(mc, detached):
    detached("busybox", "sleep", "30", name="ex-expl")
    err = mc("exec", "--explain", "ex-expl", "true", check=True).stderr
    assert "setns(" in err and "nsenter --target PID" in err and "chroot" in err


def test_exec_library(mc_root, detached):
    from minicontainer import api
    detached("busybox", "sleep", "30", name="ex-api")
    assert api.exec_in_container("ex-api", ["sh", "-c", "exit 4"], root=mc_root) == 4
