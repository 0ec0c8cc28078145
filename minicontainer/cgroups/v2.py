"""cgroup v2: one tree, one directory per container, every controller in it.

    mount: /sys/fs/cgroup (cgroup2)          kernel doc: Documentation/admin-guide/cgroup-v2.rst
    echo "+cpu +cpuset +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
    mkdir -p /sys/fs/cgroup/minicontainer
    echo "+cpu +cpuset +memory +pids" > /sys/fs/cgroup/minicontainer/cgroup.subtree_control
    mkdir /sys/fs/cgroup/minicontainer/ID
    echo 67108864 > /sys/fs/cgroup/minicontainer/ID/memory.max
    echo $PID > /sys/fs/cgroup/minicontainer/ID/cgroup.procs

Two rules shape this:
  * top-down: a controller works in a group only if every ancestor lists it in
    cgroup.subtree_control, so we enable ours in the root and in minicontainer/.
  * no internal processes: a group (other than the root) that hands controllers to its children
    may hold no processes itself. minicontainer/ therefore stays empty; processes live only in
    the leaves minicontainer/<id>. Writing subtree_control of a group with processes fails: EBUSY.
See cgroups(7).
"""
from __future__ import annotations

import errno
from pathlib import Path

from minicontainer.cgroups.base import Cgroup
from minicontainer.cgroups.files import (cgroup_error, read_int, read_keyed, read_text, wait_until,
                                         write_file)
from minicontainer.cgroups.limits import Limits
from minicontainer.errors import CgroupError

WANTED = ("cpu", "cpuset", "memory", "pids")   # enabled for every container, so stats and limits work


