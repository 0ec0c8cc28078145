"""Docker's run options that become fields of the one spec (spec.py): --ulimit, --sysctl,
--pid/--ipc/--uts, --oom-score-adj, --group-add, --shm-size, --device.

    man 2 setrlimit, man 8 sysctl, man 7 namespaces, man 2 setns, man 5 proc (oom_score_adj),
    man 5 tmpfs, man 2 mknod; Docker's `docker run` reference;
    kernel docs: admin-guide/cgroup-v1/devices.rst

Nothing here touches the kernel: check() refuses bad values before anything exists, and
apply() writes them into the spec that runtime.py's steps read (rlimits and oom_score_adj
in the process, sysctl, namespaces joined by path or left out, the /dev/shm size). So the
flags drive the same kernel steps as an OCI bundle's config.json does.

Why only namespaced sysctls: a container with its own IPC and network namespaces has its own
copy of kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* and net.*; every other key is the
host's single value — writing it from a container would change the whole machine.
"""
from __future__ import annotations

import resource

from .errors import ConfigError

IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
           "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def used(config) -> bool:
    return bool(config.ulimit or config.sysctl or config.pid or config.ipc or config.uts
                or config.oom_score_adj is not None or config.group_add or config.shm_size
                or config.device)


def check(config) -> None:
    """Every option parsed once; the first bad one is a ConfigError naming it."""
    rlimits(config.ulimit)
    sysctls(config)
    for flag, value, allowed in (("--pid", config.pid, ("host",)),
                                 ("--ipc", config.ipc, ("host", "private", "shareable")),
                                 ("--uts", config.uts, ("host",))):
        if value and value not in allowed and not (flag != "--uts" and value.startswith("container:")):
            kinds = ", ".join(allowed) + ("" if flag == "--uts" else " or container:NAME")
            raise ConfigError(f"invalid {flag} {value!r}: use {kinds}")
    if config.uts == "host" and config.hostname:
        raise ConfigError("--hostname and --uts host conflict: the host's UTS namespace keeps "
                          "the host's name")
    oom_score_adj(config.oom_score_adj)
    group_ids(config.group_add)
    shm_size(config.shm_size)
    if config.device:
        devices(config.device)
        check_device_cgroup()


def devices(items) -> list[tuple[dict, str]]:
    """--device HOST[:CONTAINER][:PERMS] → (the spec Device's fields, PERMS): the host node's
    type, numbers, mode and owner (what Docker copies), and r, w, m for the cgroup."""
    import os
    import stat
    out = []
    for item in items:
        parts = item.split(":")
        perms = parts.pop() if len(parts) > 1 and set(parts[-1]) <= set("rwm") and parts[-1] else "rwm"
        if len(parts) > 2 or not parts[0].startswith("/") or (len(parts) == 2 and not parts[1].startswith("/")):
            raise ConfigError(f"invalid --device {item!r}: use HOST_PATH[:CONTAINER_PATH][:PERMS], "
                              "absolute paths, PERMS of r, w, m (e.g. /dev/fuse or /dev/kmsg:/dev/k:r)")
        host, path = parts[0], os.path.normpath(parts[-1])
        try:
            st = os.stat(host)
        except OSError as e:
            raise ConfigError(f"--device {host}: {e.strerror}") from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ConfigError(f"--device {host}: not a character or block device")
        if not path.startswith("/dev/") or path.count("/") != 2:
            raise ConfigError(f"invalid --device {item!r}: the container path must be /dev/NAME")
        out.append((dict(path=path, type="c" if stat.S_ISCHR(st.st_mode) else "b", major=os.major(st.st_rdev),
                         minor=os.minor(st.st_rdev), file_mode=st.st_mode & 0o777, uid=st.st_uid,
                         gid=st.st_gid), perms))
    return out


def check_device_cgroup() -> None:
    """--device needs root's device rules: v1's devices controller or v2's eBPF program."""
    import os
    from .cgroups import detect_layout
    if os.geteuid() != 0:
        raise ConfigError("--device needs root: a rootless container can neither mknod(2) nor "
                          "have device rules in its cgroup")
    layout = detect_layout()
    if layout.version == 1 and "devices" not in layout.v1:
        raise ConfigError("--device needs the cgroup v1 devices controller, which this host lacks")


def with_device_rules(limits, items):
    """The limits plus the devices cgroup for --device: deny all, allow what every container
    has (runc's list), then each device with its PERMS."""
    from .cgroups.limits import ALLOWED_DEVICES
    from .records import asdict
    own = tuple((True, d["type"], d["major"], d["minor"], perms) for d, perms in devices(items))
    return type(limits)(**{**asdict(limits), "devices": ((False, "a", -1, -1, "rwm"), *ALLOWED_DEVICES, *own)})


