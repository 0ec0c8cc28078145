"""`minicontainer gc` (also `system prune`): remove what crashed runs left behind.

    man 7 cgroups, man 7 mount_namespaces, man 4 veth, man 5 proc (/proc/PID/mountinfo)
    shell, by hand: cat …/minicontainer/*/cgroup.procs; kill; rmdir; rm -rf containers/ID

minicontainer writes a record *before* it creates anything (state.py), so after a SIGKILL
of the CLI or a supervisor at any step — or after a reboot, when every recorded PID belongs
to a previous boot — the records say what may be left. A container is an **orphan** when the
process that owned it (its supervisor, or the CLI of a foreground `run`) is gone while its
record still says it was starting, running or restarting: nobody will ever record its exit or
tear it down. gc does that teardown:

    what                      where                                       how it goes
    its processes, mounts     whatever has containers/ID in its mountinfo  SIGKILL, wait (pidfd)
                              (also rootless, with no cgroup, no PID 1 yet recorded)
    the container's processes its cgroup (even a PID 1 left running)      SIGKILL all (cgroup.kill)
    its cgroup                /sys/fs/cgroup/…/minicontainer/ID           rmdir
    its network lease, veth   <root>/networks/…, mc<id> on the bridge      network.detach
    leases of no container    (judged under the network lock: no record,   cleanup_orphans
                              or exited with its owner gone)
    leftover veths, bridges   mc<id> no lease names, with no process on    ip link del (pyroute2,
                              its container side; our bridges no network   network/live.py)
                              of this root defines, with no port
    its overlay directories   <root>/containers/ID/{upper,work,merged}    rm -rf
    its record                <root>/containers/ID/state.json             rm -rf
    half-made directories     containers/ID without state.json, .removing-*
    cgroups without a record  (only when empty: a non-empty one may be another --root's)

Mounts: every mount of a container is made inside its own mount namespace, which the kernel
destroys with the namespace's last process — so killing the processes unmounts everything,
and the host's mount table never had any of it. gc checks that claim: it reports any mount
of a removed container still visible in any process's /proc/PID/mountinfo.

What cannot go (a process stuck in state D survives SIGKILL: its overlay and record stay)
is reported as skipped, with why; gc goes on with everything else.

Exited containers are not garbage: `docker ps -a` keeps them until `rm`. `system prune`
removes them too, as Docker's does.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import time

from .cgroups import DEFAULT_ROOT, list_cgroups, open_cgroup
from .procfs import in_my_mount_namespace, mountinfo_text, processes_with_mounts_of
from .records import field, record
from .state import ContainerRecord, StateStore, is_alive, open_store
from .status import container_cgroup, owner_alive

UNRECORDED_MIN_AGE = 60.0       # an empty cgroup younger than this may be a start in progress


@record
class Garbage:
    """What gc found (or removed): one line per item, for the user."""
    containers: list[str] = field(default_factory=list)     # orphaned containers
    cgroups: list[str] = field(default_factory=list)        # cgroups without a record
    directories: list[str] = field(default_factory=list)    # half-made or half-removed dirs
    leases: list[str] = field(default_factory=list)         # network leases of no live container
    interfaces: list[str] = field(default_factory=list)     # leftover veths and bridges
    skipped: list[str] = field(default_factory=list)        # not ours to remove, and why
    mounts: list[str] = field(default_factory=list)         # mounts still seen (should be none)

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would remove" if dry_run else "removed"
        out = [f"{verb} {what}" for group in (self.containers, self.cgroups, self.directories,
                                              self.leases, self.interfaces) for what in group]
        out += [f"skipped {what}" for what in self.skipped]
        out += [f"still mounted: {what}" for what in self.mounts]
        return out

    def __bool__(self) -> bool:
        return bool(self.containers or self.cgroups or self.directories or self.leases
                    or self.interfaces)


def is_orphan(rec: ContainerRecord) -> bool:
    """Nobody left to record its exit or tear it down (a container `create` made and nobody
    started has no owner yet: not an orphan)."""
    if rec.status == "created" and not rec.supervisor_pid:
        return False
    return rec.status != "exited" and not owner_alive(rec)


def collect(root=None, *, dry_run: bool = False, prune: bool = False,
            min_age: float = UNRECORDED_MIN_AGE) -> Garbage:
    """Find — and unless dry_run, remove — orphans. prune: also every exited container.
    One item that cannot go (a process stuck in state D, a cgroup another --root removes
    meanwhile) is reported in `skipped`; gc goes on with the rest."""
    store = open_store(root)
    found = Garbage()
    records = store.list()
    doomed = [r for r in records if is_orphan(r) or (prune and r.status in ("exited", "created") and not owner_alive(r))]
    for rec in doomed:
        if dry_run or attempt(found, f"container {rec.short_id} ({rec.name})", remove_orphan, store, rec):
            found.containers.append(describe(rec))
    for rec in records:                              # exited, owner gone, but a cgroup is left
        if rec not in doomed and rec.status == "exited" and not owner_alive(rec) and rec.cgroup:
            attempt(found, f"cgroup of exited container {rec.name}", remove_exited_cgroup,
                    rec, found, dry_run)
    find_directories(store, found, dry_run)
    find_unrecorded_cgroups({r.cgroup for r in records}, found, dry_run, min_age, cgroup_trees(records))
    released = find_leases(store, found, dry_run, doomed={r.id for r in doomed})
    if not dry_run:
        wait_for_interfaces_to_go([r.id for r in doomed] + released)
    attempt(found, "network interfaces", find_interfaces, store, found, dry_run)
    if not dry_run:
        found.mounts = mounts_of(store, [r.id for r in doomed])
    return found


def attempt(found: Garbage, what: str, action, *args) -> bool:
    """action(*args), or — if it fails — `what` and the reason into found.skipped: one bad
    item must not leave every other one in place."""
    try:
        action(*args)
        return True
    except Exception as e:                           # noqa: BLE001 — reported, not swallowed
        reason = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror else str(e)
        found.skipped.append(f"{what}: {reason or type(e).__name__}")
        return False


def remove_exited_cgroup(rec: ContainerRecord, found: Garbage, dry_run: bool) -> None:
    cgroup = container_cgroup(rec)
    if cgroup is not None:
        if not dry_run:
            cgroup.remove()
        found.cgroups.append(f"cgroup {cgroup.relpath} of exited container {rec.name}")


def wait_for_interfaces_to_go(ids: list[str], timeout: float = 5.0) -> None:
    """A veth pair dies with the container's network namespace — but the kernel destroys a
    namespace in a background worker (cleanup_net), a moment after its last process is gone.
    Wait for the host ends (mc + 12 hex digits of the ID) so that `ip link` is clean when gc
    returns."""
    import socket
    names = {"mc" + i[:12] for i in ids}
    deadline = time.monotonic() + timeout
    while names & {name for _, name in socket.if_nameindex()} and time.monotonic() < deadline:
        time.sleep(0.02)


def describe(rec: ContainerRecord) -> str:
    return (f"container {rec.short_id} ({rec.name}, {rec.status}, its "
            f"{'supervisor' if rec.config.get('detach') else 'minicontainer process'} "
            f"{rec.supervisor_pid or '?'} is gone)")


class Unkillable(Exception):
    """A process of an orphan survived SIGKILL: its overlay stays, and so does its record."""


def remove_orphan(store: StateStore, rec: ContainerRecord) -> None:
    """Kill what still runs, then runtime.teardown with --rm semantics: everything goes."""
    from .stop import clean_up
    survivors = kill_processes(store, rec)           # first: no rm -rf under a live mount
    if survivors:
        raise Unkillable("kept, with its record: " + "; ".join(survivors))
    clean_up(store, rec)                             # cgroup (killing its processes), network,
    if store.load(rec.id) is not None:               # overlay dirs, record
        store.delete(rec)


KILL_TIMEOUT = 5.0                 # seconds for SIGKILLed processes to be gone (state D: longer)


def kill_processes(store: StateStore, rec: ContainerRecord, timeout: float | None = None) -> list[str]:
    """SIGKILL every process that still has the orphan's mounts — its PID 1 and setup child,
    found by their mount table (/proc/PID/mountinfo names containers/ID) even with no cgroup
    to hold them (rootless) and no PID recorded (the CLI died first) — and its recorded PID 1;
    then wait until they are gone. Returns why not, one line per problem."""
    needle = str(store.container_dir(rec.id))
    checks = {pid: lambda p: needle in mountinfo_text(p) for pid in processes_with_mounts_of(needle)}
    if is_alive(rec.pid, rec.pid_start):
        checks.setdefault(rec.pid, lambda p: is_alive(p, rec.pid_start))
    if any(map(in_my_mount_namespace, checks)):      # killing cannot unmount what is ours
        return [f"{needle} is mounted in gc's own mount namespace: unmount it first"]
    held, problems = [], []
    for pid, still_ours in sorted(checks.items()):
        try:
            fd = kill_verified(pid, still_ours)
        except OSError as e:                         # EPERM: not ours to kill
            problems.append(f"kill -9 {pid}: {e.strerror}")
            continue
        if fd is not None:
            held.append((pid, fd))
    return problems + wait_until_gone(held, KILL_TIMEOUT if timeout is None else timeout)


def kill_verified(pid: int, still_ours) -> int | None:
    """SIGKILL `pid` if still_ours(pid); its pidfd (to wait on), or None if it is gone.
    The pidfd (pidfd_open(2)) is taken before the check: if the PID was reused meanwhile,
    the check sees the new process and says no; if the process dies after the check, the
    signal goes nowhere (ESRCH) — never to another process."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        if still_ours(pid):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            return fd
    except ProcessLookupError:                       # exited between the check and the kill
        pass
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def wait_until_gone(held: list[tuple[int, int]], timeout: float) -> list[str]:
    """Wait (poll(2): a pidfd is readable once its process has exited) and close the pidfds;
    one line per process still there at the timeout — in state D, a SIGKILL waits."""
    import select
    poller = select.poll()
    for _, fd in held:
        poller.register(fd, select.POLLIN)
    pending = {fd: pid for pid, fd in held}
    deadline = time.monotonic() + timeout
    while pending and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(int(left * 1000) + 1):
            poller.unregister(fd)
            pending.pop(fd, None)
    for _, fd in held:
        os.close(fd)
    return [f"PID {pid} is still there {timeout:g} s after SIGKILL (state D?)"
            for pid in sorted(pending.values())]


