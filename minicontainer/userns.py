"""User namespaces: root inside the container, an ordinary user outside — rootless mode.

    man 7 user_namespaces, man 1 newuidmap, man 1 newgidmap, man 5 subuid, man 5 subgid
    shell: unshare --user --map-root-user sh              (the single-id map below)
           unshare --user --map-auto --map-root-user sh   (newuidmap with /etc/subuid)

A user namespace has its own user and group numbers. A *map*, written once from outside,
says which number inside is which number outside (three columns: inside, outside, count):

    /proc/PID/uid_map       0      1000       1      uid 0 inside is host uid 1000 (you)
                            1    100000   65536      uids 1…65536 are host uids 100000…165535

The process that creates a user namespace holds every capability *in it*, and gains none
outside. So the container's root may mount a /proc, set a hostname, pivot_root — everything
that concerns namespaces owned by its user namespace — while for the host's kernel every file
it touches is touched by uid 1000: a file it creates belongs to you, a host file that you
cannot write it cannot write. An escape lands as you, not as root. That is rootless mode:
`minicontainer run` started by an ordinary user (geteuid() != 0).

Who writes the map. The kernel lets a user map exactly one id, its own, into a namespace it
owns ("single-id map"), but only after "deny" was written to /proc/PID/setgroups — otherwise
a process could drop a group it is in and get past a file whose permissions *deny* that group
(CVE-2014-8989). More ids need privilege: the setuid-root helpers newuidmap and newgidmap
(package uidmap) write a map with the ranges /etc/subuid and /etc/subgid grant the user:

    /etc/subuid:  alice:100000:65536     (useradd adds a range for every new user)
    map:          0 → alice,  1…65536 → 100000…165535

    single-id map (no helpers, or no /etc/subuid entry): only root exists inside; every
    other id (nobody, files of other users) shows as 65534, and --user can only be root.

Where the steps run (runtime.py):

    setup child   unshare(CLONE_NEWUSER), alone, first    then "userns" → the parent
    parent        newuidmap PID …/newgidmap PID …  or  /proc/PID/{setgroups,gid_map,uid_map}
                                                          then "maps" → the setup child
    setup child   unshare(NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET|NEWCGROUP): these namespaces are
                  owned by the new user namespace, in which it holds CAP_SYS_ADMIN

Why the parent? A process cannot map more than itself into its own namespace; newuidmap runs
outside, as the user, and checks /etc/subuid. Why first and alone? Until the map is written
the child is nobody (65534) inside: the namespaces it makes after the map belong to a user
namespace whose root is already someone, and an error names the step that failed.

What does not work as a user, and why: device nodes cannot be created (mknod needs
CAP_MKNOD in the *initial* namespace; /dev's nodes are bind mounts of the host's anyway);
sysfs can be mounted only with a network namespace of our own (--net host binds the host's
/sys instead); files of an image keep your uid on disk (unpacking cannot chown), which is
root inside; overlayfs needs Linux ≥ 5.11 in a user namespace (older kernels: fuse-overlayfs,
not done here), and keeps its metadata in user.* xattrs ("userxattr"). Cgroups: see
cgroups/delegation.py. Networks: --net none and host (a bridge needs root on the host).
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

from .errors import ConfigError, ContainerError, SyscallError
from .records import record

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
OVERFLOW_ID = 65534                 # what an unmapped id looks like inside (/proc/sys/kernel/overflowuid)
PR_SET_DUMPABLE = 4


def is_rootless() -> bool:
    """minicontainer runs rootless when it is not started as root."""
    return os.geteuid() != 0


# ── the map ───────────────────────────────────────────────────────────────────────────────

@record(frozen=True)
class IdRange:
    inside: int
    outside: int
    count: int

    def line(self) -> str:
        return f"{self.inside} {self.outside} {self.count}"


@record(frozen=True)
class IdMapping:
    """The uid and gid maps of one container's user namespace, planned before fork."""
    user: str                              # the host user, for messages
    uid_map: tuple[IdRange, ...]
    gid_map: tuple[IdRange, ...]
    helpers: bool                          # True: newuidmap/newgidmap with subordinate ranges
    why_single: str = ""                   # why there is only the single-id map

    def maps_inside(self, uid: int, gid: int) -> bool:
        """Are uid and gid (as the container sees them) mapped to host ids?"""
        return (any(r.inside <= uid < r.inside + r.count for r in self.uid_map)
                and any(r.inside <= gid < r.inside + r.count for r in self.gid_map))


