"""Least privilege: what the container's root may still do, decided before fork, applied just
before execve. The policy lives here; the kernel mechanisms in kernel/capabilities.py and
kernel/seccomp.py.

    man 7 capabilities, man 2 seccomp, man 2 prctl (PR_SET_NO_NEW_PRIVS), man 2 mount,
    man 2 close_range; docs/security.md (what each layer protects against, and what not)

Without these steps the container's root *is* the host's root, merely looking at other
files: it could load kernel modules, mount the host's disks, reboot the machine. Four layers
take that away, in this order, in the container's PID 1 (after pivot_root, before execve):

    1. mask_paths           hide kernel knobs: an empty read-only file over files such as /proc/kcore, an
                            empty read-only tmpfs over directories, /proc/sys etc. read-only
    2. set_no_new_privs     no setuid binary or file capability can ever raise privileges again
    3. switch_user_and_drop capabilities: bounding set first (needs CAP_SETPCAP), keepcaps,
                            setgroups/setgid/setuid, then permitted/effective/inheritable and
                            ambient — runc's order, see the function
    4. apply_seccomp        last, so nothing of our own setup needs to be allowed by the filter

`resolve()` runs in the parent, before fork: every bad flag is a ConfigError there, and the
seccomp program is compiled there, so the child only installs bytes.

Defaults are Docker's: 14 capabilities (CapEff 00000000a80425fb), Docker's default seccomp
profile, Docker's masked and read-only paths. Three deliberate differences: no_new_privs is on
by default (Docker needs --security-opt no-new-privileges), the kernel keyring calls stay
blocked (see seccomp_default.py), and a masked file is an empty *read-only* file, so a
write to it fails (Docker binds /dev/null, where a write succeeds and vanishes).
"""
from __future__ import annotations

import ctypes
import errno
import functools
import glob
import os

from .errors import ConfigError, ContainerError, SyscallError
# Imported here, not inside the functions: the child calls them after pivot_root, when the
# package's own files are no longer reachable from the container's root.
import prctl

from .kernel import capabilities, seccomp, syscall_table
from .kernel.mount import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, mount
from .kernel.seccomp import native_arch
from .kernel.syscalls import libc
from .kernel.capabilities import CAPABILITIES
from .records import record
from .seccomp_default import DEFAULT_SECCOMP_PROFILE     # Docker's default profile, as data

# ── the policy ────────────────────────────────────────────────────────────────────────────

# Docker's default capabilities (moby oci/caps/defaults.go), in Docker's order.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# Files a container should not read (kernel memory, timers that leak host activity, keys) or
# directories through which it could reach hardware: Docker's list (2025).
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    "/sys/devices/system/cpu/cpu*/thermal_throttle",
)
# Kernel settings shared by the whole machine: readable, but not writable, from a container.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

@record(frozen=True)
class Policy:
    """What the container's PID 1 will apply to itself. Built by resolve(), in the parent."""
    capabilities: tuple[str, ...]            # bounding = permitted = effective (for root)
    no_new_privs: bool = True
    privileged: bool = False
    seccomp_source: str = "default"          # "default", "unconfined" or a profile's path
    seccomp: seccomp.Filter | None = None            # compiled in the parent; None: no filter
    masked_paths: tuple[str, ...] = MASKED_PATHS
    readonly_paths: tuple[str, ...] = READONLY_PATHS
    warnings: tuple[str, ...] = ()
    capability_sets: dict | None = None      # OCI: the five sets by name; None: Docker's rule

    @property
    def capability_mask(self) -> int:
        return capabilities.to_mask(self.capabilities)

    def masks(self) -> dict[str, int]:
        """The five capability sets as masks. Docker's rule (no capability_sets): bounding =
        permitted = effective, inheritable and ambient empty."""
        keep = self.capability_mask
        sets = self.capability_sets or {"bounding": self.capabilities, "effective": self.capabilities,
                                        "permitted": self.capabilities}
        masks = {name: capabilities.to_mask(sets.get(name) or ()) for name in
                 ("bounding", "effective", "permitted", "inheritable", "ambient")}
        return masks if self.capability_sets else dict(masks, bounding=keep, effective=keep, permitted=keep)

    def summary(self) -> dict:
        """For config.json and `inspect`: plain JSON values."""
        return {"capabilities": list(self.capabilities), "capability_mask": f"{self.capability_mask:016x}",
                "no_new_privs": self.no_new_privs, "privileged": self.privileged,
                "seccomp": self.seccomp_source,
                "masked_paths": list(self.masked_paths), "readonly_paths": list(self.readonly_paths)}


