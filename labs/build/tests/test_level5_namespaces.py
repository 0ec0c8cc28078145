"""Level 5 — namespaces: own hostname, PID 1, IPC, network.

Implement: namespace_flags(names), set_hostname(name), become_pid1().   Man: namespaces(7), unshare(2).
"""
import os
import socket


def test_namespace_flags_are_ored(minirun, rootfs):
    p = minirun("--ns", "uts,ipc,net", "--", "sh", "-c",
                "readlink /proc/self/ns/uts /proc/self/ns/ipc /proc/self/ns/net")
    assert p.returncode == 0, p.said
    inside = p.stdout.split()
    assert len(inside) == 3, f"expected three namespace links; got {p.said}"
    for name, link in zip(("uts", "ipc", "net"), inside):
        assert link != os.readlink(f"/proc/self/ns/{name}"), f"not in a new {name} namespace"


def test_bad_namespace_name_fails(minirun):
    p = minirun("--ns", "uts,nosuch", "--", "true")
    assert p.returncode == 125 and "nosuch" in p.stderr, \
        f"expected exit 125 and a message naming 'nosuch'; got {p.said}"


def test_own_hostname(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--hostname", "box", "--", "/bin/hostname")
    assert (p.returncode, p.stdout) == (0, "box\n"), f"expected hostname to print box; got {p.said}"
    assert socket.gethostname() != "box", "the host was renamed: set the name only in a new UTS namespace"


def test_pid_1(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--ns", "pid", "--mount-proc", "--", "/bin/sh", "-c", "echo $$; ps -o pid | wc -l")
    assert p.returncode == 0 and len(p.stdout.split()) == 2, f"expected a PID and a count; got {p.said}"
    pid, lines = p.stdout.split()
    assert pid == "1", f"the command is PID {pid}: it should be PID 1 of its new PID namespace"
    assert int(lines) <= 4, f"ps lists {int(lines) - 1} processes: it should see only the namespace's own"


def test_exit_status_of_pid_1_comes_back(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--ns", "pid", "--", "/bin/sh", "-c", "exit 7")
    assert p.returncode == 7, f"PID 1 exited with 7, minirun should too; got {p.said}"


def test_empty_network(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--ns", "net", "--", "/bin/sh", "-c", "ls /sys/class/net 2>/dev/null; ip -o link | wc -l")
    assert p.returncode == 0 and p.stdout.split()[-1:] == ["1"], \
        f"expected only one link (lo) in a new network namespace; got {p.said}"
