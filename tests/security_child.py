"""Helpers for the least-privilege tests: run a step in a forked child, try raw system calls.

Capabilities, no_new_privs and seccomp filters can never be undone, so every test applies them
in a child made with os.fork() and reports back through a pipe; pytest itself keeps its power.
Each child also gets its own mount namespace (private propagation) first: masking /proc in a
child must not stack mounts in the namespace pytest and the other tests share.
"""
from __future__ import annotations

import ctypes
import json
import os

from minicontainer.kernel import syscall_table
from minicontainer.kernel.seccomp import native_arch

libc = ctypes.CDLL(None, use_errno=True)
TABLE = syscall_table.BY_ARCH[native_arch()]
RESULT_FD = -1          # in_child's answer pipe, in the child


def syscall(name: str, *args: int) -> tuple[int, int]:
    """(return value, errno) of a raw system call, by name, for this architecture."""
    c_args = [ctypes.c_long(a) if a < 0 else ctypes.c_ulong(a) for a in args]
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(TABLE[name]), *c_args)
    return ret, (ctypes.get_errno() if ret == -1 else 0)


def private_mounts() -> None:
    """unshare(CLONE_NEWNS) and make every mount private: what this process mounts stays here."""
    from minicontainer.kernel.mount import MS_PRIVATE, MS_REC, mount
    from minicontainer.kernel.namespaces import CLONE_NEWNS, unshare
    if os.geteuid() == 0:
        unshare(CLONE_NEWNS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)


def in_child(fn, *args):
    """fn(*args) in a forked child; returns its (JSON-able) result or raises its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # never return into pytest from here
        global RESULT_FD
        RESULT_FD = w                              # a test closing descriptors must keep this one
        try:
            os.close(r)
            private_mounts()
            answer = json.dumps({"ok": fn(*args)})
        except BaseException as e:                 # noqa: BLE001 — reported to the parent
            answer = json.dumps({"error": f"{type(e).__name__}: {e}"})
        try:
            os.write(w, answer.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "the child died without an answer"}')
    if "error" in result:
        raise ChildError(result["error"])
    return result["ok"]


class ChildError(Exception):
    """An exception raised in the child, as its type name and message."""


def exec_in_child(prepare, argv: list[str]) -> tuple[int, str]:
    """prepare() in a forked child, then execve(argv) with stdout into a pipe.
    Returns (exit status, stdout); a failure in prepare() is raised as ChildError."""
    r, w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r), os.close(err_r)
            private_mounts()
            prepare()
            os.dup2(w, 1)
            os.execv(argv[0], argv)                 # err_w is close-on-exec: EOF means success
        except BaseException as e:                  # noqa: BLE001
            os.write(err_w, f"{type(e).__name__}: {e}".encode())
        os._exit(125)
    os.close(w), os.close(err_w)
    with os.fdopen(r, "rb") as out, os.fdopen(err_r, "rb") as err:
        stdout, error = out.read().decode(), err.read().decode()
    _, status = os.waitpid(pid, 0)
    if error:
        raise ChildError(error)
    return os.waitstatus_to_exitcode(status), stdout


def status_fields(text: str) -> dict[str, str]:
    """/proc/PID/status text → {'CapEff': '00000000a80425fb', 'Uid': '0 0 0 0', …}."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = " ".join(value.split())
    return fields


def own_status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return status_fields(f.read())
