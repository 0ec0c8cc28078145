"""Network namespaces from the outside: reach into a container's network stack by file.

    man 7 network_namespaces, man 2 setns              shell: nsenter --net=/proc/PID/ns/net …

A network namespace is its own copy of interfaces, addresses, routes, firewall and ports.
/proc/PID/ns/net is a handle on the one PID lives in: opening it keeps that namespace alive,
and setns(fd, CLONE_NEWNET) moves the *calling thread* into it.

Two uses here:
  * the parent configures a container's eth0 from the host: a helper thread does setns and
    opens a netlink socket; the socket stays bound to the container's namespace for good,
    the thread ends, and the parent itself never leaves the host's namespace;
  * `--net container:NAME` (the basis of pods): the new container's setup child calls
    setns on the fd of NAME's namespace instead of unshare(CLONE_NEWNET) — both then see
    the same eth0, addresses and ports.
"""
from __future__ import annotations

import os
import threading

from ..errors import NetworkError, SyscallError
from ..kernel.namespaces import CLONE_NEWNET, setns


def open_netns(pid: int) -> int:
    """open("/proc/PID/ns/net", O_RDONLY|O_CLOEXEC) → fd; the namespace lives while it is open."""
    path = f"/proc/{pid}/ns/net"
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError("open", (path,), e.errno,
                           f"process {pid} is gone: is the container still running?") from None


def enter_netns(fd: int) -> None:
    """setns(fd, CLONE_NEWNET): the calling thread joins that network namespace.
    For `--net container:NAME`: call in the setup child instead of unsharing CLONE_NEWNET."""
    setns(fd, CLONE_NEWNET)


def same_netns(pid: int) -> bool:
    """True if PID is in our own network namespace (it never unshared one)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return False


def netns_id(fd: int) -> str:
    """A namespace's identity: the device and inode of its nsfs file ('net:[4026532…]')."""
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def netns_in_use(ident: str) -> bool:
    """Is any process still in the namespace `ident`? Scans /proc/*/ns/net (a few ms even
    with a thousand processes). When none is, the kernel is destroying the namespace and,
    with it, every interface inside — including both ends of a veth pair."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                st = os.stat(f"/proc/{entry.name}/ns/net")
            except OSError:                          # exited meanwhile, or a kernel thread
                continue
            if f"{st.st_dev}:{st.st_ino}" == ident:
                return True
    return False


def socket_in_netns(fd: int, make_socket):
    """Run make_socket() in a short-lived thread that first joins the namespace of `fd`.
    A socket belongs to the namespace it was created in, whoever uses it later."""
    result: dict = {}

    def work():
        try:
            enter_netns(fd)
            result["sock"] = make_socket()
        except BaseException as e:                   # hand the error to the calling thread
            result["error"] = e

    worker = threading.Thread(target=work, name="netns-socket")
    worker.start()
    worker.join()
    if "error" in result:
        err = result["error"]
        if isinstance(err, Exception):
            raise err
        raise NetworkError(f"opening a socket inside a network namespace failed: {err!r}")
    return result["sock"]