# ── resolve: flags → policy, in the parent ────────────────────────────────────────────────

def _security_options(security_opt) -> dict:
    """--security-opt values as Docker spells them (KEY=VALUE, or the older KEY:VALUE)."""
    options = {"seccomp": "default", "no_new_privs": True, "systempaths": "default"}
    for raw in security_opt or ():
        key, sep, value = raw.partition("=")
        if not sep:
            key, sep, value = raw.partition(":")
        key = key.strip()
        if key == "seccomp" and value:
            options["seccomp"] = value
        elif key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise ConfigError(f"invalid --security-opt {raw!r}: use no-new-privileges=true or =false")
            options["no_new_privs"] = value != "false"
        elif key == "systempaths" and value == "unconfined":
            options["systempaths"] = "unconfined"
        elif key in ("apparmor", "label"):
            raise ConfigError(f"--security-opt {raw!r} is not supported: minicontainer has no AppArmor "
                              "or SELinux support; remove the option")
        else:
            raise ConfigError(f"invalid --security-opt {raw!r}: use seccomp=unconfined, "
                              "seccomp=PROFILE.json, no-new-privileges[=true|false] or systempaths=unconfined")
    return options


def _own_bounding_set() -> int:
    return capabilities.read_sets()["bounding"]


def resolve_capabilities(cap_add=(), cap_drop=(), privileged: bool = False) -> tuple[str, ...]:
    """Docker's rules: --cap-add ALL → everything but the drops; --cap-drop ALL → only the
    adds; otherwise the defaults, minus the drops, plus the adds (an add beats a drop)."""
    def names(values):
        out = []
        for value in values or ():
            for item in str(value).split(","):
                if item.strip().upper() == "ALL":
                    out.append("ALL")
                elif item.strip():
                    out.append(capabilities.parse(item))
        return out
    add, drop = names(cap_add), names(cap_drop)
    own = _own_bounding_set()
    available = [n for n, bit in CAPABILITIES.items() if bit <= capabilities.last_cap() and own >> bit & 1]
    if privileged:
        chosen = available
    elif "ALL" in add:
        chosen = [n for n in available if n not in drop]
    elif "ALL" in drop:
        chosen = [n for n in add if n != "ALL"]
    else:
        chosen = [n for n in DEFAULT_CAPABILITIES if n not in drop] + [n for n in add if n != "ALL"]
    for name in dict.fromkeys(chosen):
        bit = CAPABILITIES[name]
        if bit > capabilities.last_cap():
            raise ConfigError(f"capability {name} is not supported by this kernel "
                              f"(cap_last_cap is {capabilities.last_cap()}): remove it")
        if not own >> bit & 1:
            raise ConfigError(f"cannot give the container {name}: minicontainer itself does not have it "
                              f"in its bounding set (is it running inside another container?); "
                              f"use --cap-drop {name[4:]}")
    return tuple(sorted(set(chosen), key=CAPABILITIES.get))


@functools.lru_cache(maxsize=8)          # ~3 ms each; a process starting many containers reuses it
def compile_default_profile(caps: tuple, arch: str) -> seccomp.Filter:
    return seccomp.compile_profile(DEFAULT_SECCOMP_PROFILE, caps, arch)


