"""A container's life apart from `run`: create, start, restart, rename, port, attach.

    man 2 fork, man 2 kill, man 2 pidfd_open; Docker's `docker create|start|restart|rename|
    port|attach` reference pages
    shell, roughly:  ID=$(minicontainer create busybox sleep 60)    # a record, nothing runs
                     minicontainer start $ID                         # run -d, for that record

`run` is `create` and `start` in one step. Split, the record comes first: `create` checks
every option and the image, then writes the record (status "created", no owner, nothing in
the kernel yet). `start` hands that record to the same run sequence `run` uses
(runtime.prepare → start), under a supervisor (supervisor.py) like `run -d`, or — with
`start -a` — in the foreground of this process like `run`. The overlay's upper directory
is the container's, so a started-again container finds the files it left (or what
`snapshot restore` put back).

    created ──start──▶ running ──exits / stop──▶ exited ──start──▶ running …
       └─────────────────────────── rm ──────────────────────────────┘

A record with status "created" and no owner PID is a container that was made by `create`
and never started; status.current_status() shows it as "created", and gc leaves it alone.
"""
from __future__ import annotations

import os
import signal
import time

from .errors import ConfigError, ContainerError, MinicontainerError
from .state import ContainerRecord, StateStore, state_root, validate_name

RUNNING = ("running", "paused", "restarting")


def _store(root) -> StateStore:
    return StateStore(state_root(root))


# ── run options a Docker user brings ──────────────────────────────────────────────────────

def read_env_file(path: str) -> list[str]:
    """--env-file: one KEY=VALUE per line; `#` comments and blank lines skipped; a bare KEY
    copies your value (as `-e KEY`). Values are taken literally: no quotes, no $expansion."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError(f"--env-file {path}: {e.strerror}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.partition("=")[0]
        if not key or any(c.isspace() for c in key):
            raise ConfigError(f"--env-file {path}, line {n}: {key!r} is not a variable name "
                              "(use KEY=VALUE)")
        out.append(line)
    return out


def parse_labels(items) -> dict[str, str]:
    """-l KEY=VALUE (or KEY: an empty value), as Docker stores them."""
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key.strip():
            raise ConfigError(f"invalid --label {item!r}: use KEY=VALUE")
        labels[key.strip()] = value
    return labels


def expand_options(options: dict) -> dict:
    """The CLI-shaped options (--env-file, -l, --entrypoint, --stop-timeout as given) →
    ContainerConfig's fields. Everything is read and checked here, before anything exists."""
    env_files = options.pop("env_file", None) or []
    if env_files:
        options["env"] = [item for path in env_files for item in read_env_file(path)] + \
            list(options.get("env") or [])
    if "label" in options:
        options["labels"] = {**options.get("labels", {}), **parse_labels(options.pop("label") or [])}
    entrypoint = options.get("entrypoint")
    if isinstance(entrypoint, str):         # Docker: one executable; "" clears the image's
        options["entrypoint"] = [entrypoint] if entrypoint else []
    timeout = options.get("stop_timeout")
    if isinstance(timeout, str):
        try:
            options["stop_timeout"] = int(timeout)
        except ValueError:
            raise ConfigError(f"invalid --stop-timeout {timeout!r}: give whole seconds") from None
    return options


# ── create ────────────────────────────────────────────────────────────────────────────────

def create(config, store: StateStore) -> ContainerRecord:
    """`create`: check every option as run's prepare() would, then write the record only.
    Nothing exists in the kernel until `start`."""
    from . import runtime
    from .cgroups import parse_limits
    from .network import steps as net
    from .storage.images import ImageStore, apply_image_config
    image = ImageStore(store.root / "images").get(config.image)       # ImageError: no such image
    config.image = image.ref
    apply_image_config(config, image)
    parse_limits(**config.limits)
    net.check_network_options(config)
    runtime.resolve_security(config)
    from .state import write_cidfile
    rec = store.create(config.image, config.command or ["/bin/sh"], config.name,
                       auto_remove=config.remove, config=runtime.config_summary(config))
    try:
        from .storage.overlay import create_overlay_dirs   # its (empty) files exist: diff,
        create_overlay_dirs(store.container_dir(rec.id), image.lower_dirs[0])  # commit, cp work
        write_cidfile(config.cidfile, rec.id)
    except BaseException:
        store.delete(rec)
        raise
    return rec


def never_started(rec: ContainerRecord) -> bool:
    """Made by `create` and not started yet: no owner was ever recorded."""
    return rec.status == "created" and not rec.supervisor_pid


# ── start ─────────────────────────────────────────────────────────────────────────────────

class Existing:
    """What supervisor.start_detached needs of an api.Container, for a record that exists."""

    def __init__(self, store: StateStore, rec: ContainerRecord, config):
        from .explain import Explainer
        self.store, self.record, self.config = store, rec, config
        self.explain = Explainer(False)


