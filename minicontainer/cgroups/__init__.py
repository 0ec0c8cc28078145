"""cgroups: limit and account what a container's processes use (memory, CPU, PIDs).

A control group is a set of processes the kernel accounts and limits together. It is a directory:

    mkdir /sys/fs/cgroup/minicontainer/ID                         # v2 (v1: …/memory/minicontainer/ID, …)
    echo 67108864 > /sys/fs/cgroup/minicontainer/ID/memory.max    # docker run -m 64m
    echo $PID > /sys/fs/cgroup/minicontainer/ID/cgroup.procs      # the container's init joins

One interface, two backends, picked by the host's layout (layout.py): v2.py for a unified
cgroup2 host, v1.py for hybrid and legacy hosts. limits.py parses Docker's flags. See cgroups(7)
and docs/cgroups.md.

    limits = parse_limits(memory="32m", pids_limit=20)      # ConfigError on a bad value
    cg = create_cgroup(container_id, limits, explain=print_fn)
    cg.join()  (a just-forked child)   or   cg.add_process(pid)
    cg.stats(); cg.oom_killed(); cg.freeze(); cg.thaw()
    cg.remove()                                             # kills what is left, removes the dirs
    for cid in list_cgroups(): open_cgroup(cid).remove()    # cleanup after a crash
    open_cgroup(rec.cgroup, rec.cgroup_root)                # a record's group, wherever it was made
"""
from __future__ import annotations

from pathlib import Path

from minicontainer.cgroups.base import PARENT, Cgroup
from minicontainer.cgroups.files import Explain
from minicontainer.cgroups.layout import DEFAULT_ROOT, Layout, detect_layout
from minicontainer.cgroups.limits import Limits, parse_limits, shares_to_weight
from minicontainer.cgroups.v1 import USED as V1_USED, V1Cgroup
from minicontainer.cgroups.v2 import V2Cgroup


def backend(layout: Layout) -> type[Cgroup]:
    return V2Cgroup if layout.version == 2 else V1Cgroup


def create_cgroup(container_id: str, limits: Limits | None = None, explain: Explain = None,
                  root: Path | str = DEFAULT_ROOT, parent: str = PARENT, devices: bool = False) -> Cgroup:
    """Make the container's group in every controller we use and write its limits.

    `explain(shell_line, why)` is called for every mkdir and every file written.
    `parent` is the group all containers share (tests use their own, apart from real containers)."""
    layout = detect_layout(root)
    parent, container_id = locate(container_id, parent)
    cgroup = backend(layout)(container_id, layout, explain, parent, devices)
    cgroup.create(limits or Limits())
    return cgroup


def locate(name: str, parent: str = PARENT) -> tuple[str, str]:
    """A record's cgroup name → (parent, id). 'ID' and 'POD/ID' sit in `parent`
    (minicontainer/); '/A/B/ID' — `run --cgroup-parent /A/B` — is a path from each
    hierarchy's root, as Docker's --cgroup-parent with a leading slash."""
    if not name.startswith("/"):
        return parent, name
    head, _, tail = name.rpartition("/")
    return head.strip("/"), tail


def open_cgroup(container_id: str, root: Path | str | None = DEFAULT_ROOT, explain: Explain = None,
                parent: str = PARENT, devices: bool = False) -> Cgroup | None:
    """The existing group of a container (e.g. left by a killed minicontainer), or None.

    `root` is the tree it was made in: /sys/fs/cgroup ("" or None too), or for a rootless
    container the delegated group its record names (cgroup_root), where <root>/minicontainer/ID
    lives."""
    if root and Path(root) != DEFAULT_ROOT and not Path(root).is_dir():
        return None                          # the delegated group is gone, and ours with it
    layout = detect_layout(root or DEFAULT_ROOT)
    parent, container_id = locate(container_id, parent)
    cgroup = backend(layout)(container_id, layout, explain, parent, devices)
    return cgroup if cgroup.exists() else None


def list_cgroups(root: Path | str = DEFAULT_ROOT, parent: str = PARENT) -> list[str]:
    """The container ids that have a group under minicontainer/ (in any v1 hierarchy)."""
    layout = detect_layout(root)
    parents = [layout.unified / parent] if layout.version == 2 else \
        list(dict.fromkeys(layout.v1[c] / parent for c in V1_USED if c in layout.v1))
    ids: set[str] = set()
    for parent in parents:
        if parent.is_dir():
            ids.update(entry.name for entry in parent.iterdir() if entry.is_dir())
    return sorted(ids)


def remove_parent(root: Path | str = DEFAULT_ROOT, parent: str = PARENT) -> None:
    """rmdir the shared parent group(s) if no container group is left in them (tests, uninstall)."""
    layout = detect_layout(root)
    tops = [layout.unified] if layout.version == 2 else \
        [layout.v1[c] for c in (*V1_USED, "devices") if c in layout.v1]      # (run --device)
    for top in dict.fromkeys(tops):
        try:
            (top / parent).rmdir()
        except OSError:
            pass  # still in use, or never made


__all__ = ["Cgroup", "Explain", "Layout", "Limits", "V1Cgroup", "V2Cgroup", "create_cgroup",
           "detect_layout", "list_cgroups", "open_cgroup", "parse_limits", "remove_parent", "shares_to_weight"]
