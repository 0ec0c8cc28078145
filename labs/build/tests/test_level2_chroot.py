"""Level 2 — chroot: the command sees the rootfs as /.

Implement: enter_chroot(rootfs).   Man: chroot(2), chdir(2).
"""

import pytest


def test_root_is_the_rootfs(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--", "/bin/cat", "/etc/marker")
    assert (p.returncode, p.stdout) == (0, "I am the rootfs\n"), \
        f"expected exit 0 and the rootfs's /etc/marker; got {p.said}"


def test_host_files_are_not_found(minirun, rootfs, host_secret):
    path, _ = host_secret
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--", "/bin/cat", path)
    assert p.returncode == 1 and "No such file" in p.stderr, \
        f"cat {path} should not find the host's file inside the rootfs; got {p.said}"


def test_working_directory_is_inside(minirun, rootfs):
    """chroot does not move the working directory: without chdir("/") it stays outside the root."""
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--", "/bin/sh", "-c", "pwd; echo ---; ls /")
    where, _, listing = p.stdout.partition("---\n")
    assert where.strip() == "/", \
        f"pwd printed {where.strip()!r}, expected '/': where does the process stand after chroot? ({p.said})"
    assert "etc" in listing.split() and "marker" not in listing.split(), \
        f"ls / should list the rootfs (bin, etc, …); got {p.said}"


def test_but_root_can_escape(minirun, rootfs, host_secret):
    """The lesson of lab 01: a root process climbs out of a chroot (level 4 fixes it)."""
    if not (rootfs / "bin" / "escape").exists():
        pytest.skip("gcc is not installed: no escape program")
    path, text = host_secret
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--", "/bin/escape", "/bin/cat", path)
    assert text in p.stdout, f"the escape should print the host's secret file; got {p.said}"