def subordinate_range(path: str, name: str, number: int) -> tuple[int, int] | None:
    """The first `NAME_OR_ID:START:COUNT` line of /etc/subuid (or subgid) for this user."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (name, str(number)) and parts[1].isdigit() and parts[2].isdigit():
            if int(parts[2]) > 0:
                return int(parts[1]), int(parts[2])
    return None


def find_helper(name: str) -> tuple[str | None, str]:
    """(path, "") of a usable newuidmap/newgidmap, or (None, why not). Usable means setuid
    root or holding file capabilities (Debian's package has setuid; Fedora's file caps)."""
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/bin:/bin:/usr/sbin")
    if path is None:
        return None, f"{name} is not installed (apt-get install uidmap)"
    st = os.stat(path)
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return path, ""
    try:
        os.getxattr(path, "security.capability")
        return path, ""
    except OSError:
        return None, f"{path} is neither setuid root nor has file capabilities (reinstall uidmap)"


def plan_id_mapping(uid: int | None = None, gid: int | None = None) -> IdMapping:
    """The maps for a container of this user: with newuidmap and /etc/subuid ranges when
    both exist, else the single-id map (and the reason, for the docs and `inspect`)."""
    import pwd
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    single = IdMapping(name, (IdRange(0, uid, 1),), (IdRange(0, gid, 1),), False)
    sub_uid, sub_gid = subordinate_range(SUBUID, name, uid), subordinate_range(SUBGID, name, uid)
    if sub_uid is None or sub_gid is None:
        missing = " and ".join(f for f, r in ((SUBUID, sub_uid), (SUBGID, sub_gid)) if r is None)
        return _single(single, f"no range for {name} in {missing} "
                               f"(usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name})")
    for helper in ("newuidmap", "newgidmap"):
        path, why = find_helper(helper)
        if path is None:
            return _single(single, why)
    return IdMapping(name, (IdRange(0, uid, 1), IdRange(1, sub_uid[0], sub_uid[1])),
                     (IdRange(0, gid, 1), IdRange(1, sub_gid[0], sub_gid[1])), True)


def _single(mapping: IdMapping, why: str) -> IdMapping:
    return IdMapping(mapping.user, mapping.uid_map, mapping.gid_map, False, why)


def check_user_mapped(mapping: IdMapping, user: str | None) -> None:
    """--user other than root needs more ids than the single-id map has; say so before fork."""
    if mapping.helpers or user is None:
        return
    if user.split(":")[0] not in ("0", "root") or user.partition(":")[2] not in ("", "0", "root"):
        raise ConfigError(f"--user {user} (or the image's user): in this rootless container only root (uid 0) exists, "
                          f"because {mapping.why_single}; use --user root, or add the range")


# ── what a rootless container gets, decided before anything exists ────────────────────────

LIMIT_FLAGS = {"memory": "--memory", "memory_swap": "--memory-swap", "pids_limit": "--pids-limit",
               "nano_cpus": "--cpus", "cpu_shares": "--cpu-shares", "cpuset_cpus": "--cpuset-cpus"}


@record
class Plan:
    """Rootless mode for one container: its id maps and its cgroup (or why it has none)."""
    mapping: IdMapping
    cgroup_root: Path | None = None        # the delegated group to create ours in, if any


def plan_container(config, limits) -> Plan:
    """The id maps, the network and the cgroup of a rootless container. What this mode
    cannot do is refused here, with the fix; what it silently could not do is said once."""
    from .cgroups.delegation import find_delegated_cgroup
    usable, detail, fix = probe()                      # the preflight: ~2 ms, before anything exists
    if not usable:
        raise ContainerError(f"rootless mode needs user namespaces, and here {detail}: {fix}")
    mapping = plan_id_mapping()
    check_user_mapped(mapping, config.user)
    where, why = find_delegated_cgroup()
    if where is None and not limits.empty:             # a limit that is set must be enforced
        from .records import asdict
        flags = ", ".join(LIMIT_FLAGS.get(k, k) for k, v in asdict(limits).items() if v not in (None, ()))
        raise ConfigError(f"{flags}: rootless mode cannot enforce limits here: {why}; "
                          "drop the flag(s) or run as root")
    check_network(config)
    if where is None:
        _warn(f"rootless: no memory, CPU or process limits for this container: {why}")
    return Plan(mapping, where)


def check_network(config) -> None:
    """A bridge needs root on the host (a veth pair, the bridge, NAT rules): only none and
    host exist rootless. The default (bridge) becomes none, and says so."""
    net = config.net or "bridge"
    if config.publish:
        raise ConfigError("-p needs a bridge network, which rootless mode does not have (its veth pair "
                          "and NAT rules need root on the host): run as root, or use --net host")
    if net == "bridge":
        config.net = "none"
        _warn("rootless: no bridge network without root, so --net none (only loopback); "
              "--net host shares your network")
    elif net not in ("none", "host"):
        raise ConfigError(f"--net {net}: rootless mode has only --net none and --net host "
                          "(other networks need root on the host)")


def _warn(text: str) -> None:
    os.write(2, f"minicontainer: {text}\n".encode())


# ── writing it (the parent, while the setup child waits) ──────────────────────────────────

def write_id_maps(pid: int, mapping: IdMapping, explain=None) -> None:
    """Map the ids of process `pid`'s user namespace: newgidmap/newuidmap, or by hand."""
    if mapping.helpers:
        for tool, ranges in (("newgidmap", mapping.gid_map), ("newuidmap", mapping.uid_map)):
            args = [str(pid)] + [str(n) for r in ranges for n in (r.inside, r.outside, r.count)]
            _narrate(explain, f"{tool} {' '.join(args)}",
                     "a setuid helper writes the map with your /etc/subuid range")
            proc = subprocess.run([find_helper(tool)[0], *args], capture_output=True, text=True)
            if proc.returncode != 0:
                raise ContainerError(f"{tool} {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode} "
                                     f"— check your line in {SUBUID if tool == 'newuidmap' else SUBGID}")
        return
    _narrate(explain, f"echo deny > /proc/{pid}/setgroups; echo '{mapping.gid_map[0].line()}' > "
             f"/proc/{pid}/gid_map; echo '{mapping.uid_map[0].line()}' > /proc/{pid}/uid_map",
             "no subordinate ids: the kernel lets you map your own uid and gid, nothing else")
    write_proc(pid, "setgroups", "deny")          # required before an unprivileged gid_map
    write_proc(pid, "gid_map", mapping.gid_map[0].line())
    write_proc(pid, "uid_map", mapping.uid_map[0].line())


