"""Least privilege as a real container shows it (issue 7's acceptance, end to end)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_default_container_is_least_privilege(mc):
    f = status_fields(mc("run", "--rm", "busybox", "cat", "/proc/self/status", check=True).stdout)
    assert f["CapEff"].strip() == "00000000a80425fb"
    assert f["CapBnd"].strip() == "00000000a80425fb"
    assert f["CapInh"].strip() == f["CapAmb"].strip() == "0000000000000000"
    assert f["NoNewPrivs"].strip() == "1"
    assert f["Seccomp"].strip() == "2"


def test_non_root_user_has_no_capabilities(mc):
    f = status_fields(mc("run", "--rm", "-u", "1000", "busybox", "cat", "/proc/self/status", check=True).stdout)
    assert f["CapEff"].strip() == "0000000000000000"


def test_cap_drop_all(mc):
    f = status_fields(mc("run", "--rm", "--cap-drop", "ALL", "busybox", "cat", "/proc/self/status",
                         check=True).stdout)
    assert f["CapEff"].strip() == f["CapBnd"].strip() == "0000000000000000"


def test_mount_is_refused_inside(mc):
    p = mc("run", "--rm", "busybox", "mount", "-t", "tmpfs", "tmpfs", "/mnt")
    assert p.returncode != 0 and "permission denied" in p.stderr      # EPERM: no CAP_SYS_ADMIN


def test_device_nodes_cannot_be_opened(mc):
    """CAP_MKNOD is in the default set, but every writable mount is nodev: a node for
    /dev/kmsg (c 1 11) made in /tmp or /dev can be created and not opened."""
    for where in ("/tmp", "/dev"):
        p = mc("run", "--rm", "busybox", "sh", "-c", f"mknod {where}/k c 1 11 && head -c1 {where}/k")
        assert p.returncode != 0 and "Permission denied" in p.stderr, (where, p.stderr)


def test_masked_and_read_only_paths(mc):
    p = mc("run", "--rm", "busybox", "sh", "-c",
           "wc -c < /proc/keys; echo x > /proc/sys/kernel/hostname; echo rc=$?")
    lines = p.stdout.split()
    assert lines[0] == "0"                     # /proc/keys reads as empty (/dev/null over it)
    assert "rc=1" in p.stdout and "Read-only file system" in p.stderr


def test_only_stdio_file_descriptors(mc):
    out = mc("run", "--rm", "busybox", "ls", "/proc/self/fd", check=True).stdout.split()
    assert sorted(out) == ["0", "1", "2", "3"]  # 3 is ls's own handle on the directory


def test_privileged_warns(mc):
    p = mc("run", "--rm", "--privileged", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status")
    assert p.returncode == 0 and "Seccomp:\t0" in p.stdout
    assert "warning" in p.stderr
