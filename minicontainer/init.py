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


def init_argv(ctx) -> list[str]:
    """The argv PID 1 executes: the command, or /dev/init -- the command."""
    command = ctx.record.command
    return [TARGET, "--", *command] if ctx.init_binary else command


if __name__ == "__main__":
    import sys
    from .state import state_root
    print(find_init_binary(state_root(sys.argv[1] if len(sys.argv) > 1 else None)))
