"""cgroup v1: one hierarchy per controller, so one directory per controller per container.

    mounts: /sys/fs/cgroup/memory, /sys/fs/cgroup/pids, /sys/fs/cgroup/cpu,cpuacct (co-mounted:
            one directory serves both), /sys/fs/cgroup/cpuset, /sys/fs/cgroup/freezer
    kernel docs: Documentation/admin-guide/cgroup-v1/{cgroups,memory,cpusets,freezer-subsystem,pids}.rst

    mkdir /sys/fs/cgroup/memory/minicontainer/ID
    echo 33554432 > /sys/fs/cgroup/memory/minicontainer/ID/memory.limit_in_bytes
    mkdir /sys/fs/cgroup/cpuset/minicontainer/ID
    echo 0-1 > /sys/fs/cgroup/cpuset/minicontainer/ID/cpuset.cpus   # a new cpuset starts empty:
    echo 0 > /sys/fs/cgroup/cpuset/minicontainer/ID/cpuset.mems     # no task may join until both are set
    echo $PID > /sys/fs/cgroup/memory/minicontainer/ID/cgroup.procs  # … and in every other hierarchy

v1 has no "no internal processes" rule and no subtree_control: every controller of a hierarchy
works in every group of it. See cgroups(7).
"""
from __future__ import annotations

import errno
from pathlib import Path

from minicontainer.cgroups.base import Cgroup, kill_quietly
from minicontainer.cgroups.files import (cgroup_error, read_int, read_keyed, read_text, wait_until,
                                         write_file)
from minicontainer.cgroups.limits import Limits
from minicontainer.errors import CgroupError

# The hierarchies a container joins (devices, blkio, net_cls … are left to the parent group).
USED = ("cpuset", "cpu", "cpuacct", "memory", "pids", "freezer")
# v1 writes "no limit" as a huge number: PAGE_COUNTER_MAX pages; anything this large is unlimited.
UNLIMITED = 1 << 62


