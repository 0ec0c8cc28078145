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
process of a foreground `run` — records the exit status and tears down. These verbs signal
and then wait for the owner to finish; `rm -f` cleans up itself only if the owner is gone.
"""
from __future__ import annotations

import os
import signal
import time

from .errors import ContainerError
from .events import record as record_event
from .freezer import thaw_if_paused
from .signals import parse_signal  # noqa: F401  (stop and kill take names; re-exported)
from .state import ContainerRecord, StateStore, is_alive, open_store, proc_start_time
from .status import (OWNER_TIMEOUT, POLL, current_status, owner_alive, settled, wait_until)
from .supervisor import EXIT_FILE, STOPPED_MARK


def signal_process(pid: int, start: int, sig: int) -> bool:
    """Send `sig` to `pid` if — and only if — it is still the process that started at `start`.
    True if it was sent."""
    if pid <= 0:
        return False
    try:
        fd = os.pidfd_open(pid)                  # from here on, fd means this one process
    except (ProcessLookupError, OSError):
        return False
    try:
        if proc_start_time(pid) != start:        # the PID was reused: not ours
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:                   # it exited in between: fine
        return False
    finally:
        os.close(fd)


def mark_stopped(store: StateStore, rec: ContainerRecord) -> None:
    """A marker file, not a record field: the supervisor rewrites the record, a file it only reads."""
    try:
        os.close(os.open(store.container_dir(rec.id) / STOPPED_MARK, os.O_CREAT | os.O_WRONLY, 0o600))
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
    restart it (Docker's 'manually stopped').

    A restarting container's record may still name the old PID 1 while its supervisor starts
    a new one: so each poll reads the record again and signals whichever PID 1 it names."""
    store = open_store(root)
    rec = store.find(ref)
    mark_stopped(store, rec)
    if timeout is None:
        timeout = rec.config.get("stop_timeout", 10)
    timeout = 10**9 if timeout < 0 else timeout             # -1: wait as long as it takes
    first = parse_signal(rec.config.get("stop_signal") or "TERM")
    deadline, termed = time.monotonic() + timeout, set()

    def done() -> bool:
        now = store.load(rec.id)
        if now is None:
            return True
        wake_owner(now)                                   # in a back-off: restart() sees the mark
        if time.monotonic() > deadline:
            sent = signal_process(now.pid, now.pid_start, signal.SIGKILL)
        elif (now.pid, now.pid_start) not in termed:      # SIGTERM once per process
            sent = signal_process(now.pid, now.pid_start, first)
            termed.add((now.pid, now.pid_start))
        else:
            sent = False
        if sent:
            thaw_if_paused(now)
        return settled(store, now)
    wait_until(done, timeout + OWNER_TIMEOUT)
    record_event(store, "stop", rec)
    return store.load(rec.id) or rec


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
    restarting, or starting) one only with force: SIGKILL, and its owner cleans up first."""
    store = open_store(root)
    rec = store.find(ref)
    busy = current_status(rec) in ("running", "paused", "restarting") or (
        rec.status == "created" and owner_alive(rec))
    if busy:
        if not force:
            raise ContainerError(f"container {rec.name} is {current_status(rec)}: stop it first "
                                 f"(`minicontainer stop {rec.name}`) or use `rm -f`")
        mark_stopped(store, rec)
        end_for_removal(store, rec)
    else:                                          # an exited one's supervisor may still be
        wait_until(lambda: settled(store, rec), OWNER_TIMEOUT)    # tearing down: let it finish
    rest = store.load(rec.id)
    if rest is not None:                           # the owner is gone: clean up ourselves
        clean_up(store, rest)
    return rec


def end_for_removal(store: StateStore, rec: ContainerRecord) -> None:
    """SIGKILL PID 1 (again, if it is restarted meanwhile) until the owner has finished."""
    def done() -> bool:
        now = store.load(rec.id)
        if now is None:
            return True
        if signal_process(now.pid, now.pid_start, signal.SIGKILL):
            thaw_if_paused(now)
        wake_owner(now)
        return not owner_alive(now) and not is_alive(now.pid, now.pid_start)
    wait_until(done, OWNER_TIMEOUT)


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
