"""What state is a container in? The record, checked against the kernel — and `ps`'s words for it.

    man 5 proc (/proc/PID/stat: a PID and its start time), man 7 cgroups
    shell: cat /var/lib/minicontainer/containers/ID/state.json; kill -0 PID

A record (state.py) says what its *owner* — the supervisor of a `run -d` container, the CLI
process of a foreground `run` — last wrote. The kernel says what is true now: a recorded PID 1
may have exited, an owner may have been killed. Every verb (stop.py, freezer.py, inspection.py,
logs.py, gc.py) asks here first:

    current_status(rec)   running · paused · restarting · created · exited · dead (owner gone)
    status_text(rec)      the STATUS column of `ps`: 'Up 3 seconds', 'Exited (0) 2 minutes ago'
    settled(store, rec)   stopped for good: exit recorded, owner done, no restart pending
    container_cgroup(rec) its cgroup, opened (None: rootless without delegation)
"""
from __future__ import annotations

import time

from .state import ContainerRecord, StateStore, is_alive, open_store

OWNER_TIMEOUT = 10.0            # seconds to wait for the owner to record an exit / clean up
POLL = 0.02


def owner_alive(rec: ContainerRecord) -> bool:
    """Is the process that waits for this container (supervisor or CLI) still there?"""
    return is_alive(rec.supervisor_pid, rec.supervisor_start)


def current_status(rec: ContainerRecord) -> str:
    """The recorded status, checked against the kernel: 'dead' when nobody is left to record
    what happened (its owner was killed: `minicontainer gc` cleans it up)."""
    if rec.status in ("running", "paused"):
        if is_alive(rec.pid, rec.pid_start):
            return rec.status
        return "exited" if owner_alive(rec) else "dead"
    if rec.status == "created" and not rec.supervisor_pid:
        return "created"                           # made by `create`, never started (create.py)
    if rec.status in ("created", "restarting") and not owner_alive(rec):
        return "dead"
    return rec.status


def is_running(rec: ContainerRecord) -> bool:
    """Its PID 1 runs (or is frozen): it has namespaces, mounts and processes to look at."""
    return current_status(rec) in ("running", "paused")


def list_containers(root=None) -> list[ContainerRecord]:
    """Every record, its status as current_status() says."""
    records = open_store(root).list()
    for rec in records:
        rec.status = current_status(rec)
    return records


def human_duration(seconds: float) -> str:
    """Docker's wording (go-units HumanDuration): '3 seconds', 'About a minute', '2 hours'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    minutes = s // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = int(s / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 14:
        return f"{hours // 24} days"
    if hours < 24 * 60:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 730:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(rec: ContainerRecord, now: float | None = None) -> str:
    """The STATUS column of `ps`: 'Up 3 seconds', 'Exited (0) 2 minutes ago', …"""
    now = now or time.time()
    status = current_status(rec)
    code = "?" if rec.exit_code is None else rec.exit_code
    if status == "running":
        health = (rec.health or {}).get("Status")               # health.py
        shown = {"starting": " (health: starting)"}.get(health, f" ({health})" if health else "")
        return f"Up {human_duration(now - rec.started_at)}{shown}"
    if status == "paused":
        return f"Up {human_duration(now - rec.started_at)} (Paused)"
    if status == "restarting":
        return f"Restarting ({code}) {human_duration(now - rec.finished_at)} ago"
    if status == "exited":
        return f"Exited ({code}) {human_duration(now - (rec.finished_at or rec.created))} ago"
    return status.capitalize()


def settled(store: StateStore, rec: ContainerRecord) -> bool:
    """Has the container stopped for good (exit recorded, owner done, no restart pending)?
    A supervisor exits when it is done; a foreground owner (a library caller) may live on."""
    now = store.load(rec.id)
    if now is None:
        return True
    if is_alive(now.pid, now.pid_start):
        return False
    if not owner_alive(now):
        return True
    return now.status == "exited" and not now.config.get("detach")


def wait_until(condition, timeout: float) -> bool:
    """Poll condition() until it is true (→ True) or `timeout` seconds have passed (→ False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def container_cgroup(rec: ContainerRecord):
    """The container's group, in /sys/fs/cgroup or (rootless) in the tree delegated to its
    user; None when it has none. Opening it creates nothing."""
    from .cgroups import open_cgroup
    return open_cgroup(rec.cgroup, rec.cgroup_root) if rec.cgroup else None


def no_cgroup_reason(rec: ContainerRecord) -> str:
    """Why a container has no cgroup (for pause, stats): rootless without delegation, or gone."""
    if not rec.cgroup:
        return ("it has no cgroup, because it was started rootless where none is delegated to you "
                "(cgroup v1, or outside a delegated cgroup v2 scope: see docs/rootless.md)")
    return f"its cgroup {rec.cgroup_root or '/sys/fs/cgroup'}/…/{rec.cgroup} is gone (was it cleaned up?)"