def write_proc(pid: int, name: str, text: str) -> None:
    path = f"/proc/{pid}/{name}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode() + b"\n")        # one write(2): the kernel takes the map whole
        finally:
            os.close(fd)
    except OSError as e:
        hint = why_userns_fails(e.errno)[1] if e.errno == errno.EPERM else ""
        raise SyscallError("write", (path, text), e.errno or 0, hint) from None


def _narrate(explain, shell: str, why: str) -> None:
    if explain is not None and getattr(explain, "enabled", False):
        explain.detail(shell, why)


# ── creating it (the setup child), and why that may be refused ────────────────────────────

def unshare_user() -> None:
    """unshare(CLONE_NEWUSER), with the reason and the fix when the machine refuses it."""
    from .kernel.namespaces import CLONE_NEWUSER, unshare
    try:
        unshare(CLONE_NEWUSER)
    except SyscallError as e:
        reason, fix = why_userns_fails(e.errno)
        raise ContainerError(f"rootless: unshare(CLONE_NEWUSER) failed: {reason} — {fix}") from None


def _sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def why_userns_fails(err: int) -> tuple[str, str]:
    """(reason, fix) for a refused user namespace, from the knobs a distribution may turn."""
    if _sysctl("user.max_user_namespaces") == "0":
        return "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces=15000"
    if _sysctl("kernel.unprivileged_userns_clone") == "0":
        return ("kernel.unprivileged_userns_clone is 0 (Debian's switch)",
                "sysctl -w kernel.unprivileged_userns_clone=1")
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts unprivileged user namespaces (Ubuntu ≥ 23.10: the namespace is "
                "made, but its root gets no capabilities)",
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile for "
                "minicontainer's python with `userns,`), or run as root")
    if err == errno.ENOSPC:
        return "too many user namespaces (user.max_user_namespaces reached)", "raise user.max_user_namespaces"
    if err == errno.EINVAL:
        return "the kernel was built without user namespaces", "a kernel with CONFIG_USER_NS=y, or run as root"
    return os.strerror(err), "check your security module (SELinux, AppArmor, seccomp of an outer container), or run as root"


