"""Level 4 — pivot_root: the rootfs becomes the root mount, the host's / is unmounted.

Implement: enter_pivot_root(rootfs).   Man: pivot_root(2), umount2(2).
"""
import pytest


def test_root_is_the_rootfs(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--", "/bin/cat", "/etc/marker")
    assert (p.returncode, p.stdout) == (0, "I am the rootfs\n"), \
        f"expected exit 0 and the rootfs's /etc/marker; got {p.said}"


def test_the_escape_no_longer_works(minirun, rootfs, host_secret):
    if not (rootfs / "bin" / "escape").exists():
        pytest.skip("gcc is not installed: no escape program")
    path, text = host_secret
    p = minirun("--rootfs", rootfs, "--", "/bin/sh", "-c", f"cat /etc/marker; /bin/escape /bin/cat {path}")
    assert p.stdout.startswith("I am the rootfs"), f"expected the rootfs's /etc/marker first; got {p.said}"
    assert text not in p.stdout, "the escape reached the host: is the old root unmounted?"


def test_the_old_root_is_gone(minirun, rootfs):
    """Only the new root (and /proc) are left in the mount table."""
    p = minirun("--rootfs", rootfs, "--mount-proc", "--", "/bin/cat", "/proc/self/mountinfo")
    assert p.returncode == 0, p.said
    points = [line.split()[4] for line in p.stdout.splitlines()]
    assert sorted(points) == ["/", "/proc"], f"expected only / and /proc in the mount table; got {points}"


def test_working_directory_is_the_new_root(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--", "/bin/pwd")
    assert p.stdout == "/\n", f"pwd should print /; got {p.said}"
