"""libc through ctypes: the few system calls Python 3.11's os module does not offer.

Every wrapper raises SyscallError naming the call, its arguments and the errno, e.g.
    mount("overlay", "/var/lib/minicontainer/…/merged", "overlay"): EINVAL (Invalid argument)
so an error message tells a student exactly which step the kernel refused.
"""
from __future__ import annotations

import ctypes
import os

from ..errors import SyscallError

libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers for calls glibc has no wrapper for (pivot_root) — per architecture.
SYSCALL_NUMBERS = {
    "x86_64": {"pivot_root": 155, "bpf": 321, "close_range": 436, "openat2": 437, "open_tree": 428,
               "move_mount": 429, "pidfd_getfd": 438},
    "aarch64": {"pivot_root": 41, "bpf": 280, "close_range": 436, "openat2": 437, "open_tree": 428,
                "move_mount": 429, "pidfd_getfd": 438},
}


def syscall_number(name: str) -> int:
    arch = os.uname().machine
    try:
        return SYSCALL_NUMBERS[arch][name]
    except KeyError:
        raise SyscallError(name, (), 38, f"no syscall number known for {arch}") from None


def check(ret: int, call: str, *args) -> int:
    """Raise SyscallError if a libc call returned -1."""
    if ret == -1:
        raise SyscallError(call, args, ctypes.get_errno())
    return ret


def fsencode(path) -> bytes | None:
    return None if path is None else os.fsencode(path)
