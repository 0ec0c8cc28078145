"""Reading and writing cgroup control files: the whole kernel interface of cgroups is files.

A cgroup is a directory in a cgroup filesystem; its settings are small text files in it.

    mkdir /sys/fs/cgroup/minicontainer/ID             # create a group   (mkdir(2))
    echo 33554432 > /sys/fs/cgroup/…/ID/memory.max    # set a limit      (write(2))
    echo $PID > /sys/fs/cgroup/…/ID/cgroup.procs      # move a process in
    rmdir /sys/fs/cgroup/minicontainer/ID             # delete it once empty (rmdir(2))

Every change goes through this module so that --explain can show it as the shell line above
(the `explain(shell_line, why)` callback), and every failure names the call, path and errno.
See cgroups(7).
"""
from __future__ import annotations

import errno
import os
import shlex
import time
from pathlib import Path
from collections.abc import Callable

from minicontainer.errors import CgroupError, SyscallError

Explain = Callable[[str, str], None] | None


class CgroupSyscallError(SyscallError, CgroupError):
    """A failed call on a cgroup file: worded as every SyscallError, caught as a CgroupError;
    .errno lets a caller tell EBUSY from ENOENT without parsing the text."""


def cgroup_error(call: str, path: Path, err: OSError, value: str | None = None,
                 hint: str = "") -> CgroupError:
    """"write('/sys/…/memory.max', '33554432'): EBUSY (Device or resource busy) — hint"."""
    args = (str(path),) if value is None else (str(path), value)
    return CgroupSyscallError(call, args, err.errno or 0, hint)


def write_file(path: Path, value: str, why: str, explain: Explain, hint: str = "") -> None:
    """`echo VALUE > PATH`: one write(2) of the whole value, as the kernel expects."""
    if explain:
        explain(f"echo {shlex.quote(value)} > {shlex.quote(str(path))}", why)
    try:
        # No O_CREAT: cgroup files exist or the kernel lacks the feature (ENOENT says so).
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise cgroup_error("write", path, err, value, hint) from None


def make_dir(path: Path, why: str, explain: Explain, exist_ok: bool = False) -> bool:
    """`mkdir PATH` (`mkdir -p` when exist_ok): the kernel fills the new directory with control files.

    Returns True when the directory was created now."""
    if explain:
        explain(f"mkdir {'-p ' if exist_ok else ''}{shlex.quote(str(path))}", why)
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError as err:
        if exist_ok:
            return False
        raise cgroup_error("mkdir", path, err, hint="a cgroup with this container id exists already; "
                           "a crashed run left it: remove it with `minicontainer rm`/cleanup") from None
    except OSError as err:
        raise cgroup_error("mkdir", path, err) from None


def remove_dir(path: Path, why: str, explain: Explain, timeout: float = 2.0) -> None:
    """`rmdir PATH`, retried while the kernel still reports EBUSY (exiting tasks); gone is fine."""
    if explain:
        explain(f"rmdir {shlex.quote(str(path))}", why)
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise cgroup_error("rmdir", path, err, hint="processes are still in the group "
                                   f"(cat {path}/cgroup.procs)") from None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def read_text(path: Path) -> str | None:
    """The file's content without the trailing newline; None when the file does not exist."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise cgroup_error("read", path, err) from None


def read_int(path: Path) -> int | None:
    """A single number; None for a missing file or "max" (no limit)."""
    text = read_text(path)
    if text is None or text == "max" or text == "":
        return None
    return int(text)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file ("oom_kill 1\\nmax 5") as a dict; {} when the file does not exist."""
    text = read_text(path) or ""
    pairs = (line.split() for line in text.splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def read_pids(path: Path) -> list[int]:
    """The PIDs listed in a cgroup.procs file; [] when the group is gone."""
    text = read_text(path) or ""
    return [int(line) for line in text.split()]


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll `check` with growing pauses (1 ms .. 20 ms) until it is true or `timeout` passes."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    return True
