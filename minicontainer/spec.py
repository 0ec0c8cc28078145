"""The one spec: what a container should be, as the run sequence reads it.

    the OCI runtime spec (config.json), github.com/opencontainers/runtime-spec config.md
    and config-linux.md; `runc spec` prints an example

Every way into the run sequence ends here, so there is exactly one copy of the kernel steps:

    minicontainer run IMAGE …   ContainerConfig ──from_run()──┐
    minicontainer-oci create    bundle/config.json ─oci/──────┼──▶ Spec ──▶ runtime.py
    (pods, --ipc container:…)   Namespace(type, path) entries ┘

A Spec is the OCI document in Python form, field for field (camelCase becomes snake_case),
so `to_oci()` writes it back as config.json. Two fields go beyond the OCI document, because
`run` resolves them inside the image while podman resolves them before it calls the runtime:
`Process.username` (--user NAME[:GROUP], looked up in the image's /etc/passwd) and HOME.
Everything `run` adds that the OCI runtime does not do itself — the overlay root, the bridge
network, the state entry — happens in runtime.prepare() around the spec, as podman does it
around runc.
"""
from __future__ import annotations

from .kernel.namespaces import (CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS,
                                CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS)
from .records import asdict, field, record

# The OCI type names, their clone flag and /proc/PID/ns/ file, in the order they are made:
# the user namespace first (the others then belong to it), cgroup last (after joining the cgroup).
NAMESPACE_TYPES = {
    "user": (CLONE_NEWUSER, "user"), "mount": (CLONE_NEWNS, "mnt"), "uts": (CLONE_NEWUTS, "uts"),
    "ipc": (CLONE_NEWIPC, "ipc"), "network": (CLONE_NEWNET, "net"), "pid": (CLONE_NEWPID, "pid"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
}
CAPABILITY_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
# Every container gets these character devices (config-linux.md "Default Devices") and links.
DEFAULT_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


@record
class Namespace:
    type: str                           # user, mount, uts, ipc, network, pid, cgroup
    path: str | None = None             # None: a new one; else join it (/proc/PID/ns/net)


@record
class Mount:
    destination: str                    # inside the container
    type: str = "bind"                  # proc, sysfs, tmpfs, devpts, mqueue, cgroup, bind …
    source: str = ""
    options: list = field(default_factory=list)     # ro, nosuid, rbind, rprivate, size=64k …


@record
class Device:
    path: str                           # /dev/fuse
    type: str                           # c, b, u (unbuffered char), p (fifo)
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record
class Process:
    args: list
    env: list = field(default_factory=list)               # KEY=VALUE, in order
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list = field(default_factory=list)
    umask: int | None = None
    username: str | None = None     # run --user NAME[:GROUP]: looked up in the image instead
    terminal: bool = False
    capabilities: dict = field(default_factory=dict)     # set name → ["CAP_…"]; missing = empty
    rlimits: list = field(default_factory=list)          # (RLIMIT_NOFILE, soft, hard)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None


@record
class Spec:
    root_path: str
    process: Process
    root_readonly: bool = False
    hostname: str | None = None
    domainname: str | None = None
    mounts: list = field(default_factory=list)           # Mount, mounted in this order
    namespaces: list = field(default_factory=list)       # Namespace
    uid_mappings: list = field(default_factory=list)     # (inside, outside, count)
    gid_mappings: list = field(default_factory=list)
    devices: list = field(default_factory=list)          # Device, besides DEFAULT_DEVICES
    resources: dict = field(default_factory=dict)        # the OCI linux.resources object
    cgroups_path: str = ""
    sysctl: dict = field(default_factory=dict)
    masked_paths: list = field(default_factory=list)
    readonly_paths: list = field(default_factory=list)
    rootfs_propagation: str = "rprivate"
    seccomp: dict | None = None                          # the OCI (or Docker) profile
    hooks: dict = field(default_factory=dict)            # prestart, createRuntime … → [hook]
    annotations: dict = field(default_factory=dict)

    def namespace(self, kind: str) -> Namespace | None:
        """The entry for one namespace type; None: the container shares the host's."""
        return next((ns for ns in self.namespaces if ns.type == kind), None)

    def creates(self, kind: str) -> bool:
        ns = self.namespace(kind)
        return ns is not None and not ns.path

    def to_oci(self) -> dict:
        """The spec as config.json (what `minicontainer-oci` reads, what podman writes)."""
        p = self.process
        user = {"uid": p.uid, "gid": p.gid}
        if p.additional_gids:
            user["additionalGids"] = list(p.additional_gids)
        if p.umask is not None:
            user["umask"] = p.umask
        process = {"terminal": p.terminal, "user": user, "args": list(p.args), "env": list(p.env),
                   "cwd": p.cwd, "capabilities": {k: list(v) for k, v in p.capabilities.items()},
                   "rlimits": [{"type": t, "soft": s, "hard": h} for t, s, h in p.rlimits],
                   "noNewPrivileges": p.no_new_privileges}
        if p.oom_score_adj is not None:
            process["oomScoreAdj"] = p.oom_score_adj
        linux = {"namespaces": [{"type": n.type, **({"path": n.path} if n.path else {})}
                                for n in self.namespaces],
                 "devices": [{k if k != "file_mode" else "fileMode": v for k, v in asdict(d).items()
                              if v is not None} for d in self.devices],
                 "resources": self.resources, "cgroupsPath": self.cgroups_path,
                 "sysctl": self.sysctl, "maskedPaths": list(self.masked_paths),
                 "readonlyPaths": list(self.readonly_paths),
                 "rootfsPropagation": self.rootfs_propagation}
        for key, maps in (("uidMappings", self.uid_mappings), ("gidMappings", self.gid_mappings)):
            if maps:
                linux[key] = [{"containerID": i, "hostID": o, "size": n} for i, o, n in maps]
        if self.seccomp is not None:
            linux["seccomp"] = self.seccomp
        doc = {"ociVersion": OCI_VERSION, "process": process,
               "root": {"path": self.root_path, "readonly": self.root_readonly},
               "mounts": [asdict(m) for m in self.mounts], "linux": linux,
               "hooks": self.hooks, "annotations": self.annotations}
        for key in ("hostname", "domainname"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc


OCI_VERSION = "1.0.2"


# ── `run`'s options as a spec ─────────────────────────────────────────────────────────────

KERNEL_FS = ["nosuid", "noexec", "nodev"]


def from_run(ctx, limits) -> Spec:
    """What `minicontainer run` asks of the kernel steps: Docker's defaults plus its options.
    Called at the end of runtime.prepare(), when the overlay, the network mode, the volumes
    and the security policy are known."""
    from .init import init_argv
    c, rec, policy = ctx.config, ctx.record, ctx.policy
    caps = list(policy.capabilities)
    process = Process(args=init_argv(ctx), env=[f"{k}={v}" for k, v in c.environment(rec.hostname, None).items()],
                      cwd=c.workdir or ("" if c.user else "/"), username=c.user, terminal=c.tty,
                      additional_gids=[0], no_new_privileges=policy.no_new_privs,
                      capabilities={"bounding": caps, "effective": caps, "permitted": caps})
    spec = Spec(root_path=str(ctx.overlay.merged), process=process, root_readonly=c.read_only,
                hostname=None if pod_namespaces(ctx).get("uts") else rec.hostname,   # a pod's: set by its infra
                mounts=run_mounts(ctx), namespaces=run_namespaces(ctx), devices=run_devices(c),
                uid_mappings=id_maps(ctx, "uid_map"), gid_mappings=id_maps(ctx, "gid_map"),
                resources=oci_resources(limits), cgroups_path=ctx.cgroup.relpath if ctx.cgroup else "",
                masked_paths=list(policy.masked_paths), readonly_paths=list(policy.readonly_paths),
                seccomp=run_seccomp(policy), annotations={"org.opencontainers.image.ref.name": c.image})
    from . import runopts
    if runopts.used(c):                      # --ulimit, --sysctl, --pid/--ipc/--uts, … (runopts.py)
        runopts.apply(spec, ctx)
    return spec


def run_namespaces(ctx) -> list:
    """All seven but user (rootless only) and network (--net host: none; container:NAME: joined)."""
    kinds = (["user"] if ctx.userns else []) + ["mount", "uts", "ipc"]
    joined = pod_namespaces(ctx)             # --pod: the infra's uts and ipc, by path
    spaces = [Namespace(kind, joined.get(kind)) for kind in kinds]
    mode = ctx.network_mode.kind
    if mode in ("none", "bridge"):
        spaces.append(Namespace("network"))
    elif mode == "container":                # the fd the parent opened: it cannot be recycled
        spaces.append(Namespace("network", f"/proc/self/fd/{ctx.netns_fd}"))
    return spaces + [Namespace("pid"), Namespace("cgroup")]


def tty_gid_unmapped(ctx) -> bool:
    """Rootless with the single-id map: group 5 (tty) does not exist inside, and devpts
    refuses a gid= it cannot map (EINVAL)."""
    return ctx.userns is not None and not ctx.userns.mapping.maps_inside(0, 5)


def pod_namespaces(ctx) -> dict:
    """run --pod (orchestration/pods.py): {"uts": "/proc/PID/ns/uts", "ipc": …} of the pod's
    infra process, whose network namespace --net container:INFRA joins already: one hostname,
    one System V IPC for the pod's containers."""
    if not ctx.config.pod or ctx.network_mode.kind != "container":
        return {}
    from .errors import ContainerError
    from .state import is_alive
    infra = ctx.store.find(ctx.network_mode.name)
    if not is_alive(infra.pid, infra.pid_start):
        raise ContainerError(f"the pod's infra container {infra.name} is not running: "
                             f"`minicontainer pod start {ctx.config.pod}`")
    return {kind: f"/proc/{infra.pid}/ns/{kind}" for kind in ("uts", "ipc")}


def run_mounts(ctx) -> list:
    """Docker's: /proc, /sys, cgroups, a small /dev; then /etc/hosts …, volumes, /dev/init."""
    from .network.steps import NET_FILES
    cdir = ctx.store.container_dir(ctx.record.id)
    mounts = [Mount("/proc", "proc", "proc", KERNEL_FS), Mount("/sys", "sysfs", "sysfs", KERNEL_FS + ["ro"]),
              Mount("/sys/fs/cgroup", "cgroup", "cgroup", KERNEL_FS + ["ro"]),
              Mount("/dev", "tmpfs", "tmpfs", ["nosuid"] + ([] if ctx.config.device else ["nodev"])  # (--device:
                    + ["strictatime", "mode=755", "size=65536k"]),                          # the cgroup guards)
              Mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                                     "mode=0620"] + ([] if tty_gid_unmapped(ctx) else ["gid=5"])),
              Mount("/dev/shm", "tmpfs", "shm", KERNEL_FS + ["mode=1777", "size=65536k"]),
              Mount("/dev/mqueue", "mqueue", "mqueue", KERNEL_FS)]
    mounts += [Mount(f"/etc/{name}", "bind", str(cdir / name), ["bind"]
                     + (["ro"] if (cdir / name).is_symlink() else [])) # a network's shared hosts
               for name in NET_FILES]                                    # file (network/hosts.py)
    for m in ctx.mounts or ():
        if m.kind == "tmpfs":
            words = [w for w in m.options.split(",") if w]
            mounts.append(Mount(m.target, "tmpfs", "tmpfs", ["nosuid", "nodev"] + (["ro"] if m.read_only else [])
                                + [w for w in words if "=" in w or w == "noexec"]))
        elif m.disk:                        # volume create --opt size=N: its own ext4 (storage/disk.py)
            mounts.append(Mount(m.target, "ext4", m.disk, ["loop", "nodev", "nosuid"]
                                + (["ro"] if m.read_only else [])
                                # a loop pool's volume: one directory of the pool's image (pools.py);
                                # x-* options are mount(8)'s for userspace, never given to the kernel
                                + ([f"{SUBDIR_OPTION}{m.subdir}"] if m.subdir else [])))
        else:
            mounts.append(Mount(m.target, "bind", m.source, ["bind", "nodev"]
                                + (["ro"] if m.read_only else []) + source_options(m.source)))
    if ctx.init_binary:
        from .init import TARGET
        mounts.append(Mount(TARGET, "bind", str(ctx.init_binary), ["bind", "ro"]))
    return mounts