def cgroup_trees(records: list[ContainerRecord]) -> list[str]:
    """Where this state root's containers have their groups: /sys/fs/cgroup ("") for root;
    for a user (rootless) only the subtree delegated to it — none on cgroup v1 — never
    root's tree, whose groups are not the user's to judge or remove."""
    trees = {r.cgroup_root for r in records if r.cgroup_root and os.path.isdir(r.cgroup_root)}
    if os.geteuid() == 0:
        trees.add("")
    else:
        from .cgroups.delegation import find_delegated_cgroup
        where, _ = find_delegated_cgroup()
        if where is not None:
            trees.add(str(where))
    return sorted(trees)


def find_directories(store: StateStore, found: Garbage, dry_run: bool) -> None:
    """containers/ID without state.json (a create cut short) and .removing-* (a delete cut
    short). Looked at under the lock: create() makes both the directory and the record in it."""
    if not store.dir.is_dir():
        return
    with store.locked():
        for entry in store.dir.iterdir():
            half_removed = entry.name.startswith(".removing-")
            half_made = not entry.name.startswith(".") and not (entry / "state.json").exists()
            if entry.is_dir() and (half_removed or half_made):
                if dry_run or attempt(found, f"directory {entry}", remove_directory, entry):
                    found.directories.append(f"directory {entry}")


