"""--init: a tiny PID 1 that reaps orphans and forwards signals (the program: init.c).

    man 7 pid_namespaces ("The namespace init process"), man 2 wait, man 2 sigwaitinfo
    docker run --init (tini), podman run --init (catatonit)

Why it matters. The first process of a PID namespace is its init, and the kernel treats it
like the machine's init:
  * orphans are re-parented to it. A shell or an init system waits for them; a program not
    written to be PID 1 (a Python web server, `sleep`) never does, so every orphan that
    exits stays a zombie — holding a PID (counted by --pids-limit) until the container ends.
  * it gets only the signals it has installed a handler for. `minicontainer stop` sends
    SIGTERM; a PID 1 without a handler ignores it, and stop has to wait its 10 s and use
    SIGKILL — no chance to shut down cleanly. (Ctrl-C in `run` is SIGINT: the same.)
With --init, the container's PID 1 is init.c instead: the command runs as its child (PID 2),
gets every signal forwarded, and its orphans are reaped.

Why C and not Python? The init runs *inside* the container, whose image may have no Python
at all (busybox does not). A static binary needs nothing from the image: it is built once on
the host (`gcc -static`, ~800 kB with glibc) and bind-mounted read-only at /dev/init — on the
container's private /dev tmpfs, so nothing is written into the container's own files
(Docker uses /sbin/docker-init, Podman /run/podman-init).

    python -m minicontainer.init [ROOT]      build it now (scripts/setup.sh may do this)
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError
from .kernel.mount import MS_BIND, MS_RDONLY, MS_REMOUNT, mount

SOURCE = Path(__file__).with_name("init.c")
TARGET = "/dev/init"                         # where the container sees it


def find_init_binary(root: Path) -> Path:
    """<root>/bin/minicontainer-init-<hash of init.c>; built with gcc the first time."""
    return find_static_binary(root, SOURCE, "minicontainer-init", "--init")


def find_static_binary(root: Path, source: Path, name: str, needed_by: str) -> Path:
    """<root>/bin/NAME-<hash of SOURCE>, built with gcc the first time (init.c here, the pod's
    pause.c in orchestration/pods.py)."""
    import hashlib                  # only with --init: loading OpenSSL costs ~2 ms
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = Path(root) / "bin" / f"{name}-{digest}"
    if not binary.exists():
        build_static(source, binary, needed_by)
    return binary


def build_static(source: Path, binary: Path, needed_by: str) -> None:
    """gcc -static -Os -s -o BINARY SOURCE (into a temp name, then renamed: parallel runs
    may build at the same time, and none may run a half-written file)."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    import subprocess               # only for the first build: ~2 ms to import
    tmp = binary.with_name(f".{binary.name}.{os.getpid()}")
    try:
        proc = subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(tmp), str(source)],
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(f"{needed_by} needs gcc once, to build {source.name}: "
                          "apt-get install gcc libc6-dev") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ConfigError(f"{needed_by}: building {source} failed ({first}); is libc6-dev installed "
                          "(static libc.a)?")
    os.replace(tmp, binary)


def mount_init(ctx) -> None:
    """PID 1, before pivot_root: bind the host's binary read-only onto merged/dev/init."""
    if not ctx.init_binary:
        return
    target = f"{ctx.merged}{TARGET}"
    ctx.explain.step("bind the init program into the container", f"mount --bind -o ro "
                     f"{ctx.init_binary} {target}", "mount(src, dst, NULL, MS_BIND), then "
                     "MS_REMOUNT|MS_BIND|MS_RDONLY", "mount(2), pid_namespaces(7)",
                     "--init: a tiny PID 1 that reaps orphans and forwards signals to the command")
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))
    mount(str(ctx.init_binary), target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def init_argv(ctx) -> list[str]:
    """The argv PID 1 executes: the command, or /dev/init -- the command."""
    command = ctx.record.command
    return [TARGET, "--", *command] if ctx.init_binary else command


if __name__ == "__main__":
    import sys
    from .state import state_root
    print(find_init_binary(state_root(sys.argv[1] if len(sys.argv) > 1 else None)))
