"""pause and unpause: the cgroup freezer stops every process of a container at once.

    cgroup v2: Documentation/admin-guide/cgroup-v2.rst "cgroup.freeze";
    cgroup v1: Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst
    shell: echo 1 > /sys/fs/cgroup/…/cgroup.freeze        (v1: echo FROZEN > freezer.state)

Unlike SIGSTOP, which a process could see (its parent gets SIGCHLD, a debugger notices), the
freezer stops the processes without telling them; thawing lets them go on where they were.
A frozen process acts on a signal only once thawed — so stop and kill (stop.py) thaw it.
The freezing itself is the cgroup's (cgroups/: Cgroup.freeze, Cgroup.thaw).
"""
from __future__ import annotations

from .errors import ContainerError
from .events import record as record_event
from .state import ContainerRecord, open_store
from .status import container_cgroup, current_status, no_cgroup_reason


def pause_container(ref: str, root=None) -> ContainerRecord:
    store = open_store(root)
    rec = store.find(ref)
    with store.locked():                           # check and change in one step: the supervisor
        rec = store.load(rec.id) or rec            # cannot record an exit in between (that we
        status = current_status(rec)               # would then overwrite with "paused")
        if status == "paused":
            raise ContainerError(f"container {rec.name} is already paused")
        if status != "running":
            raise ContainerError(f"container {rec.name} is not running")
        cgroup = container_cgroup(rec)
        if cgroup is None:
            raise ContainerError(f"container {rec.name} cannot be paused: {no_cgroup_reason(rec)}")
        cgroup.freeze()
        rec.status = "paused"
        store.save(rec)
    record_event(store, "pause", rec)
    return rec


def unpause_container(ref: str, root=None) -> ContainerRecord:
    store = open_store(root)
    rec = store.find(ref)
    with store.locked():                           # as in pause: check and change in one step
        rec = store.load(rec.id) or rec
        if current_status(rec) != "paused":
            raise ContainerError(f"container {rec.name} is not paused")
        cgroup = container_cgroup(rec)
        if cgroup is not None:
            cgroup.thaw()
        rec.status = "running"
        store.save(rec)
    record_event(store, "unpause", rec)
    return rec


def thaw_if_paused(rec: ContainerRecord) -> None:
    """A frozen process acts on a signal only once thawed."""
    cgroup = container_cgroup(rec)
    if rec.status == "paused" and cgroup is not None:
        cgroup.thaw()