class V1Cgroup(Cgroup):
    version = 1
    JOIN_FILE = "tasks"                 # one thread, no global lock: base.Cgroup.join

    def find_paths(self) -> dict[str, Path]:
        paths = {c: self.layout.v1[c] / self.parent / self.id for c in USED if c in self.layout.v1}
        devices = self.layout.v1.get("devices")           # only a container with device rules has
        if devices and (self.with_devices or (devices / self.parent / self.id).is_dir()):   # one
            paths["devices"] = devices / self.parent / self.id
        return paths

    def controllers(self) -> set[str]:
        return set(self.paths)

    # -- create --------------------------------------------------------------------------------
    def setup(self, limits: Limits) -> None:
        for group in self.dirs:
            depth = len(Path(self.parent).parts) + len(Path(self.id).parts) - 1
            hierarchy = group.parents[depth]                         # H/PARENT…/[POD/]ID
            for level in self.mkdir_parents(hierarchy, group.parent):
                if group == self.paths.get("cpuset"):
                    self.init_cpuset(level, level.parent, None)      # a new level: its parent's
            self.make_group_dir(group)
            if group == self.paths.get("cpuset"):
                self.init_cpuset(group, group.parent, limits.cpuset_cpus, limits.cpuset_mems)
        self.write_limits(limits)

    def init_cpuset(self, group: Path, parent: Path, cpus: str | None, mems: str | None = None) -> None:
        """Give a new cpuset its CPUs and memory nodes (copied from the parent), or none may join."""
        if read_text(group / "cpuset.mems") and read_text(group / "cpuset.cpus") and cpus is mems is None:
            return  # already set (an earlier run, or cgroup.clone_children=1)
        mems = mems or read_text(parent / "cpuset.mems") or "0"
        why = "a new v1 cpuset is empty; copy the parent's before any task can join"
        write_file(group / "cpuset.mems", mems, why, self.explain)
        if cpus is None:
            write_file(group / "cpuset.cpus", read_text(parent / "cpuset.cpus") or "0", why, self.explain)
        else:
            write_file(group / "cpuset.cpus", cpus, f"--cpuset-cpus: run only on CPUs {cpus}", self.explain)

    def write_limits(self, limits: Limits) -> None:
        if limits.memory is not None:
            mem = self.paths["memory"]
            write_file(mem / "memory.limit_in_bytes", str(limits.memory),
                       f"-m: at most {limits.memory >> 20} MiB of memory", self.explain)
            self.write_swap(mem, limits)
        if limits.pids_limit is not None:
            write_file(self.paths["pids"] / "pids.max", str(limits.pids_limit),
                       f"--pids-limit: at most {limits.pids_limit} processes", self.explain)
        if limits.cpu_quota() is not None:
            quota, period = limits.cpu_quota()
            cpu = self.paths["cpu"]
            write_file(cpu / "cpu.cfs_period_us", str(period), "CFS period for --cpus", self.explain)
            write_file(cpu / "cpu.cfs_quota_us", str(quota),
                       f"--cpus {(limits.nano_cpus or 0) / 1e9:g}: {quota} us of CPU time per period",
                       self.explain)
        if limits.memory_reservation is not None:
            write_file(self.paths["memory"] / "memory.soft_limit_in_bytes", str(limits.memory_reservation),
                       "a soft limit: under pressure, reclaimed down to this", self.explain)
        self.write_devices(limits.devices)
        if limits.cpu_shares is not None:
            write_file(self.paths["cpu"] / "cpu.shares", str(limits.cpu_shares),
                       "--cpu-shares: relative CPU weight (default 1024)", self.explain)

    def write_devices(self, rules) -> None:
        """The devices controller: `echo a > devices.deny`, then each rule in order (the
        OCI spec's linux.resources.devices; the last matching rule decides)."""
        for allow, kind, major, minor, access in rules:
            rule = f"{kind} {'*' if major < 0 else major}:{'*' if minor < 0 else minor} {access}"
            if kind == "a":
                rule = "a"
            write_file(self.paths["devices"] / ("devices.allow" if allow else "devices.deny"), rule,
                       f"{'allow' if allow else 'deny'} {rule}", self.explain)

    def write_swap(self, mem: Path, limits: Limits) -> None:
        """v1 limits memory + swap together (memsw), after memory: memsw may never be below it."""
        target = mem / "memory.memsw.limit_in_bytes"
        if not target.exists():
            self.warnings.append("this kernel has no swap accounting (memory.memsw.limit_in_bytes; "
                                 "boot with swapaccount=1): memory limited without a swap limit")
            return
        write_file(target, str(limits.swap_total()), "--memory-swap: memory + swap together",
                   self.explain)

    # -- run time ------------------------------------------------------------------------------
    def oom_killed(self) -> bool:
        """memory.oom_control has "oom_kill N" since Linux 4.13; before, failcnt counts limit hits."""
        mem = self.paths.get("memory")
        if mem is None:
            return False
        control = read_keyed(mem / "memory.oom_control")
        if "oom_kill" in control:
            return control["oom_kill"] > 0
        return (read_int(mem / "memory.failcnt") or 0) > 0

    def stats(self) -> dict:
        def read(controller: str, name: str) -> int | None:
            return read_int(self.paths[controller] / name) if controller in self.paths else None

        limit = read("memory", "memory.limit_in_bytes")
        return {
            "memory_usage": read("memory", "memory.usage_in_bytes"),
            "memory_limit": None if limit is None or limit >= UNLIMITED else limit,
            "cpu_usage_ns": read("cpuacct", "cpuacct.usage"),
            "pids_current": read("pids", "pids.current"),
            "pids_limit": read("pids", "pids.max"),
            "oom_kills": read_keyed(self.paths["memory"] / "memory.oom_control").get("oom_kill")
            if "memory" in self.paths else None,          # processes the OOM killer chose here
        }

    def counter_files(self) -> dict[str, tuple[Path, str | None, int]]:
        files = {"memory_usage": ("memory", "memory.usage_in_bytes", None), "cpu_usage_ns":
                 ("cpuacct", "cpuacct.usage", None), "pids_current": ("pids", "pids.current", None),
                 "oom_kills": ("memory", "memory.oom_control", "oom_kill")}
        return {k: (self.paths[c] / name, key, 1) for k, (c, name, key) in files.items() if c in self.paths}

    def freeze(self) -> None:
        """`echo FROZEN > freezer.state`; it reads FREEZING until every task has stopped."""
        self.set_state("FROZEN", "stop every process of the group")

    def thaw(self) -> None:
        self.set_state("THAWED", "let the processes run again")

    def set_state(self, state: str, why: str) -> None:
        if "freezer" not in self.paths:
            raise cgroup_error("write", self.layout.root / "freezer", OSError(errno.ENOENT, ""),
                               state, hint="the freezer controller is not mounted on this host")
        target = self.paths["freezer"] / "freezer.state"
        write_file(target, state, why, self.explain)
        if not wait_until(lambda: read_text(target) == state, 5.0):
            raise cgroup_error("write", target, OSError(errno.ETIMEDOUT, ""), state,
                               hint=f"freezer.state still says {read_text(target)} after 5 s")

    def kill_all(self) -> None:
        """Freeze (so no fork slips through), SIGKILL everyone, thaw (frozen tasks die only when
        thawed), then keep killing until cgroup.procs is empty."""
        if "freezer" in self.paths and self.try_freeze():
            for pid in self.procs():
                kill_quietly(pid)
            self.thaw()
        self.signal_all()

    def try_freeze(self) -> bool:
        try:
            self.freeze()
            return True
        except CgroupError:
            # A task that will not freeze: undo (frozen tasks cannot die), then plain SIGKILL rounds.
            try:
                write_file(self.paths["freezer"] / "freezer.state", "THAWED", "give up freezing", None)
            except CgroupError:
                pass
            return False
