"""The container's process: who it runs as, where, with what environment — then execve(2).

    man 2 execve, man 5 passwd, man 7 environ                     shell: env(1), cd, exec
    (switching uid/gid happens in security.py, together with the capability drop)

These are the last steps before the container's own program replaces our Python code; after
execve nothing of minicontainer remains inside the container. Exit statuses follow Docker:
126 when the command cannot be executed, 127 when it is not found, 128+N when signal N
killed it.
"""
from __future__ import annotations

import errno
import os
import signal
import struct

from .errors import ConfigError

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


class ExecError(Exception):
    """Raised in PID 1 when execve fails; carries the exit status Docker would use."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _lookup(path: str, key: str, field_index: int) -> list[str] | None:
    """The line of /etc/passwd or /etc/group (inside the new root) whose name or ID is `key`."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) > field_index and key in (parts[0], parts[field_index]):
                    return parts
    except OSError:
        pass
    return None


def resolve_user(spec: str | None) -> tuple[int, int, str]:
    """UID[:GID] or NAME[:GROUP] → (uid, gid, home), read from the container's own files."""
    if spec is None:
        return 0, 0, "/root"
    user, _, group = spec.partition(":")
    entry = _lookup("/etc/passwd", user, 2)
    if entry:
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5] or "/"
    elif user.isdigit():
        uid, gid, home = int(user), int(user) if not group else 0, "/"
    else:
        raise ConfigError(f"unable to find user {user}: no matching entry in the image's /etc/passwd")
    if group:
        g = _lookup("/etc/group", group, 2)
        if g:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise ConfigError(f"unable to find group {group}: no matching entry in the image's /etc/group")
    return uid, gid, home


def set_workdir(path: str) -> None:
    """mkdir -p and chdir: Docker creates a missing working directory."""
    os.makedirs(path, exist_ok=True)
    os.chdir(path)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals stay ignored across execve, which
    would break `yes | head` inside the container — so restore the defaults first."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)


def leave_terminal(explain) -> None:
    """Without -t the container's stdin, stdout and stderr may still be *your* terminal. In a
    session of its own that terminal is no longer its controlling terminal, and then
    ioctl(fd, TIOCSTI) — which pushes characters into a terminal's input as if typed at your
    shell's prompt — needs CAP_SYS_ADMIN, which the container lacks (ioctl_tty(2); the same hole
    as lxc-attach's CVE-2016-10124). Signals from your keyboard still reach the container:
    the CLI forwards them."""
    explain.step("leave your terminal's session", "setsid", "setsid()", "setsid(2), ioctl_tty(2)",
                 "the container may write to your terminal, but never type into your shell")
    os.setsid()


def exec_command(argv: list[str], env: dict[str, str]) -> None:
    """execvpe: search PATH inside the container and replace this process. Never returns."""
    try:
        if "/" in argv[0]:
            os.execve(argv[0], argv, env)
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        if e.errno == errno.ENOENT:
            program = argv[0] if "/" in argv[0] else search_path(argv[0], env.get("PATH", os.defpath))
            why = program and missing_interpreter(program)
            if why:                                     # the file is there, its loader is not
                raise ExecError(EXIT_NOT_FOUND, f"exec {argv[0]}: {why}") from None
            raise ExecError(EXIT_NOT_FOUND, f"exec {argv[0]}: executable file not found in $PATH"
                            if "/" not in argv[0] else f"exec {argv[0]}: no such file or directory") from None
        raise ExecError(EXIT_CANNOT_EXECUTE,
                        f"exec {argv[0]}: {os.strerror(e.errno).lower()} "
                        f"({errno.errorcode.get(e.errno, e.errno)})") from None


def search_path(name: str, path: str) -> str | None:
    """The file execvpe would have run: the first executable `name` in a directory of PATH."""
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_interpreter(program: str) -> str | None:
    """Why execve(2) says ENOENT for a file that exists: the program the kernel must start first
    is missing. For a script that is the interpreter of its #! line; for a dynamically linked
    ELF program it is the loader its PT_INTERP header names (elf(5), ld.so(8); shell:
    readelf -lW PROGRAM | grep interpreter). Docker only says "no such file or directory"."""
    try:
        with open(program, "rb") as f:
            if f.read(2) == b"#!":
                words = f.readline().split()
                interpreter, what = (words[0].decode(errors="replace") if words else ""), "interpreter (its #! line)"
            else:
                f.seek(0)
                interpreter, what = read_pt_interp(f), "ELF interpreter"
    except (OSError, struct.error):
        return None
    if not interpreter or os.path.exists(interpreter):
        return None
    if os.path.islink(interpreter):                  # e.g. /lib64/ld-linux-x86-64.so.2 → /lib/…
        return (f"its {what} {interpreter} is not in the image: it is a symlink to "
                f"{os.readlink(interpreter)}, which is missing")
    return f"its {what} {interpreter} is not in the image"


def read_pt_interp(f) -> str | None:
    """The PT_INTERP entry of an open ELF file, or None (not ELF, or static). Only this one
    field: rootfs-builder/elf.py reads all of them, but runs on the host, not here in PID 1."""
    ident = f.read(16)
    if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    ehdr = order + ("HHIQQQIHHH" if wide else "HHIIIIIHHH")      # e_type … e_phnum
    header = struct.unpack(ehdr, f.read(struct.calcsize(ehdr)))
    phoff, phentsize, phnum = header[4], header[8], header[9]
    phdr = order + ("IIQQQQ" if wide else "IIIII")   # Elf64_Phdr: type, flags, offset, …, filesz
    for i in range(phnum):                            # Elf32_Phdr: type, offset, …, filesz
        f.seek(phoff + i * phentsize)
        fields = struct.unpack(phdr, f.read(struct.calcsize(phdr)))
        p_type, p_offset, p_filesz = fields[0], fields[2 if wide else 1], fields[-1]
        if p_type == 3:                               # PT_INTERP: "/lib64/ld-linux-x86-64.so.2\0"
            f.seek(p_offset)
            return f.read(p_filesz).split(b"\0", 1)[0].decode(errors="replace")
    return None


def exit_status(wait_status: int) -> int:
    """A waitpid() status as a shell exit status: the code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
