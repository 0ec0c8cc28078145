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
import resource
import signal
import struct

from .elf import read_pt_interp
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


def resolve_process_user(process) -> tuple[int, int, list[int], str]:
    """(uid, gid, supplementary groups, home) of the spec's process. `run --user NAME[:GROUP]`
    is looked up in the image (groups: just its gid); OCI gives numbers (additionalGids)."""
    if process.username is not None:
        uid, gid, home = resolve_user(process.username)
        return uid, gid, [gid], home
    entry = _lookup("/etc/passwd", str(process.uid), 2)
    home = entry[5] if entry and entry[2] == str(process.uid) and entry[5] else (
        "/root" if process.uid == 0 else "/")
    return process.uid, process.gid, list(process.additional_gids), home


RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}


def set_process_limits(process, explain) -> None:
    """rlimits (setrlimit(2)), oom_score_adj (proc(5)) and the umask: inherited across execve."""
    for kind, soft, hard in process.rlimits:
        explain.step(f"set {kind} to {soft}:{hard}", f"prlimit --{kind[7:].lower()}={soft}:{hard}",
                     f"setrlimit({kind}, {{{soft}, {hard}}})", "setrlimit(2)",
                     "a per-process limit the command inherits")
        try:
            resource.setrlimit(RLIMITS[kind], (soft, hard))
        except (OSError, ValueError) as e:
            now = resource.getrlimit(RLIMITS[kind])[1]
            raise ConfigError(f"cannot set {kind} to {soft}:{hard}: above this host's hard limit "
                              f"{'unlimited' if now < 0 else now} (raising it needs CAP_SYS_RESOURCE"
                              f"{', and RLIMIT_NOFILE at most fs.nr_open' if kind == 'RLIMIT_NOFILE' else ''}"
                              f"; {e}); lower the limit (podman: --ulimit {kind[7:].lower()}=N:N)") from None
    if process.oom_score_adj is not None:
        explain.step(f"set oom_score_adj to {process.oom_score_adj}",
                     f"echo {process.oom_score_adj} > /proc/self/oom_score_adj",
                     "write(2) to /proc/self/oom_score_adj", "proc(5)",
                     "how eagerly the OOM killer picks this process (-1000 never, 1000 first)")
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process.oom_score_adj))
    os.umask(process.umask if process.umask is not None else 0o022)


def find_executable(name: str, path: str) -> str:
    """The file execvpe would run, or an ExecError (127) now: `create` fails as runc's does."""
    found = search_path(name, path)
    if found is None:
        raise not_found(name)
    return found


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
            program = search_path(argv[0], env.get("PATH", os.defpath))
            why = program and missing_interpreter(program)
            if why:                                     # the file is there, its loader is not
                raise ExecError(EXIT_NOT_FOUND, f"exec {argv[0]}: {why}") from None
            raise not_found(argv[0]) from None
        raise ExecError(EXIT_CANNOT_EXECUTE,
                        f"exec {argv[0]}: {os.strerror(e.errno).lower()} "
                        f"({errno.errorcode.get(e.errno, e.errno)})") from None


def search_path(name: str, path: str) -> str | None:
    """The file execvpe would run: `name` itself when it holds a "/", else the first executable
    `name` in a directory of PATH; None when there is none."""
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def not_found(name: str) -> ExecError:
    """Docker's and runc's words for a command that is not there (by name, or by path)."""
    return ExecError(EXIT_NOT_FOUND, f"exec {name}: executable file not found in $PATH"
                     if "/" not in name else f"exec {name}: no such file or directory")


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


def exit_status(wait_status: int) -> int:
    """A waitpid() status as a shell exit status: the code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