def remove_directory(path) -> None:
    """rm -rf, as StateStore.delete does it: rootless, the files of the container's other
    users (subordinate uids) need its id map (userns.remove_tree). Raises if anything is left."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path) and os.geteuid() != 0:
        from .userns import remove_tree
        remove_tree(path)
    if os.path.lexists(path):
        raise OSError(errno.ENOTEMPTY, "some of its files could not be removed", str(path))


def find_unrecorded_cgroups(recorded: set[str], found: Garbage, dry_run: bool, min_age: float,
                            trees=("",)) -> None:
    """Groups under minicontainer/ (of each tree) that no record here names. The cgroup tree is
    the whole machine's, the records are one --root's: only empty groups older than min_age go."""
    for tree in trees:
        find_unrecorded_in(tree, recorded, found, dry_run, min_age)


def find_unrecorded_in(tree: str, recorded: set[str], found: Garbage, dry_run: bool, min_age: float) -> None:
    try:
        names = list_cgroups(tree or DEFAULT_ROOT)
    except Exception as e:                           # no cgroup filesystem: nothing to do
        found.skipped.append(f"cgroups ({e})")
        return
    pods = {name.split("/")[0] for name in recorded if "/" in name}   # POD/ID: a pod's group
    for name in names:
        if name not in recorded and name not in pods:
            attempt(found, f"cgroup {name}", remove_unrecorded, name, tree, found, dry_run, min_age)


def remove_unrecorded(name: str, tree: str, found: Garbage, dry_run: bool, min_age: float) -> None:
    cgroup = open_cgroup(name, tree)                 # (tree: "" is /sys/fs/cgroup)
    if cgroup is None:
        return
    if cgroup.procs():
        found.skipped.append(f"cgroup {cgroup.relpath}: it has processes and no record under "
                             "this --root (another state root's container?)")
        return
    made = [t for t in map(mtime, cgroup.dirs) if t is not None]
    if not made or time.time() - min(made) < min_age:    # gone meanwhile (another --root's
        return                                            # rm or gc), or maybe a start
    if not dry_run:
        cgroup.remove()
    found.cgroups.append(f"empty cgroup {cgroup.relpath} (no record)")


def mtime(path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def find_leases(store: StateStore, found: Garbage, dry_run: bool, doomed=frozenset()) -> list[str]:
    """Network leases (and with them veths and published ports) of containers that are gone.
    Each lease is judged when it is released, under the network lock, by its record as it is
    then — not by the list gc read at its start: a container started since (`run -d`, a
    --restart relaunch) has a record, written before its lease, and keeps its address.
    Returns the IDs of the containers whose leases were released."""
    networks = store.root / "networks"
    if not networks.is_dir():
        return []
    from .network import NetworkStore
    nets = NetworkStore(networks)
    held = {cid: name for name in nets.names() for cid in nets.leases(name)}
    if dry_run:
        gone = [cid for cid in held if lease_is_garbage(store, cid, doomed)]
    else:
        errors: list[str] = []
        gone = nets.cleanup_orphans(gone=lambda cid: lease_is_garbage(store, cid), errors=errors)
        found.skipped += errors
    found.leases += [f"network lease of {cid[:12]}" + (f" on {held[cid]}" if cid in held else "")
                     for cid in gone]
    return [] if dry_run else gone


def lease_is_garbage(store: StateStore, cid: str, doomed=frozenset()) -> bool:
    """No record (it is written before the lease: a start in progress has one), or an
    exited one whose owner is gone; dry_run: or an orphan that gc would remove."""
    rec = store.load(cid)
    return rec is None or cid in doomed or (rec.status == "exited" and not owner_alive(rec))


def find_interfaces(store: StateStore, found: Garbage, dry_run: bool) -> None:
    """Veths and bridges that look like ours but that no lease or network of this root
    accounts for (network/live.py tells leftovers from another root's live containers)."""
    from .network import NetworkStore, ipam
    from .network.live import find_leftovers, remove_leftovers, suspects
    nets = NetworkStore(store.root / "networks")
    bridges, veths = set(), set()
    for name in nets.names():
        bridges.add(ipam.read_json(nets.definition_path(name), {}).get("bridge", ""))
        veths |= {lease.get("veth", "") for lease in nets.leases(name).values()}
    if not suspects(bridges, veths):                 # the usual case: pyroute2 not even imported
        return
    leftovers = find_leftovers(bridges, veths)
    found.interfaces += [str(l) for l in leftovers if l.removable]
    found.skipped += [str(l) for l in leftovers if not l.removable]
    if not dry_run:
        found.skipped += remove_leftovers(leftovers)


def mounts_of(store: StateStore, ids: list[str]) -> list[str]:
    """Mounts under containers/ID/ still in any mount namespace (a live process's mountinfo)."""
    if not ids:
        return []
    needles = [str(store.container_dir(i)) for i in ids]
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        text = mountinfo_text(pid)
        for needle in needles:
            if needle in text:
                seen.append(f"{needle} in the mount namespace of PID {pid}")
    return seen


__all__ = ["Garbage", "collect", "is_orphan"]
