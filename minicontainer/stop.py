"""How a container ends: stop, kill, wait and rm — signals sent through a pidfd.

    man 2 kill, man 2 pidfd_open, man 2 pidfd_send_signal, man 7 signal
    shell: kill -TERM PID; sleep 10; kill -KILL PID        (what `docker stop` does)

    stop     SIGTERM to PID 1; up to -t seconds later SIGKILL
    kill     kill -SIGNAL PID 1
    wait     until the exit status is recorded (`docker wait`)
    rm       delete what the container has (cgroup, network lease, overlay dirs, record);
             rm -f kills it first

A PID is only a number, and the kernel reuses numbers. So a signal goes out only through a
pidfd (pidfd_open(2)): the descriptor pins one process; after checking through it that the
start time is still the recorded one, pidfd_send_signal(2) cannot reach anybody else.

Who records what: the container's *owner* — the supervisor of a `run -d` container, the CLI
process of a foreground `run` — records the exit status and tears down. `stop` signals and
then waits (poll(2) on pidfds) for the owner to finish. `rm -f` leaves a "removing" mark
first: a supervisor that sees it exits as soon as PID 1 is dead, and rm tears down itself —
a few milliseconds, instead of waiting for the supervisor to load the runtime and do it.
"""
from __future__ import annotations

import os
import select
import signal
import time

from .errors import ContainerError
from .events import record as record_event
from .freezer import thaw_if_paused
from .signals import parse_signal  # noqa: F401  (stop and kill take names; re-exported)
from .state import ContainerRecord, StateStore, is_alive, open_store
from .status import (OWNER_TIMEOUT, POLL, current_status, owner_alive, settled, wait_until)
from .supervisor import EXIT_FILE, REMOVING_MARK, STOPPED_MARK


def open_pidfd(pid: int, start: int) -> int | None:
    """A pidfd (pidfd_open(2)) for `pid` if — and only if — it is still the process that
    started at `start` and has not exited; None if it is gone, a zombie or the PID was reused."""
    if pid <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)                  # from here on, fd means this one process
    except OSError:
        return None
    if not is_alive(pid, start):                 # the PID was reused (not ours), or a zombie
        os.close(fd)
        return None
    return fd


def signal_process(pid: int, start: int, sig: int) -> bool:
    """Send `sig` to `pid` if it is still the process that started at `start`. True if sent."""
    fd = open_pidfd(pid, start)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:                   # it exited in between: fine
        return False
    finally:
        os.close(fd)


def wait_any(pidfds: list[int], deadline: float) -> bool:
    """Block in poll(2) until one of the pidfds is readable — its process has exited — (→ True)
    or the `deadline` (time.monotonic) has passed (→ False). No sleeping, no /proc polling."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    timeout = max(0.0, deadline - time.monotonic())
    return bool(poller.poll(min(int(timeout * 1000) + 1, 2**31 - 1)))


def mark_stopped(store: StateStore, rec: ContainerRecord, mark: str = STOPPED_MARK) -> None:
    """A marker file, not a record field: the supervisor rewrites the record, a file it only reads."""
    try:
        os.close(os.open(store.container_dir(rec.id) / mark, os.O_CREAT | os.O_WRONLY, 0o600))
    except FileNotFoundError:
        pass                                     # removed meanwhile


def wake_owner(rec: ContainerRecord) -> None:
    """SIGUSR1 ends a supervisor's back-off sleep early (it then sees the stop marker)."""
    if rec.status == "restarting":
        signal_process(rec.supervisor_pid, rec.supervisor_start, signal.SIGUSR1)


# ── the verbs ─────────────────────────────────────────────────────────────────────────────

def stop_container(ref: str, timeout: float | None = None, root=None) -> ContainerRecord:
    """SIGTERM (or its --stop-signal), then SIGKILL after `timeout` seconds (default: its
    --stop-timeout, else 10); returns once the exit is recorded. The restart policy will not
    restart it (Docker's 'manually stopped')."""
    store = open_store(root)
    rec = store.find(ref)
    mark_stopped(store, rec)
    if timeout is None:
        timeout = rec.config.get("stop_timeout", 10)
    timeout = 10**9 if timeout < 0 else timeout             # -1: wait as long as it takes
    end_container(store, rec, parse_signal(rec.config.get("stop_signal") or "TERM"), timeout)
    record_event(store, "stop", rec)
    return store.load(rec.id) or rec