def rlimits(items) -> list[tuple[str, int, int]]:
    """--ulimit TYPE=SOFT[:HARD] (-1: unlimited) → (RLIMIT_TYPE, soft, hard)."""
    out = []
    for item in items:
        kind, eq, values = item.partition("=")
        if not eq or kind not in ULIMITS:
            raise ConfigError(f"invalid --ulimit {item!r}: use TYPE=SOFT[:HARD] with TYPE one of "
                              f"{', '.join(ULIMITS)}")
        soft, _, hard = values.partition(":")
        try:
            numbers = [int(v) for v in (soft, hard or soft)]
        except ValueError:
            raise ConfigError(f"invalid --ulimit {item!r}: the limits are numbers (-1: unlimited)") from None
        soft_n, hard_n = (resource.RLIM_INFINITY if n == -1 else n for n in numbers)
        if hard_n != resource.RLIM_INFINITY and (soft_n == resource.RLIM_INFINITY or soft_n > hard_n):
            raise ConfigError(f"invalid --ulimit {item!r}: the soft limit is above the hard one")
        out.append((f"RLIMIT_{kind.upper()}", soft_n, hard_n))
    return out


def sysctls(config) -> dict[str, str]:
    out = {}
    for item in config.sysctl:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"invalid --sysctl {item!r}: use KEY=VALUE, e.g. net.ipv4.ip_forward=1")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if config.ipc == "host" or (config.ipc or "").startswith("container:"):
                raise ConfigError(f"--sysctl {key}: the container shares an IPC namespace "
                                  f"(--ipc {config.ipc}): setting it would change that one's value")
        elif key.startswith("net."):
            if config.net == "host" or config.net.startswith("container:"):
                raise ConfigError(f"--sysctl {key}: the container shares a network namespace "
                                  f"(--net {config.net}): setting it would change that one's value")
        else:
            raise ConfigError(f"--sysctl {key}: not namespaced — it is the whole host's setting, "
                              "so a container may not change it (allowed: net.*, kernel.shm*, "
                              "kernel.msg*, kernel.sem, fs.mqueue.*)")
        out[key] = value
    return out


def oom_score_adj(value) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not -1000 <= number <= 1000:
        raise ConfigError(f"invalid --oom-score-adj {value!r}: a number from -1000 to 1000")
    return number


def group_ids(items) -> list[int]:
    out = []
    for item in items:
        if not str(item).isdigit():
            raise ConfigError(f"--group-add {item!r}: give the group's number (names would need "
                              "the image's /etc/group, which is read only inside the container)")
        out.append(int(item))
    return out


def shm_size(value) -> int | None:
    if not value:
        return None
    from .cgroups.limits import parse_size
    size = parse_size("--shm-size", value)
    if size <= 0:
        raise ConfigError(f"invalid --shm-size {value!r}: give a size above 0, e.g. 64m")
    return size


def apply(spec, ctx) -> None:
    """Write the options into the spec run's prepare() made (spec.from_run)."""
    c = ctx.config
    spec.process.rlimits = [*spec.process.rlimits, *rlimits(c.ulimit)]
    spec.process.oom_score_adj = oom_score_adj(c.oom_score_adj)
    spec.process.additional_gids = [*spec.process.additional_gids, *group_ids(c.group_add)]
    spec.sysctl = {**spec.sysctl, **sysctls(c)}
    for kind, value in (("pid", c.pid), ("ipc", c.ipc), ("uts", c.uts)):
        if value == "host":                                  # no namespace: the host's own
            spec.namespaces = [ns for ns in spec.namespaces if ns.type != kind]
        elif value and value.startswith("container:"):
            path = joined_namespace(ctx, value[len("container:"):], kind)
            spec.namespaces = [type(ns)(kind, path) if ns.type == kind else ns for ns in spec.namespaces]
    if c.uts == "host":
        spec.hostname = None                                 # sethostname would rename the host
    size = shm_size(c.shm_size)
    if size:
        for m in spec.mounts:
            if m.destination == "/dev/shm":
                m.options = [o for o in m.options if not o.startswith("size=")] + [f"size={size // 1024}k"]


def joined_namespace(ctx, name: str, kind: str) -> str:
    from .errors import ContainerError
    from .status import current_status
    target = ctx.store.find(name)
    if current_status(target) != "running":
        raise ContainerError(f"--{kind} container:{name}: that container is not running")
    return f"/proc/{target.pid}/ns/{kind}"
