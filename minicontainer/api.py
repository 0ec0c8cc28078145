"""The library API: what the CLI, the labs, the tests and the benchmarks all use.

    from minicontainer import Container
    status = Container("busybox", ["sh", "-c", "echo hi"], remove=True).run()

    Container(image, command, **options)   options are ContainerConfig's fields (config.py)
        .run() -> int                      start, wait, clean up; the container's exit status
    list_containers(root=None)             the records in the state directory
    remove_container(ref, force=False)     `minicontainer rm`: stop if forced, then delete
    image_store(root=None)                 the ImageStore (storage/images.py)
"""
from __future__ import annotations

import os
import signal
import time

from .config import ContainerConfig
from .errors import ContainerError
from .explain import Explainer
from .state import ContainerRecord, StateStore, is_alive, state_root


class Container:
    """One container: configured at construction (validated at once), started by run()."""

    def __init__(self, image: str, command=(), *, root=None, explain: bool = False, **options):
        self.config = ContainerConfig(image=image, command=list(command), **options).validate()
        self.store = StateStore(state_root(root))
        self.explain = Explainer(explain)
        self.record: ContainerRecord | None = None

    def run(self) -> int:
        """Run in the foreground; returns the exit status (128+N if signal N killed it)."""
        from . import runtime
        ctx = runtime.Context(self.config, self.store, self.explain)
        try:
            return runtime.run(ctx)
        finally:
            self.record = ctx.record

    @property
    def id(self) -> str | None:
        return self.record.id if self.record else None

    @property
    def name(self) -> str | None:
        return self.record.name if self.record else None


def list_containers(root=None) -> list[ContainerRecord]:
    """All containers with a state entry; a 'running' one whose PID is gone shows as exited."""
    store = StateStore(state_root(root))
    records = store.list()
    for rec in records:
        if rec.status == "running" and not is_alive(rec.pid, rec.pid_start):
            rec.status = "exited"             # its minicontainer process was killed
    return records


def remove_container(ref: str, *, force: bool = False, root=None) -> ContainerRecord:
    """Delete a container's overlay dirs, cgroup and state; --force kills it first."""
    from .cgroups import open_cgroup
    from .storage.overlay import remove_overlay_dirs
    store = StateStore(state_root(root))
    rec = store.find(ref)
    if rec.status == "running" and is_alive(rec.pid, rec.pid_start):
        if not force:
            raise ContainerError(f"container {rec.name} is running: stop it first or use `rm -f`")
        kill_and_wait(rec)
    cgroup = open_cgroup(rec.cgroup) if rec.cgroup else None
    if cgroup is not None:
        cgroup.remove()
    remove_overlay_dirs(store.container_dir(rec.id))
    store.delete(rec)
    return rec


def kill_and_wait(rec: ContainerRecord, timeout: float = 10.0) -> None:
    """SIGKILL the container's PID 1 (only if it is still the process we started)."""
    if is_alive(rec.pid, rec.pid_start):
        os.kill(rec.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while is_alive(rec.pid, rec.pid_start) and time.monotonic() < deadline:
        time.sleep(0.01)


def image_store(root=None):
    from .storage.images import ImageStore
    return ImageStore(state_root(root) / "images")


def container_stats(refs=(), *, root=None, interval: float = 0.5) -> list[dict]:
    """`minicontainer stats`: memory, CPU % and PIDs of running containers, read from their
    cgroups. CPU % is the cgroup's CPU time over `interval` seconds of wall time (100 % = one
    full CPU, as `docker stats` counts it)."""
    from .cgroups import open_cgroup
    store = StateStore(state_root(root))
    records = [store.find(r) for r in refs] if refs else list_containers(root)
    running = [(r, open_cgroup(r.cgroup)) for r in records
               if r.status == "running" and is_alive(r.pid, r.pid_start)]
    for r, cg in running:
        if cg is None and refs:
            raise ContainerError(f"container {r.name} has no cgroup (was it cleaned up?)")
    running = [(r, cg) for r, cg in running if cg is not None]
    before = {r.id: (cg.stats().get("cpu_usage_ns") or 0, time.monotonic()) for r, cg in running}
    time.sleep(interval if running else 0)
    rows = []
    for r, cg in running:
        s = cg.stats()
        cpu0, t0 = before[r.id]
        cpu = ((s.get("cpu_usage_ns") or 0) - cpu0) / 1e9 / max(time.monotonic() - t0, 1e-6)
        rows.append({"id": r.id, "name": r.name, "cpu_percent": round(100 * cpu, 2),
                     "memory_usage": s.get("memory_usage") or 0,
                     "memory_limit": s.get("memory_limit") or host_memory(),
                     "pids": s.get("pids_current") or 0, "pids_limit": s.get("pids_limit")})
    return rows


def host_memory() -> int:
    """MemTotal from /proc/meminfo: what an unlimited container may use (Docker shows this)."""
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024
