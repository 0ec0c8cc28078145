"""Cgroup delegation: the part of the cgroup tree an ordinary user may manage (rootless mode).

    Documentation/admin-guide/cgroup-v2.rst ("Delegation"), man 7 cgroups ("Cgroups v2
    delegation"), systemd.resource-control(5) Delegate=
    shell: cat /proc/self/cgroup
           ls -ld /sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service

A cgroup is *delegated* to a user when its directory and its cgroup.procs,
cgroup.subtree_control and cgroup.threads files belong to that user: the user may then make
child groups, move processes between groups below it and write limits in the children. On a
systemd machine every logged-in user gets one: /user.slice/user-UID.slice/user@UID.service
(Delegate=yes; which controllers are handed down is systemd's setting, often only memory and
pids). Two kernel rules decide whether minicontainer can use it:

  * moving a process needs write access to cgroup.procs of the *common ancestor* of its old
    and its new group, so minicontainer must already run inside the delegated subtree — from
    a user service or `systemd-run --user --scope -p Delegate=yes minicontainer run …`, not
    from a login session's scope, which belongs to root;
  * no internal processes: the group that hands controllers to minicontainer/ must not hold
    processes itself.

Only cgroup v2. Cgroup v1 has no safe delegation (a user owning a v1 group could give itself
more than its parent allows), so on a v1 or hybrid host — like the CI machine — a rootless
container runs without a cgroup, and `run` says so in one line.
"""
from __future__ import annotations

import os
from pathlib import Path

from minicontainer.cgroups.layout import DEFAULT_ROOT, detect_layout
from minicontainer.errors import CgroupError


def own_cgroup(proc_file: str = "/proc/self/cgroup") -> str:
    """The cgroup v2 path of this process: the `0::/path` line of /proc/self/cgroup."""
    try:
        for line in Path(proc_file).read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        pass
    return "/"


def is_delegated_to(group: Path, uid: int) -> bool:
    """Owned by uid, with cgroup.procs writable: the marks of a delegated group."""
    try:
        return os.stat(group).st_uid == uid and os.access(group / "cgroup.procs", os.W_OK)
    except OSError:
        return False


def find_delegated_cgroup(uid: int | None = None, root: Path | str = DEFAULT_ROOT,
                          proc_file: str = "/proc/self/cgroup") -> tuple[Path | None, str]:
    """(the top of the subtree delegated to uid that holds this process, "") or (None, why).

    Container groups then go to <that group>/minicontainer/<id>, as a root's go to
    /sys/fs/cgroup/minicontainer/<id>."""
    uid = os.geteuid() if uid is None else uid
    try:
        layout = detect_layout(root)
    except CgroupError as e:
        return None, str(e)
    if layout.version != 2:
        return None, (f"this host uses cgroup v1 ({layout.kind} layout), which cannot be delegated to "
                      "a user safely; on a cgroup v2 host (systemd.unified_cgroup_hierarchy=1) systemd "
                      "delegates a cgroup to every user")
    here = own_cgroup(proc_file)
    base = layout.unified
    group, top = base / here.lstrip("/"), None
    while group != base and is_delegated_to(group, uid):    # climb while the group is ours
        top, group = group, group.parent
    if top is None:
        return None, (f"your cgroup {here} is not delegated to you (uid {uid}); start minicontainer "
                      "inside one: systemd-run --user --scope -p Delegate=yes minicontainer run …")
    if top == base / here.lstrip("/"):
        return None, (f"you run directly in your delegated cgroup {top}, and a group that hands "
                      "controllers down may hold no processes; start minicontainer from a child "
                      f"group: mkdir {top}/cli && echo $$ > {top}/cli/cgroup.procs")
    return top, ""
