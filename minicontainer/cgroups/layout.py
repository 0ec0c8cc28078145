"""Which cgroup layout the host has: unified (v2), hybrid or legacy (v1).

    unified   /sys/fs/cgroup is one cgroup2 filesystem holding every controller (most distributions now)
    hybrid    /sys/fs/cgroup is a tmpfs of v1 hierarchies (/sys/fs/cgroup/memory, …) plus an empty
              cgroup2 at /sys/fs/cgroup/unified that systemd uses only to track services
    legacy    only v1 hierarchies: one directory per controller (or per group of co-mounted
              controllers: /sys/fs/cgroup/cpu,cpuacct)

minicontainer uses cgroup v2 on unified hosts and cgroup v1 on the other two, because on those the
controllers (memory, pids, cpu, …) are bound to the v1 hierarchies and the cgroup2 has none.

Shell equivalent:  stat -fc %T /sys/fs/cgroup     (cgroup2fs = unified, tmpfs = hybrid or legacy)
                   grep cgroup /proc/self/mountinfo
See cgroups(7) ("Cgroups version 1 and version 2") and proc(5) for /proc/self/mountinfo.
"""
from __future__ import annotations

import os
from pathlib import Path

from minicontainer.errors import CgroupError
from minicontainer.procfs import mountinfo_lines, unescape
from minicontainer.records import field, record

DEFAULT_ROOT = Path("/sys/fs/cgroup")

# The v1 controllers the kernel can have; a mount's super options list those bound to it.
V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                            "net_prio", "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"})

_cache: dict[str, "Layout"] = {}


@record(frozen=True)
class Layout:
    kind: str                                            # "unified" | "hybrid" | "legacy"
    root: Path                                           # usually /sys/fs/cgroup
    unified: Path | None = None                          # the cgroup2 mount, if any
    v1: dict[str, Path] = field(default_factory=dict)    # controller -> its v1 hierarchy

    @property
    def version(self) -> int:
        """The cgroup version minicontainer uses on this layout."""
        return 2 if self.kind == "unified" else 1


def detect_layout(root: Path | str = DEFAULT_ROOT) -> Layout:
    """Find the layout under `root` (cached: it does not change while we run)."""
    key = str(root)
    if key not in _cache:
        _cache[key] = layout_from_mounts(Path(root)) or layout_from_files(Path(root))
    return _cache[key]


def read_cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup/cgroup2 mount in /proc/self/mountinfo."""
    mounts = []
    for line in mountinfo_lines("self"):
        left, _, right = line.partition(" - ")
        fstype, _source, options = (right.split() + ["", ""])[:3]
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((unescape(left.split()[4]), fstype, set(options.split(","))))
    return mounts


def layout_from_mounts(root: Path) -> Layout | None:
    """The layout from the mount table: cgroup filesystems mounted at `root` or right under it."""
    top = os.path.normpath(str(root))
    unified, v1 = None, {}
    for point, fstype, options in read_cgroup_mounts():
        if point != top and os.path.dirname(point) != top:
            continue
        if fstype == "cgroup2":
            unified = Path(point)
        else:
            for controller in options & V1_CONTROLLERS:
                v1[controller] = Path(point)     # a later mount on the same point hides earlier ones
    if unified == Path(top):
        return Layout("unified", Path(top), unified)
    if v1:
        return Layout("hybrid" if unified else "legacy", Path(top), unified, v1)
    if unified:
        return Layout("unified", unified, unified)   # only a cgroup2 right under root: use it
    return None


def layout_from_files(root: Path) -> Layout:
    """The layout from directory contents, for a tree that is not a mount (a copy, or a test's fake).

    cgroup2 has cgroup.controllers at its top; a v1 hierarchy is named after its controllers."""
    if (root / "cgroup.controllers").exists():
        return Layout("unified", root, root)
    if not root.is_dir():
        raise CgroupError(f"no cgroup filesystem at {root}: mount one "
                          f"(mount -t cgroup2 cgroup2 {root}), see cgroups(7)")
    v1: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_symlink() or not entry.is_dir():
            continue  # /sys/fs/cgroup/cpu -> cpu,cpuacct: the real directory is listed too
        for controller in set(entry.name.split(",")) & V1_CONTROLLERS:
            v1[controller] = entry
    unified = root / "unified"
    has_unified = (unified / "cgroup.controllers").exists()
    if not v1:
        raise CgroupError(f"no cgroup controllers found under {root}: neither cgroup.controllers "
                          f"(v2) nor directories like memory/ (v1)")
    return Layout("hybrid" if has_unified else "legacy", root, unified if has_unified else None, v1)