def claim(store: StateStore, ref: str) -> ContainerRecord | None:
    """Take a stopped container for starting, under the lock: two `start`s at once must not
    both run it. None if it runs already (`docker start` of a running one does nothing)."""
    from .status import current_status, owner_alive
    from .supervisor import STOPPED_MARK
    rec = store.find(ref)
    with store.locked():
        rec = store.load(rec.id) or rec
        status = current_status(rec)
        if status in RUNNING:
            return None
        if rec.status == "created" and rec.supervisor_pid and owner_alive(rec):
            raise ContainerError(f"container {rec.name} is being started by another command")
        if status == "dead":
            raise ContainerError(f"container {rec.name} lost its supervisor: run `minicontainer gc` "
                                 "first, which cleans up what it left")
        from .runtime import owner_fields
        for key, value in owner_fields().items():          # we own it until someone takes over
            setattr(rec, key, value)
        rec.status = "created"
        store.save(rec)
    (store.container_dir(rec.id) / STOPPED_MARK).unlink(missing_ok=True)   # the restart policy
    return rec                                                             # counts again


def start_container(ref: str, *, attach: bool = False, interactive: bool = False,
                    root=None) -> int | str:
    """`start`: run a created or exited container again, with its own files. Detached (the
    default) it returns the ID once PID 1 runs; attach=True runs it in the foreground of this
    process (its output on ours, stdin too with interactive) and returns its exit status."""
    from .supervisor import config_of
    store = _store(root)
    rec = claim(store, ref)
    if rec is None:
        return 0 if attach else store.find(ref).id
    config = config_of(rec)
    config.detach, config.interactive = not attach, bool(interactive or (attach and config.interactive))
    try:
        if attach:
            return run_attached(store, rec, config)
        from .supervisor import start_detached
        return start_detached(Existing(store, rec, config))
    finally:
        release(store, rec)


def release(store: StateStore, rec: ContainerRecord) -> None:
    """If the start failed before anyone took over, the record must not name us as its owner
    (it would look 'being started' forever): back to created, or exited if it ran before."""
    now = store.load(rec.id)
    if now is not None and now.status == "created" and now.supervisor_pid == os.getpid():
        store.update(rec.id, supervisor_pid=0, supervisor_start=0,
                     status="exited" if now.started_at else "created")


def run_attached(store: StateStore, rec: ContainerRecord, config) -> int:
    """`start -a`: the run sequence in this process, as a foreground `run`."""
    from . import runtime
    from .supervisor import context_for
    ctx = context_for(store, rec)
    ctx.config = config
    ctx.cgroup = None
    if config.tty:
        from .tty import Console
        ctx.console = Console(interactive=config.interactive)
    return runtime.run(ctx)


def restart_container(ref: str, *, timeout: float | None = None, root=None) -> str:
    """`restart`: stop (if it runs), then start detached."""
    from .status import current_status
    from .stop import stop_container
    store = _store(root)
    rec = store.find(ref)
    if current_status(rec) in RUNNING:
        stop_container(rec.id, timeout=timeout, root=root)
    started = start_container(rec.id, root=root)
    from .events import record as record_event
    record_event(store, "restart", store.load(rec.id) or rec)
    return started


# ── rename, port ──────────────────────────────────────────────────────────────────────────

def rename_container(ref: str, new_name: str, root=None) -> ContainerRecord:
    """`rename OLD NEW`: the record's name (the hosts files of a running container's network
    keep the old name until it starts again)."""
    validate_name(new_name)
    store = _store(root)
    rec = store.find(ref)
    with store.locked():
        if any(r.name == new_name and r.id != rec.id for r in store.list()):
            raise ContainerError(f"the name {new_name!r} is already in use: remove that container "
                                 f"(`minicontainer rm {new_name}`) or pick another name")
        rec = store.load(rec.id)
        if rec is None:
            raise ContainerError(f"no such container: {ref}")
        old, rec.name = rec.name, new_name
        store.save(rec)
        store.rename_claim(rec, old)                # the name index (state.py) follows
    from .events import record as record_event
    record_event(store, "rename", rec, oldName=old)
    return rec


def container_ports(ref: str, private: str | None = None, root=None) -> list[str]:
    """`port CONTAINER [PORT[/PROTO]]`: '80/tcp -> 0.0.0.0:8080' for each published port of
    a running container (with PORT: only 'HOST_IP:HOST_PORT' for that one)."""
    from .status import current_status
    from .network.ports import PortMapping
    rec = _store(root).find(ref)
    if current_status(rec) not in ("running", "paused"):
        return []
    ports = [PortMapping.from_dict(p) for p in (rec.network or {}).get("ports", [])]
    if private is None:
        return [f"{p.container_port}/{p.proto} -> {p.host_ip or '0.0.0.0'}:{p.host_port}" for p in ports]
    number, _, proto = private.partition("/")
    if not number.isdigit():
        raise ConfigError(f"invalid port {private!r}: use PORT or PORT/tcp|udp")
    found = [f"{p.host_ip or '0.0.0.0'}:{p.host_port}" for p in ports
             if p.container_port == int(number) and p.proto == (proto or "tcp")]
    if not found:
        raise ContainerError(f"no public port '{number}/{proto or 'tcp'}' published for {rec.name}")
    return found


# ── attach ────────────────────────────────────────────────────────────────────────────────