def probe() -> tuple[bool, str, str]:
    """Can an unprivileged user make a *usable* user namespace here? (ok, detail, fix)

    Making one is not enough: with Ubuntu's AppArmor restriction unshare(CLONE_NEWUSER)
    succeeds and its root is then refused everything. So a child, as the calling user (or
    as nobody when called by root), unshares a user namespace, maps itself, and tries what
    `run` needs next: unshare(CLONE_NEWUTS) inside it (as CLONE_NEWNS would, but cheaper)."""
    from .kernel.namespaces import CLONE_NEWUSER, CLONE_NEWUTS, unshare   # before fork: once
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                               # never returns
        os.close(r)
        answer, step = b"1", "becoming an unprivileged user (setresuid, prctl PR_SET_DUMPABLE)"
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(OVERFLOW_ID, OVERFLOW_ID, OVERFLOW_ID)
                os.setresuid(OVERFLOW_ID, OVERFLOW_ID, OVERFLOW_ID)
                from .kernel.syscalls import check, libc
                # the uid change made /proc/self root's: dumpable again, to write our own maps
                check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl", "PR_SET_DUMPABLE")
            uid, gid = os.geteuid(), os.getegid()
            step = "unshare(CLONE_NEWUSER)"
            unshare(CLONE_NEWUSER)
            step = "writing /proc/self/uid_map"
            for name, text in (("setgroups", "deny"), ("gid_map", f"0 {gid} 1"), ("uid_map", f"0 {uid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            step = "unshare(CLONE_NEWUTS) inside it"         # needs CAP_SYS_ADMIN in it, like
            unshare(CLONE_NEWUTS)                           # everything `run` does next (cheap)
        except (OSError, SyscallError) as e:
            answer = f"0{step}:{getattr(e, 'errno', 0) or 0}".encode()
        os.write(w, answer)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read().decode()
    os.waitpid(pid, 0)
    if answer == "1":
        return True, "an unprivileged user can create a user namespace and use it", ""
    step, _, err = answer[1:].rpartition(":")
    reason, fix = why_userns_fails(int(err or 0))
    return False, f"{step} fails for an unprivileged user: {reason}", fix


# ── cleaning up files of the container's users ─────────────────────────────────────────────

def remove_tree(path: str | os.PathLike, mapping: IdMapping | None = None) -> None:
    """rm -rf PATH as the user, then — for what is left (files of subordinate ids, or
    overlayfs's mode-000 work/work) — as root of a user namespace with the container's map.
    `podman unshare rm -rf` is the shell equivalent. Raises if anything is left, and why."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or not is_rootless():
        return
    mapping = mapping or plan_id_mapping()
    try:
        run_as_mapped_root(mapping, lambda: shutil.rmtree(path))
    except ContainerError as e:
        raise ContainerError(f"cannot remove {path}: {e}") from None


def run_as_mapped_root(mapping: IdMapping, fn) -> None:
    """fn() in a child that is root of a new user namespace with `mapping` (its
    CAP_DAC_OVERRIDE there covers every file owned by a mapped id). The same handshake as
    the run sequence: the child unshares and says so, the parent maps, the child goes on.
    If the child fails, it writes why on the pipe, and that is raised here."""
    msg_r, msg_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                               # never returns
        status = 1
        try:
            os.close(msg_r), os.close(go_w)
            unshare_user()
            os.write(msg_w, b"userns")
            if os.read(go_r, 4) == b"maps":
                fn()
                status = 0
        except BaseException as e:                             # noqa: BLE001 — told to the parent
            why = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
            os.write(msg_w, (why or type(e).__name__).encode(errors="replace"))
        os._exit(status)
    os.close(msg_w), os.close(go_r)
    why = b""
    try:
        why = os.read(msg_r, 6)
        if why == b"userns":
            why = b""
            write_id_maps(pid, mapping)                        # if this fails, the child sees
            os.write(go_w, b"maps")                            # EOF and gives up: raised here
    finally:
        os.close(go_w)
        why += read_all(msg_r)
        os.close(msg_r)
        _, status = os.waitpid(pid, 0)
    if status != 0:
        why = why.decode(errors="replace") or f"it exited with {os.waitstatus_to_exitcode(status)}"
        raise ContainerError(f"{why} (as root of a user namespace with the container's id map)")


def read_all(fd: int) -> bytes:
    """Read until end of file (every writer has closed its end)."""
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)
