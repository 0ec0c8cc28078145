"""Level 3 — mounts: a private mount namespace and a /proc of its own.

Implement: make_mounts_private(), mount_proc(rootfs).   Man: mount_namespaces(7), mount(2), proc(5).
"""
from pathlib import Path


def mounted(path) -> bool:
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_proc_is_mounted_inside(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--mount-proc", "--", "/bin/cat", "/proc/self/comm")
    assert (p.returncode, p.stdout) == (0, "cat\n"), f"expected /proc/self/comm to say 'cat'; got {p.said}"


def test_the_host_never_sees_the_mount(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--mount-proc", "--", "/bin/sh", "-c",
                "grep -c ' /proc ' /proc/self/mountinfo")
    assert p.returncode == 0 and p.stdout.strip() not in ("", "0"), \
        f"expected a /proc line in the container's mountinfo; got {p.said}"
    assert not mounted(rootfs / "proc"), "the proc mount leaked into the host's mount namespace"


def test_mounts_are_private(minirun, rootfs):
    """No mount in the new namespace may be shared with the host's (no "shared:" tag)."""
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--mount-proc", "--", "/bin/sh", "-c",
                "cat /proc/self/mountinfo")
    assert p.returncode == 0, p.said
    shared = [line.split()[4] for line in p.stdout.splitlines() if " shared:" in line.split(" - ")[0]]
    assert not shared, f"these mounts are still shared with the host: {shared}"


def test_without_a_pid_namespace_proc_shows_the_host(minirun, rootfs):
    """/proc shows the PID namespace of whoever mounted it: still the host's (level 5 changes that)."""
    p = minirun("--rootfs", rootfs, "--isolation", "chroot", "--mount-proc", "--", "/bin/sh", "-c", "echo $$")
    assert p.returncode == 0 and p.stdout.strip().isdigit(), f"expected the shell's PID; got {p.said}"
    assert int(p.stdout) > 1, "the shell is PID 1: without --ns pid it should see the host's PIDs"