def run_devices(config) -> list:
    """--device: mknod'ed in /dev (rootfs.make_device); the devices cgroup decides (runopts.py)."""
    if not config.device:
        return []
    from .runopts import devices
    return [Device(**fields) for fields, _ in devices(config.device)]


SUBDIR_OPTION = "x-mc.subdir="


def source_options(path: str) -> list:
    """A bind must not lift the source's own ro/nosuid/noexec (statvfs(2) f_flag)."""
    import os
    f = os.statvfs(path).f_flag
    return [word for bit, word in ((os.ST_RDONLY, "ro"), (os.ST_NOSUID, "nosuid"), (os.ST_NOEXEC, "noexec"))
            if f & bit]


def oci_resources(limits) -> dict:
    """cgroups.Limits as linux.resources (memory.swap is memory + swap, as Docker's and v1's)."""
    quota = limits.cpu_quota()
    memory = {"limit": limits.memory, "swap": limits.swap_total(), "reservation": limits.memory_reservation}
    cpu = {"shares": limits.cpu_shares, "quota": quota[0] if quota else None,
           "period": quota[1] if quota else None, "cpus": limits.cpuset_cpus, "mems": limits.cpuset_mems}
    out = {"memory": memory, "cpu": cpu, "pids": {"limit": limits.pids_limit}}
    return {k: {f: v for f, v in section.items() if v is not None} for k, section in out.items()
            if any(v is not None for v in section.values())}


def id_maps(ctx, which: str) -> list:
    if ctx.userns is None:
        return []
    return [(r.inside, r.outside, r.count) for r in getattr(ctx.userns.mapping, which)]


def run_seccomp(policy) -> dict | None:
    """The profile behind the compiled filter (the policy holds the program itself)."""
    if policy.seccomp is None:
        return None
    if policy.seccomp_source == "default":
        from .seccomp_default import DEFAULT_SECCOMP_PROFILE
        return DEFAULT_SECCOMP_PROFILE
    return {"profile": policy.seccomp_source}
