"""What every container cgroup can do, whichever cgroup version holds it.

A container's cgroup is the directory <mount>/minicontainer/<id>: on cgroup v2 one directory,
on cgroup v1 one per hierarchy (memory/, pids/, cpu,cpuacct/ …). v1.py and v2.py fill in the files
that differ; joining, listing, killing and removing are the same idea in both:

    echo $PID > …/cgroup.procs        join (v1: in every hierarchy)
    cat …/cgroup.procs                who is inside
    kill -KILL $(cat …/cgroup.procs)  empty the group (v2 5.14+: echo 1 > cgroup.kill)
    rmdir …                           remove it; only an empty group can go
See cgroups(7).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
from pathlib import Path

from minicontainer.cgroups.files import (Explain, make_dir, read_pids, remove_dir, wait_until,
                                         write_file)
from minicontainer.cgroups.layout import Layout
from minicontainer.cgroups.limits import Limits
from minicontainer.errors import CgroupError

# Every container's group lives in <mount>/minicontainer/<id>. MINICONTAINER_CGROUP_PARENT moves
# them elsewhere (the test suite uses its own parent, so it can prove it left nothing behind).
PARENT = os.environ.get("MINICONTAINER_CGROUP_PARENT") or "minicontainer"
KILL_TIMEOUT = 5.0                # seconds to wait for killed processes to leave the group
# An ID, or POD/ID: a pod's containers sit in the pod's group (orchestration/pods.py).
_VALID_ID = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,127}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# Which controller each limit needs, and the flag to name when it is missing.
NEEDS = (("memory", "memory", "--memory"), ("pids_limit", "pids", "--pids-limit"),
         ("nano_cpus", "cpu", "--cpus"), ("cpu_shares", "cpu", "--cpu-shares"),
         ("cpuset_cpus", "cpuset", "--cpuset-cpus"))


class Cgroup:
    """One container's cgroup. Use create_cgroup() / open_cgroup(), not the constructor."""

    version = 0

    def __init__(self, container_id: str, layout: Layout, explain: Explain = None,
                 parent: str = PARENT, devices: bool = False):
        for name in (container_id, *[p for p in parent.split("/") if p]):   # nested: a/b/c; "": the root
            if not _VALID_ID.match(name):
                raise CgroupError(f"invalid cgroup name {name!r}: use letters, digits, '_', '.', '-'")
        self.with_devices = devices          # v1: a group in the devices hierarchy too (OCI rules)
        self.id = container_id
        self.parent = parent                 # the directory every container's group sits in
        self.layout = layout
        self.explain = explain
        self.warnings: list[str] = []        # limits the kernel cannot apply (e.g. no swap accounting)
        self.paths: dict[str, Path] = self.find_paths()

    # -- implemented by v1.py / v2.py -------------------------------------------------------
    def find_paths(self) -> dict[str, Path]:
        raise NotImplementedError

    def controllers(self) -> set[str]:
        """The controllers this layout offers to the group."""
        raise NotImplementedError

    def setup(self, limits: Limits) -> None:
        raise NotImplementedError

    def oom_killed(self) -> bool:
        raise NotImplementedError

    def stats(self) -> dict:
        raise NotImplementedError

    def counter_files(self) -> dict[str, tuple[Path, str | None, int]]:
        """The files of stats() whose numbers move while the group runs, for a live view that
        keeps them open (dashboard/): stats key → (file, key inside a flat-keyed file or None
        for a plain number, the factor to stats()' unit)."""
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def kill_all(self) -> None:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    @property
    def dirs(self) -> list[Path]:
        """The group's directories, one per hierarchy (co-mounted controllers share one)."""
        return list(dict.fromkeys(self.paths.values()))

    @property
    def relpath(self) -> str:
        """The group as a process sees it in /proc/PID/cgroup: /minicontainer/<id>."""
        return "/" + "/".join(p for p in (self.parent, self.id) if p)

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.dirs)

    def create(self, limits: Limits) -> None:
        """Make the directories and write the limits; on any failure remove what was made."""
        self.check_controllers(limits)
        self.made: list[Path] = []
        try:
            self.setup(limits)
        except BaseException:
            for d in reversed(self.made):   # only what we made: a same-named group is not ours
                try:
                    remove_dir(d, "undo", None)
                except CgroupError:
                    pass                    # the first error is the one to report
            raise

    def make_group_dir(self, path: Path) -> None:
        """`mkdir …/minicontainer/<id>`, remembered so a failed create can undo it."""
        make_dir(path, "the container's own group", self.explain)
        self.made.append(path)

    def check_controllers(self, limits: Limits) -> None:
        """A limit whose controller this host lacks is an error, not a silently ignored flag."""
        have = self.controllers()
        for field, controller, flag in NEEDS:
            if getattr(limits, field) is not None and controller not in have:
                raise CgroupError(f"{flag} needs the {controller} cgroup controller, which this host "
                                  f"does not offer under {self.layout.root} (see cgroups(7))")

    JOIN_FILE = "cgroup.procs"          # v1 overrides: "tasks" (see join)

    def join(self) -> None:
        """Move the calling process into the group: `echo 0 > …/JOIN_FILE` (0: myself). Called
        by a child just forked, so it has one thread. Moving a whole process (cgroup.procs)
        takes the kernel's global threadgroup lock, and taking that lock waits for an RCU grace
        period, 8–15 ms here (cgroup_threadgroup_rwsem, a per-CPU rw-semaphore). Cgroup v1 can
        move the calling thread on its own (`tasks`), which needs no such lock: for a process
        of one thread, the same move in ~0.5 ms. v2 moves only whole processes."""
        for d in self.dirs:
            write_file(d / self.JOIN_FILE, "0", "move this process into the group", self.explain)

    def add_process(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the group: `echo PID > cgroup.procs`."""
        for d in self.dirs:
            write_file(d / "cgroup.procs", str(pid), f"move process {pid} into the group", self.explain)

    def procs(self) -> list[int]:
        """The PIDs in the group (the union over every v1 hierarchy)."""
        pids: set[int] = set()
        for d in self.dirs:
            pids.update(read_pids(d / "cgroup.procs"))
        return sorted(pids)

    def signal_all(self, timeout: float = KILL_TIMEOUT) -> None:
        """SIGKILL every PID in cgroup.procs, again and again, until the group is empty.

        Repeating catches children forked between reading the list and the kill."""
        if self.explain:
            first = self.dirs[0] / "cgroup.procs"
            self.explain(f"kill -KILL $(cat {shlex.quote(str(first))})", "kill every process in the group")

        def emptied() -> bool:
            pids = self.procs()
            for pid in pids:
                kill_quietly(pid)
            return not pids

        if not wait_until(emptied, timeout):
            raise CgroupError(f"kill: processes {self.procs()} still in {self.dirs[0]} after "
                              f"{timeout:.0f} s of SIGKILL (stuck in uninterruptible sleep?)")

    def wait_empty(self, timeout: float = KILL_TIMEOUT) -> bool:
        return wait_until(lambda: not self.procs(), timeout)

    def remove(self) -> None:
        """Kill what is left, then rmdir every directory. Safe to call twice."""
        if not self.exists():
            return
        if self.procs():
            self.kill_all()
        for d in reversed(self.dirs):
            remove_dir(d, "remove the empty group", self.explain)

    def mkdir_parent(self, parent: Path) -> bool:
        return make_dir(parent, "the parent group of every minicontainer container", self.explain,
                        exist_ok=True)

    def mkdir_parents(self, top: Path, parent: Path) -> list[Path]:
        """mkdir -p from `top` (a hierarchy's root) down to `parent`; the levels that were new."""
        made, depth = [], len(parent.relative_to(top).parts)
        for level in reversed([parent, *parent.parents[:depth - 1]] if depth else []):
            if self.mkdir_parent(level):
                made.append(level)
        return made

    def __repr__(self) -> str:
        return f"<cgroup v{self.version} {self.relpath}>"


def kill_quietly(pid: int) -> None:
    """SIGKILL `pid`; one that has exited meanwhile is fine."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