def resolve(cap_add=(), cap_drop=(), privileged: bool = False, security_opt=()) -> Policy:
    """Flags → Policy. Every problem is a ConfigError here, before anything is created."""
    options = _security_options(security_opt)
    caps = resolve_capabilities(cap_add, cap_drop, privileged)
    warnings = []
    if privileged:
        warnings.append("--privileged: every capability, no seccomp filter, /proc and /sys "
                        "unmasked: root in this container is root on the host")
        if cap_add or cap_drop:
            warnings.append("--cap-add/--cap-drop are ignored with --privileged")
        if options["seccomp"] != "default":
            warnings.append("--security-opt seccomp=… is ignored with --privileged")
        return Policy(caps, options["no_new_privs"], True, "unconfined", None, (), (), tuple(warnings))
    source, compiled = options["seccomp"], None
    if source != "unconfined":
        compiled = (compile_default_profile(caps, seccomp.native_arch()) if source == "default"
                    else seccomp.compile_profile(seccomp.load_profile(source), caps))
    confined_paths = options["systempaths"] != "unconfined"
    return Policy(caps, options["no_new_privs"], False, source, compiled,
                  MASKED_PATHS if confined_paths else (), READONLY_PATHS if confined_paths else (),
                  tuple(warnings))


def policy_from_spec(spec, masked: bool = True) -> Policy:
    """An OCI spec's process.capabilities (five sets), noNewPrivileges, maskedPaths,
    readonlyPaths and linux.seccomp → Policy; the profile is compiled here, in the parent.
    masked=False (exec): the paths are already masked in the container's mount namespace."""
    sets = {name: tuple(names) for name, names in spec.process.capabilities.items()}
    can_raise = set(sets.get("inheritable", ())) & set(sets.get("permitted", ()))
    lost = [cap for cap in sets.get("ambient", ()) if cap not in can_raise]
    if lost:                                  # runc warns and goes on (`runc spec` asks for this)
        os.write(2, f"minicontainer-oci: warning: ambient {', '.join(lost)} not raised: an ambient "
                    "capability must also be inheritable and permitted\n".encode())
        sets["ambient"] = tuple(cap for cap in sets["ambient"] if cap in can_raise)
    profile, compiled = spec.seccomp, None
    if profile:
        flags = set(profile.get("flags") or ())
        if flags - {"SECCOMP_FILTER_FLAG_TSYNC"}:     # TSYNC: PID 1 has one thread anyway
            raise ConfigError(f"linux.seccomp.flags {sorted(flags)}: only SECCOMP_FILTER_FLAG_TSYNC "
                              "is supported")
        rules = {k: v for k, v in profile.items() if k != "flags"}
        compiled = seccomp.compile_profile(rules, sets.get("effective", ()), first_wins=True)
    return Policy(sets.get("bounding", ()), spec.process.no_new_privileges, False,
                  "config.json" if profile else "unconfined", compiled,
                  tuple(spec.masked_paths) if masked else (), tuple(spec.readonly_paths) if masked else (),
                  (), capability_sets=sets)


# ── applying it, in the container's PID 1 ─────────────────────────────────────────────────

def _narrate(explain, title: str, shell: str, man: str, syscall: str = "", why: str = "") -> None:
    """explain may be the run sequence's Explainer (has .step) or a plain
    explain(step_title, shell_equivalent, man_page) callable, or None."""
    if explain is None:
        return
    if hasattr(explain, "step"):
        explain.step(title, shell, syscall, man, why)
    else:
        explain(title, shell, man)


def _inside(root: str, path: str) -> str:
    """root + path, refusing a path the image turned into a symlink out of the root."""
    target = os.path.join(root, path.lstrip("/"))
    if root in ("", "/"):
        return target
    real_root, real = os.path.realpath(root), os.path.realpath(target)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise ContainerError(f"{path} in the container resolves to {real}, outside its root: "
                             "refusing to mount over it (is the image's /proc or /sys a symlink?)")
    return target