def attach_container(ref: str, emit, *, sig_proxy: bool = True, stdin: bool = True,
                     streams=("stdout", "stderr"), from_start: bool = False, root=None) -> int:
    """`attach`: a detached container's output from now on (from_start: all of it, as `run -a`
    shows it) — emit(ts, stream, text) for each of `streams` — until it stops; returns its exit
    status. With sig_proxy, Ctrl-C (SIGINT) and SIGTERM sent to us go to its PID 1, as
    Docker's attach does. With stdin, and a container started with -i, what we read is
    written to its stdin (input_of); on a terminal, Ctrl-P Ctrl-Q detaches (Docker's keys)."""
    from .logs import LogReader
    from .status import current_status, settled
    from .stop import wait_container
    from .supervisor import LOG_FILE
    store = _store(root)
    rec = store.find(ref)
    if current_status(rec) not in RUNNING and not from_start:   # (run -a: it may be done already)
        raise ContainerError(f"container {rec.name} is not running: start it with "
                             f"`minicontainer start -a {rec.name}`")
    reader = LogReader(store.container_dir(rec.id) / LOG_FILE)
    if not from_start:
        reader.read_new(partial=True)                   # what was before: that is `logs`
    feeder = InputFeeder(store, rec) if stdin and rec.config.get("interactive") and \
        current_status(rec) in RUNNING else None
    saved = proxy_signals(store, rec) if sig_proxy else {}
    try:
        while True:
            over = settled(store, rec)
            for entry in reader.read_new(partial=True):
                if entry[1] in streams:
                    emit(*entry)
            if over or (feeder and feeder.detached):
                break
            time.sleep(0.05)
    finally:
        reader.close()
        if feeder:
            feeder.close()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if feeder and feeder.detached:
        return 0
    try:
        return wait_container(rec.id, root=root)
    except MinicontainerError:
        if store.load(rec.id) is not None:
            return 125
        from .events import last_exit_code                  # --rm: removed, its `die` remains
        code = last_exit_code(store.root, rec.id)
        return 0 if code is None else code


def input_of(rec) -> int:
    """A descriptor that writes to a detached container's stdin. Its supervisor's watch phase
    holds it — the pipe's write end (-i) or the terminal's master side (-t) — and names it in
    its argv (supervisor.exec_phase: … ROOT ID PID OUT ERR STDIN STREAK …); pidfd_getfd(2)
    copies that descriptor into this process (root: ptrace access to the supervisor)."""
    from .kernel.syscalls import libc, syscall_number
    from .status import owner_alive
    deadline = time.monotonic() + 10           # `run -d` returns just before the watch phase's execve
    while True:
        try:
            args = open(f"/proc/{rec.supervisor_pid}/cmdline", "rb").read().decode().split("\0")
            j = args.index(rec.id)                      # … ROOT ID PID OUT ERR STDIN STREAK …
            watching = (j >= 2 and args[j - 2] == "watch") or \
                os.path.basename(args[0]).startswith("minicontainer-watch")      # (watch.c)
            if not watching or not owner_alive(rec):
                raise ValueError
            fd = int(args[j + 2] if rec.config.get("tty") else args[j + 4])
            pidfd = os.pidfd_open(rec.supervisor_pid)
            break
        except (OSError, ValueError, IndexError):
            if time.monotonic() > deadline or not owner_alive(rec):
                raise ContainerError(f"cannot attach to the stdin of {rec.name}: its supervisor is not "
                                     "watching it (started in the foreground, or restarting)") from None
            time.sleep(0.02)
    try:
        copy = libc.syscall(syscall_number("pidfd_getfd"), pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if copy < 0 or fd < 0:
        raise ContainerError(f"cannot attach to the stdin of {rec.name}: pidfd_getfd(2) failed")
    return copy


class InputFeeder:
    """Copies our stdin to the container's in a thread; our terminal in raw mode for a -t one
    (its pty echoes and edits). Ctrl-P Ctrl-Q on a terminal detaches; EOF just stops copying
    (the container's stdin stays open, as after Docker's attach)."""

    DETACH = b"\x10\x11"

    def __init__(self, store: StateStore, rec: ContainerRecord):
        import threading
        self.target, self.detached, self.saved = input_of(rec), False, None
        if rec.config.get("tty") and os.isatty(0):
            from .tty import make_raw
            self.saved = make_raw(0)
        threading.Thread(target=self.copy, daemon=True).start()

    def copy(self) -> None:
        last = b""
        while True:
            try:
                data = os.read(0, 4096)
            except OSError:
                return
            if not data:
                return
            if os.isatty(0) and self.DETACH in last[-1:] + data:
                self.detached = True
                return
            last = data
            try:
                os.write(self.target, data)
            except OSError:
                return

    def close(self) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        os.close(self.target)


def proxy_signals(store: StateStore, rec: ContainerRecord) -> dict:
    """--sig-proxy: pass SIGINT and SIGTERM on to the container's current PID 1."""
    from .stop import signal_process

    def forward(signum, _frame):
        now = store.load(rec.id)
        if now is not None:
            signal_process(now.pid, now.pid_start, signum)
    return {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
