"""The error types of minicontainer, one small tree.

    MinicontainerError            anything minicontainer itself refuses or fails at (exit 125)
     ├── ConfigError              a bad flag value or option combination
     ├── ImageError               no such image, a bad reference, an image in use
     │    └── ArchiveError        a corrupt, unsafe or unsupported archive
     ├── ContainerError           no such container, a name in use, a wrong state
     │    └── StartError          a container that did not start (carries its exit status)
     ├── CgroupError              a cgroup could not be created, written or removed
     ├── NetworkError             a network, address or port could not be set up
     ├── VmError                  a virtual machine (minicontainer vm): no such VM, tag, host; QEMU failed
     └── SyscallError             a system call failed: names the call, the path and the errno

The CLI turns every MinicontainerError into one line on stderr and exit status 125,
like Docker does for its own errors. The library raises them as they are.
"""
from __future__ import annotations

import errno as _errno
import os


class MinicontainerError(Exception):
    """Base class: `str(err)` is the one line a user sees."""

    exit_code = 125


class ConfigError(MinicontainerError):
    """A flag or option value that cannot be used (say what is wrong and what to do)."""


class ImageError(MinicontainerError):
    """An image reference that does not exist, is malformed, or is still in use."""


class ArchiveError(ImageError):
    """An archive that is corrupt, unsafe (escapes its root) or of an unknown format."""


class ContainerError(MinicontainerError):
    """A container that does not exist, a name that is taken, a verb that needs another state."""


class StartError(ContainerError):
    """The container did not start: a setup step failed, or its command could not be run.
    Carries the exit status (125, or 126/127 when execve failed) the CLI exits with."""

    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code


class CgroupError(MinicontainerError):
    """A cgroup directory or control file that could not be created, written or removed."""


class NetworkError(MinicontainerError):
    """A network, interface, address or published port that could not be set up."""


class VmError(MinicontainerError):
    """A VM that does not exist or is in the wrong state, a snapshot tag or migration target that
    cannot be used, QEMU missing or refusing (its own message is kept)."""


class SyscallError(MinicontainerError):
    """A failed system call, written the way bubblewrap and crun write it:

        pivot_root("/var/lib/minicontainer/…/merged", "."): EINVAL (Invalid argument)
    """

    def __init__(self, syscall: str, args: tuple = (), err: int = 0, hint: str = ""):
        self.syscall, self.errno = syscall, err
        shown = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
        name = _errno.errorcode.get(err, str(err))
        msg = f"{syscall}({shown}): {name} ({os.strerror(err)})"
        super().__init__(msg + (f" — {hint}" if hint else ""))


__all__ = [
    "MinicontainerError", "ConfigError", "ImageError", "ArchiveError", "ContainerError",
    "StartError", "CgroupError", "NetworkError", "VmError", "SyscallError",
]