def end_container(store: StateStore, rec: ContainerRecord, first: int, grace: float) -> None:
    """Send `first` to PID 1 through its pidfd, SIGKILL if it still runs `grace` seconds
    later, and wait in poll(2) on the pidfds of PID 1 and of its supervisor until both are
    gone. The caller has marked the container stopped: a supervisor in its back-off or
    starting a new PID 1 ends it itself (supervisor.launch). Only while the record names a
    dead PID 1 and the supervisor lives (recording the exit, or a restart about to record a
    new PID 1, which must get the signal too) is the record read again, every POLL seconds.
    A foreground owner (`run` without -d, a library caller) may live on after its container:
    for it, wait until the exit is recorded (status.settled)."""
    kill_at = time.monotonic() + grace
    deadline, signalled = kill_at + OWNER_TIMEOUT, set()
    while time.monotonic() < deadline:
        now = store.load(rec.id)
        if now is None:
            return
        wake_owner(now)                               # in a back-off: SIGUSR1 ends its sleep
        pid1 = open_pidfd(now.pid, now.pid_start)
        owner = open_pidfd(now.supervisor_pid, now.supervisor_start) if now.config.get("detach") else None
        try:
            if pid1 is not None:
                sig = signal.SIGKILL if time.monotonic() >= kill_at else first
                if (now.pid, now.pid_start, sig) not in signalled:
                    signalled.add((now.pid, now.pid_start, sig))
                    deliver(pid1, sig, now)
                wait_any([fd for fd in (pid1, owner) if fd is not None],
                         deadline if sig == signal.SIGKILL else kill_at)
            elif owner is None or wait_any([owner], min(deadline, time.monotonic() + POLL)):
                break                                 # the owner is done (or is a foreground one)
        finally:
            for fd in (pid1, owner):
                if fd is not None:
                    os.close(fd)
    wait_until(lambda: settled(store, rec), max(0.0, deadline - time.monotonic()))


def deliver(pidfd: int, sig: int, rec: ContainerRecord) -> None:
    """pidfd_send_signal(2); a frozen container is thawed to act on it."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:                        # it exited in between: fine
        return
    thaw_if_paused(rec)


def kill_container(ref: str, sig: str | int = "KILL", root=None) -> ContainerRecord:
    """Send a signal to PID 1 (default SIGKILL). KILL and TERM count as a stop for --restart."""
    number = parse_signal(sig)
    store = open_store(root)
    rec = store.find(ref)
    if current_status(rec) not in ("running", "paused"):
        raise ContainerError(f"container {rec.name} is not running")
    if number in (signal.SIGKILL, signal.SIGTERM):
        mark_stopped(store, rec)
    if not signal_process(rec.pid, rec.pid_start, number):
        raise ContainerError(f"container {rec.name} is not running")
    record_event(store, "kill", rec, signal=number)
    if number == signal.SIGKILL:
        thaw_if_paused(rec)
    return rec


def remove_container(ref: str, *, force: bool = False, root=None) -> ContainerRecord:
    """Delete a container: its cgroup, network lease, overlay dirs and record. A running (or
    restarting, or starting) one only with force: SIGKILL, and rm tears it down itself."""
    store = open_store(root)
    rec = store.find(ref)
    busy = current_status(rec) in ("running", "paused", "restarting") or (
        rec.status == "created" and owner_alive(rec))
    if busy:
        if not force:
            raise ContainerError(f"container {rec.name} is {current_status(rec)}: stop it first "
                                 f"(`minicontainer stop {rec.name}`) or use `rm -f`")
        mark_stopped(store, rec)                  # no restart …
        mark_stopped(store, rec, REMOVING_MARK)   # … and a supervisor that exits at once:
        end_container(store, rec, signal.SIGKILL, 0)   # rm tears down (supervisor.watch)
    else:                                          # an exited one's supervisor may still be
        wait_until(lambda: settled(store, rec), OWNER_TIMEOUT)    # tearing down: let it finish
    rest = store.load(rec.id)
    if rest is not None:                           # the owner is gone: clean up ourselves
        if rest.status in ("running", "paused"):   # its supervisor left the exit to us
            fd = open_exit_file(store, rest)
            code = read_exit_file(fd)
            if fd is not None:
                os.close(fd)
            record_event(store, "die", rest, exitCode=137 if code is None else code)
        clean_up(store, rest)
    return rec


def clean_up(store: StateStore, rec: ContainerRecord) -> None:
    """runtime.teardown for a record nobody else will tear down: everything goes."""
    from . import runtime
    from .supervisor import context_for
    ctx = context_for(store, rec)
    ctx.record.auto_remove = True
    runtime.teardown(ctx)


def wait_container(ref: str, root=None) -> int:
    """Block until the container stops running; its exit status (as `docker wait`)."""
    store = open_store(root)
    rec = store.find(ref)
    exit_file = open_exit_file(store, rec)
    try:
        while True:
            now = store.load(rec.id)
            if now is None:                        # --rm: recorded and removed between two polls
                code = read_exit_file(exit_file)
                if code is None:
                    raise ContainerError(f"container {rec.name} was removed before its exit status was read")
                return code
            if now.status in ("exited", "restarting") and now.exit_code is not None:
                return now.exit_code
            if current_status(now) == "dead":
                raise ContainerError(f"container {rec.name} lost its supervisor: its exit status is "
                                     "unknown (`minicontainer gc` cleans it up)")
            time.sleep(POLL)
    finally:
        if exit_file is not None:
            os.close(exit_file)


def open_exit_file(store: StateStore, rec: ContainerRecord) -> int | None:
    """The supervisor's exit file (supervisor.write_exit_file), opened now: the descriptor
    still reads it after the container's directory is removed. Created empty if need be."""
    try:
        return os.open(store.container_dir(rec.id) / EXIT_FILE, os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError:
        return None                                # removed already, or not ours to write


def read_exit_file(fd: int | None) -> int | None:
    try:
        return int(os.pread(fd, 16, 0)) if fd is not None else None
    except (OSError, ValueError):                  # empty: nothing was recorded
        return None