class V2Cgroup(Cgroup):
    version = 2

    @property
    def base(self) -> Path:
        return self.layout.unified

    @property
    def path(self) -> Path:
        return self.paths[""]

    def find_paths(self) -> dict[str, Path]:
        return {"": self.base / self.parent / self.id}

    def controllers(self) -> set[str]:
        return set((read_text(self.base / "cgroup.controllers") or "").split())

    # -- create --------------------------------------------------------------------------------
    def setup(self, limits: Limits) -> None:
        enabled = [c for c in WANTED if c in self.controllers()]
        parent = self.base / self.parent
        self.enable_controllers(self.base, enabled, "let the root hand these controllers down")
        depth = len(Path(self.parent).parts)
        for level in [*reversed(parent.parents[:depth - 1]), parent] if depth else []:
            self.mkdir_parent(level)
            self.enable_controllers(level, enabled, f"let {level.name}/ hand them down to each "
                                    f"container (so {level.name}/ itself must never hold a process)")
        if self.path.parent != parent:                  # POD/ID: the pod's group hands them on
            self.enable_controllers(self.path.parent, enabled, "let the pod's group hand them "
                                    "to each of its containers")
        self.make_group_dir(self.path)
        self.write_limits(limits)

    def enable_controllers(self, group: Path, controllers: list[str], why: str) -> None:
        """`echo "+cpu +memory" > cgroup.subtree_control` (enabling one already on changes nothing)."""
        if not controllers:
            return  # e.g. the controller-less cgroup2 of a hybrid host
        value = " ".join(f"+{c}" for c in controllers)
        try:
            write_file(group / "cgroup.subtree_control", value, why, self.explain)
        except CgroupError as err:
            if getattr(err, "errno", None) == errno.EBUSY:
                raise CgroupError(f"{err} — the no-internal-processes rule: {group} holds processes "
                                  f"(cat {group}/cgroup.procs); move them out, then retry") from None
            raise

    def write_limits(self, limits: Limits) -> None:
        p, mb = self.path, (limits.memory or 0) >> 20
        if limits.memory is not None:
            write_file(p / "memory.max", str(limits.memory), f"-m: at most {mb} MiB of memory", self.explain)
            self.write_swap(limits)
        if limits.pids_limit is not None:
            write_file(p / "pids.max", str(limits.pids_limit),
                       f"--pids-limit: at most {limits.pids_limit} processes", self.explain)
        if limits.cpu_quota() is not None:
            quota, period = limits.cpu_quota()
            write_file(p / "cpu.max", f"{quota} {period}",
                       f"--cpus {limits.nano_cpus / 1e9:g}: {quota} us of CPU time per {period} us",
                       self.explain)
        if limits.cpu_shares is not None:
            write_file(p / "cpu.weight", str(limits.cpu_weight()),
                       f"--cpu-shares {limits.cpu_shares} as a v2 weight (1..10000, default 100)",
                       self.explain)
        if limits.cpuset_cpus is not None:
            write_file(p / "cpuset.cpus", limits.cpuset_cpus,
                       f"--cpuset-cpus: run only on CPUs {limits.cpuset_cpus}", self.explain)
        if limits.cpuset_mems is not None:
            write_file(p / "cpuset.mems", limits.cpuset_mems, "memory nodes", self.explain)
        if limits.memory_reservation is not None:
            write_file(p / "memory.low", str(limits.memory_reservation),
                       "memory.low: protected from reclaim up to this (v1's soft limit)", self.explain)
        if limits.devices:           # v2 has no devices.allow: an eBPF program decides instead
            self.attach_device_filter(limits.devices)

    def attach_device_filter(self, rules) -> None:
        from minicontainer.cgroups.device_filter import attach_device_filter
        if self.explain:
            self.explain(f"bpftool cgroup attach {self.path} device pinned PROG multi",
                         f"the device rules ({len(rules)}) as an eBPF program: bpf(BPF_PROG_LOAD), "
                         "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE); the kernel runs it at each open "
                         "and mknod of a device node")
        attach_device_filter(str(self.path), rules)

    def write_swap(self, limits: Limits) -> None:
        """v2 limits swap alone (memory.swap.max); Docker's --memory-swap is memory + swap."""
        total = limits.swap_total()
        swap = "max" if total == -1 else str(total - limits.memory)
        target = self.path / "memory.swap.max"
        if not target.exists():
            self.warnings.append("this kernel has no swap accounting (memory.swap.max): "
                                 "memory limited without a swap limit")
            return
        write_file(target, swap, "swap allowed on top of memory (--memory-swap minus --memory)",
                   self.explain)

    # -- run time ------------------------------------------------------------------------------
    def oom_killed(self) -> bool:
        """memory.events counts oom_kill: processes of this group the OOM killer chose."""
        return read_keyed(self.path / "memory.events").get("oom_kill", 0) > 0

    def stats(self) -> dict:
        p = self.path
        usage_usec = read_keyed(p / "cpu.stat").get("usage_usec")   # cpu.stat exists without the controller
        return {
            "memory_usage": read_int(p / "memory.current"),
            "memory_limit": read_int(p / "memory.max"),          # None = no limit ("max")
            "cpu_usage_ns": None if usage_usec is None else usage_usec * 1000,
            "pids_current": read_int(p / "pids.current"),
            "pids_limit": read_int(p / "pids.max"),
            "oom_kills": read_keyed(p / "memory.events").get("oom_kill"),   # processes the OOM killer chose here
        }

    def counter_files(self) -> dict[str, tuple[Path, str | None, int]]:
        p = self.path
        return {"memory_usage": (p / "memory.current", None, 1), "cpu_usage_ns": (p / "cpu.stat", "usage_usec", 1000),
                "pids_current": (p / "pids.current", None, 1), "oom_kills": (p / "memory.events", "oom_kill", 1)}

    def freeze(self) -> None:
        """`echo 1 > cgroup.freeze`, then wait for cgroup.events to say "frozen 1"."""
        self.set_frozen(1)

    def thaw(self) -> None:
        self.set_frozen(0)

    def set_frozen(self, state: int) -> None:
        why = "stop every process of the group" if state else "let the processes run again"
        write_file(self.path / "cgroup.freeze", str(state), why, self.explain)
        events = self.path / "cgroup.events"
        if not wait_until(lambda: read_keyed(events).get("frozen") == state, 5.0):
            raise cgroup_error("freeze", self.path / "cgroup.freeze", OSError(errno.ETIMEDOUT, ""),
                               str(state), hint="cgroup.events did not report the new state in 5 s")

    def kill_all(self) -> None:
        """`echo 1 > cgroup.kill` (Linux 5.14+) kills the whole group at once, forks included;
        older kernels: SIGKILL every PID in cgroup.procs until none is left."""
        kill = self.path / "cgroup.kill"
        if kill.exists():
            write_file(kill, "1", "SIGKILL every process in the group, at once", self.explain)
            if self.wait_empty():
                return
        self.signal_all()