def _expand(root: str, paths) -> list[tuple[str, str]]:
    """(path as the container sees it, path from here), for existing paths; globs expanded."""
    out = []
    for path in paths:
        pattern = os.path.join(root, path.lstrip("/"))
        for hit in sorted(glob.glob(pattern)) if "*" in path else [pattern]:
            if os.path.lexists(hit):
                shown = "/" + os.path.relpath(hit, root) if root not in ("", "/") else hit
                out.append((shown, _inside(root, shown)))
    return out


# statvfs flags a read-only remount must keep (a bind remount replaces all per-mount flags).
_KEPT_MOUNT_FLAGS = {os.ST_NOSUID: 2, os.ST_NODEV: 4, os.ST_NOEXEC: 8}


def mask_paths(policy: Policy, explain=None, root: str = "/") -> None:
    """Hide MASKED_PATHS (a file: an empty read-only file bound over it; a directory: an empty
    read-only tmpfs) and make READONLY_PATHS read-only (bind it onto itself, remount the bind
    ro). `root` is the container's root as seen from here: "/" after pivot_root."""
    masked, readonly = _expand(root, policy.masked_paths), _expand(root, policy.readonly_paths)
    files = [target for _, target in masked if not os.path.isdir(target)]
    if masked:
        shell = "; ".join(f"mount --bind /dev/.empty {shown} && mount -o remount,bind,ro {shown}"
                          if not os.path.isdir(target) else f"mount -t tmpfs -o ro tmpfs {shown}"
                          for shown, target in masked)
        _narrate(explain, f"hide {len(masked)} kernel files from the container", shell, "mount(2)",
                 "mount(\"/dev/.empty\", …, MS_BIND), mount(\"tmpfs\", …, MS_RDONLY)",
                 "they show host memory, keys, timers and hardware: reading them must give "
                 "nothing, and writing must fail")
    for shown, target in masked:             # a path under one masked before is gone: skipped
        if os.path.isdir(target) and not os.path.islink(target):
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if files:
        _mask_files(root, files)
    if readonly:
        shell = "; ".join(f"mount --bind {s} {s} && mount -o remount,bind,ro {s}" for s, _ in readonly)
        _narrate(explain, "make the kernel's settings read-only", shell, "mount(2)",
                 "mount(p, p, MS_BIND|MS_REC), mount(NULL, p, MS_REMOUNT|MS_BIND|MS_RDONLY)",
                 "/proc/sys and its kin are shared by the whole machine, not per container")
    for shown, target in readonly:
        mount(target, target, None, MS_BIND | MS_REC)
        kept = sum(ms for st, ms in _KEPT_MOUNT_FLAGS.items() if os.statvfs(target).f_flag & st)
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | kept)


def _mask_files(root: str, targets: list[str]) -> None:
    """Bind one empty file over each target and make each bind read-only: reading gives
    nothing, opening for writing fails with EROFS. The empty file is made in the container's
    own /dev (a tmpfs) and unlinked at once after: the binds keep its inode alive, and /dev
    lists only its devices again. (A /dev/null bound read-only would still take writes: a
    read-only mount does not stop writes to a device node.)"""
    empty = os.path.join(root, "dev", ".empty")
    fd = os.open(empty, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        for target in targets:
            if not os.path.lexists(target):  # under a directory masked just before
                continue
            mount(empty, target, None, MS_BIND)
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    finally:
        os.unlink(empty)


def set_no_new_privs(policy: Policy, explain=None) -> None:
    """PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid bits, file caps).
    Irreversible and inherited; also what lets an unprivileged thread install seccomp."""
    if not policy.no_new_privs:
        return
    _narrate(explain, "forbid gaining privileges (no_new_privs)", "setpriv --no-new-privs …",
             "prctl(2)", "prctl(PR_SET_NO_NEW_PRIVS, 1)",
             "a setuid-root program (su, ping, sudo) in the image can no longer make anyone root")
    try:
        prctl.set_no_new_privs(1)
    except OSError as e:
        raise SyscallError("prctl", ("PR_SET_NO_NEW_PRIVS", 1), e.errno) from None


def set_non_dumpable(explain=None) -> None:
    """PR_SET_DUMPABLE 0 for a process about to enter a container, kept until its execve.

    Until execve it is still our Python: /proc/PID/exe is the host's interpreter, its root,
    cwd, open files, mappings and environment are the host's. /proc/PID/{exe,root,cwd,fd,
    map_files,environ} of another process need ptrace read access (ptrace(2), "Ptrace access
    mode checking"), and a non-dumpable process grants that only to CAP_SYS_PTRACE in the
    user namespace its memory was made in — the host's. So a container's root cannot open
    the host's python3 through /proc/PID/exe and overwrite it once no Python runs (CVE-2019-5736,
    which hit runc's own binary). Inherited by fork; execve resets it to 1 for the command."""
    _narrate(explain, "hide this process from the container (not dumpable)", "",
             "prctl(2), ptrace(2)", "prctl(PR_SET_DUMPABLE, 0)",
             "until execve, /proc/PID/exe, root, fd… of this process are the host's: "
             "nothing in the container may open them")
    prctl.set_dumpable(0)


def _setpriv_caps(policy: Policy) -> str:
    caps = ",".join("+" + name[4:].lower() for name in policy.capabilities)
    return f"--bounding-set=-all{',' + caps if caps else ''} --inh-caps=-all --ambient-caps=-all"


def drop_capabilities(policy: Policy, explain=None) -> None:
    """Keep only the policy's capabilities, staying the current user (root)."""
    switch_user_and_drop(policy, None, None, None, explain)


def switch_user_and_drop(policy: Policy, uid: int | None, gid: int | None, groups=None, explain=None) -> None:
    """Become uid/gid (None: stay) with exactly the policy's capabilities. runc's order:

      1. bounding set: drop the rest   needs CAP_SETPCAP in *effective*, so while we have all
      2. PR_SET_KEEPCAPS on            else setuid(0 → uid) empties permitted and effective
      3. setgroups, setresgid, setresuid   groups first: changing them needs CAP_SETGID
      4. PR_SET_KEEPCAPS off
      5. capset: effective = permitted = the policy's set, inheritable empty (as Docker)
      6. ambient set cleared (as Docker)

    For root the program then gets its bounding set at execve; a non-root user gets no
    capability at all after execve (CapEff 0), exactly as `docker run --user 1000` does."""
    masks = policy.masks()
    keep = masks["permitted"]
    switching = uid is not None
    user = f" --reuid={uid} --regid={gid} --groups={','.join(map(str, groups or [gid]))}" if switching else ""
    _narrate(explain, f"drop capabilities to {len(policy.capabilities)}"
             + (f" and become uid {uid}" if switching else ""),
             f"setpriv{user} {_setpriv_caps(policy)} …", "capabilities(7), prctl(2), capset(2)",
             f"prctl(PR_CAPBSET_DROP, …), capset(eff=prm={keep:#x}, inh=0)",
             "root in the container keeps only these powers, e.g. no CAP_SYS_ADMIN: no mount, "
             "no kernel modules, no raw devices")
    capabilities.drop_bounding(masks["bounding"])
    if switching:
        if uid != 0:
            capabilities.set_keepcaps(True)
        groups = list(groups) if groups is not None else [gid]
        steps = (("setgroups", groups, lambda: os.setgroups(groups)),
                 ("setresgid", (gid, gid, gid), lambda: os.setresgid(gid, gid, gid)),
                 ("setresuid", (uid, uid, uid), lambda: os.setresuid(uid, uid, uid)))
        if not setgroups_allowed():              # rootless, single-id map: the kernel forbids it
            steps = steps[1:]
        for call, args, change in steps:
            try:
                change()
            except OSError as e:
                raise SyscallError(call, tuple(args), e.errno) from None
        if uid != 0:
            capabilities.set_keepcaps(False)
    capabilities.set_sets(effective=masks["effective"], permitted=keep, inheritable=masks["inheritable"])
    capabilities.clear_ambient()
    if masks["ambient"]:                    # OCI: kept across execve even by a non-root user
        capabilities.raise_ambient(masks["ambient"])


def setgroups_allowed() -> bool:
    """/proc/self/setgroups says "deny" in a user namespace mapped without privilege
    (userns.py): the supplementary groups then stay as they were (shown as 65534 inside)."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def apply_seccomp(policy: Policy, explain=None) -> None:
    """Install the compiled filter. With no_new_privs it must come last (nothing after it but
    execve); without, it must come before capabilities are dropped (needs CAP_SYS_ADMIN)."""
    if policy.seccomp is None:
        return
    _narrate(explain, f"install the seccomp filter ({policy.seccomp_source}, {len(policy.seccomp)} BPF "
             "instructions)", "# none: a process installs a filter on itself (systemd-run -p SystemCallFilter=… comes closest)",
             "seccomp(2)", "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)",
             "the kernel now refuses keyctl, bpf, mount, unshare, kexec_load … with EPERM, "
             "even for root")
    seccomp.install(policy.seccomp.program)


def apply(policy: Policy, uid: int | None = None, gid: int | None = None, groups=None,
          root: str = "/", explain=None) -> None:
    """All four layers in the right order (see the module docstring). Call last before execve."""
    if not policy.privileged:
        mask_paths(policy, explain, root)
    set_no_new_privs(policy, explain)
    if not policy.no_new_privs:
        apply_seccomp(policy, explain)         # needs CAP_SYS_ADMIN: before the drop
    switch_user_and_drop(policy, uid, gid, groups, explain)
    if policy.no_new_privs:
        apply_seccomp(policy, explain)


# ── file descriptors ──────────────────────────────────────────────────────────────────────

CLOSE_RANGE_CLOEXEC = 4


def _close_range(first: int, last: int, flags: int) -> int:
    """close_range(2) (Linux 5.9; CLOSE_RANGE_CLOEXEC 5.11): 0, or the errno."""
    try:
        nr = syscall_table.BY_ARCH[native_arch()]["close_range"]
    except ConfigError:
        return errno.ENOSYS
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags))
    return ctypes.get_errno() if ret == -1 else 0


def close_fds(keep=(0, 1, 2), cloexec: bool = False) -> None:
    """Close every file descriptor but `keep` (or, cloexec=True, mark them close-on-exec, so
    they vanish at execve — an error pipe keeps working until then). Kept descriptors are
    made inheritable: the container's program will have them. A leaked descriptor to a host
    file or directory is a way out of any container (runc CVE-2024-21626)."""
    keep = sorted({fd for fd in keep if fd >= 0})
    for fd in keep:
        try:
            os.set_inheritable(fd, True)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
    flags = CLOSE_RANGE_CLOEXEC if cloexec else 0
    gaps, start = [], 0
    for fd in keep + [2**32]:
        if fd > start:
            gaps.append((start, min(fd - 1, 2**32 - 1)))
        start = fd + 1
    for first, last in gaps:
        err = _close_range(first, last, flags)
        if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM):     # old kernel, or a filter
            _close_fds_slowly(first, last, cloexec)
        elif err:
            raise SyscallError("close_range", (first, last, "CLOSE_RANGE_CLOEXEC" if cloexec else 0), err)


def verify_workdir(path: str | None = None) -> None:
    """After chdir: is the working directory inside the container's root? getcwd(2) answers
    "(unreachable)…" (glibc: ENOENT) for a directory the root cannot reach — where a path
    such as /proc/self/fd/N leads when N is a descriptor of a host directory that leaked into
    the container's PID 1 (runc CVE-2024-21626, "Leaky Vessels"). Refuse to start there."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    if not cwd.startswith("/"):
        raise ContainerError(f"the working directory {path or '/'} is outside the container's root "
                             "(reached through a file descriptor?): refusing to start the container")


def _close_fds_slowly(first: int, last: int, cloexec: bool) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if first <= fd <= last:
            try:
                os.set_inheritable(fd, False) if cloexec else os.close(fd)
            except OSError:
                pass                             # the listing's own descriptor, already gone
