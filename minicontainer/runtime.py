"""The run sequence: how a container comes to life, in the order the kernel needs it.

    run → prepare → start → launch ─fork─▶ setup_child ─fork─▶ container_init → execve
        → wait → teardown

These functions come first below (after Context), in this order, each a list of named steps;
the steps follow in the same order, then the plumbing (the pipes' protocol: Report).

    the CLI process (parent)        setup child                     container PID 1
    ────────────────────────        ───────────                     ───────────────
    prepare: check every option,
    state entry, overlay dirs,
    cgroup, network lease; the spec
    fork ─────────────────────────▶ join the namespaces given by
                                    path (setns); a new user ns?
            ◀─────────── "userns" ─ unshare it first, alone (waits)
    write its uid/gid maps (userns)
    "maps" ───────────────────────▶ unshare mount, UTS, IPC, net, PID
            ◀───────── "ns ready" ─ join the cgroup, then unshare
    attach the network: veth into   the cgroup namespace (waits)
    the child's new netns (both
    halves at the same time)
    release ──────────────────────▶ fork ─────────────────────────▶ mount propagation, root,
            ◀──────────── "pid N" ─ exit (PID 1 is now our child,  the spec's mounts, devices,
                                    we are its subreaper)           hostname, lo up,
    OCI create only: prestart and   ◀───────────────────── "hooks" ─ (waits; then createContainer
    createRuntime hooks, state ─────────────────────────────────────▶ hooks), pivot_root,
                                                                    sysctl, read-only root,
                                                                    workdir, env, own session,
                                                                    rlimits, close fds
                                                                    masks, no_new_privs, user +
                                                                    capabilities, seccomp
    wait, forwarding signals                                        execve(the command)
    teardown: cgroup, network, overlay, state

Every step reads one spec (spec.py: the OCI runtime spec in Python form). `run` builds it from
its options in prepare(); `minicontainer-oci create` reads it from the bundle's config.json
and calls launch() — the same kernel steps, never a second copy of them.

Why two forks? unshare(CLONE_NEWPID) does not move the caller: only its next child becomes
PID 1 of the new PID namespace (pid_namespaces(7)); `unshare --pid --fork` does the same.
Why a pipe? The container must not start before the parent has finished its half, and any
error in a child must come back as one line (the pipe is close-on-exec, so EOF means execve
succeeded); each child also reports the step it is at, so a child that dies is named by it.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import threading
import time

from . import cgroups, rootfs
from .errors import ImageError, MinicontainerError, StartError, SyscallError
from .explain import Explainer
from .kernel.mount import MS_BIND, MS_NODEV, MS_RDONLY, MS_REMOUNT, mount
from .kernel.namespaces import (CLONE_NEWCGROUP, CLONE_NEWUSER, NAMESPACES, flag_names, setns,
                                unshare)
from .kernel.netdev import set_link_up
from .kernel.pivot_root import chroot_into, pivot_into
from .kernel.syscalls import libc
from .process import (ExecError, exec_command, exit_status, find_executable, leave_terminal,
                      reset_signals, resolve_process_user, set_process_limits, set_workdir)
from .records import asdict, record
from .security import (apply as apply_security, close_fds, resolve as resolve_policy,
                       set_non_dumpable, verify_workdir)
from .spec import NAMESPACE_TYPES, Spec, from_run
from .procfs import proc_start_time

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
PR_SET_CHILD_SUBREAPER = 36


@record
class Context:
    """Everything the steps share: the spec, the options, the record, and what has been created."""
    config: object | None                      # run: config.ContainerConfig; OCI: None
    store: object | None                       # run: state.StateStore (and events go there)
    explain: Explainer
    record: object | None = None               # run: state.ContainerRecord
    spec: Spec | None = None                   # what the kernel steps do (spec.py)
    overlay: object | None = None              # run: storage.overlay.OverlayDirs, mounted by PID 1
    cgroup: object | None = None               # cgroups.Cgroup
    policy: object | None = None               # security.Policy: capabilities, seccomp, masks
    network_mode: object | None = None         # network.NetworkMode: none/host/bridge/container
    netns_fd: int | None = None                # --net container:NAME: the namespace to join
    pid: int = 0                               # host PID of the container's PID 1
    signals: object | None = None              # the forward_signals in force
    console: object | None = None              # terminal: tty.Console (run -t) or the OCI socket's
    init_binary: object | None = None          # --init: the host's init program (init.py)
    mounts: list | None = None                 # -v, --tmpfs: storage/volumes.Mount, resolved
    userns: object | None = None               # rootless: userns.Plan (id maps, cgroup), else None
    subreaper: bool = True                     # run waits for PID 1; OCI create leaves it to its caller
    start_fifo: int | None = None              # OCI create: exec.fifo, opened; PID 1 waits on it
    started_fifo: int | None = None            # …and tells `start` through this one how exec went
    hooks: object | None = None                # OCI create: pid → state JSON, after running the
                                               # prestart/createRuntime hooks (oci/container.py)
    hook_state: dict | None = None             # PID 1: the state JSON its own hooks read
    keep_fds: tuple = (0, 1, 2)                # what the command inherits (OCI --preserve-fds)
    mount_fds: list | None = None              # PID 1: targets resolved in the root, until mounted
    no_pivot: bool = False                     # chroot instead of pivot_root (run --isolation chroot)
    joining: bool = False                      # OCI exec: into a container that exists (no new root)

    @property
    def merged(self) -> str:
        return self.spec.root_path if self.spec else str(self.overlay.merged)


# ── the sequence ──────────────────────────────────────────────────────────────────────────
# run's own modules (image store, overlay, network, events) are imported inside prepare, start,
# wait and teardown, not above: `minicontainer-oci create` runs launch() alone and must not pay
# for them, and every module a start loads costs time (docs/performance.md).

def run(ctx: Context) -> int:
    """prepare → start → wait → teardown; returns the container's exit status."""
    prepare(ctx)
    try:
        with forward_signals(ctx):          # from before fork: no signal is lost in between
            start(ctx)
            return wait(ctx)
    finally:
        teardown(ctx)


def prepare(ctx: Context) -> None:
    """Parent: check every option, then record the container and create what it needs — each
    thing recorded before it exists, so teardown (or gc, after a crash) finds it — and write
    down the spec every later step reads."""
    from .init import find_init_binary
    from .network import steps as net
    from .state import write_cidfile
    from .storage import layers, overlay
    config = ctx.config
    lower = find_image_rootfs(ctx)                          # its defaults fill in command, env, user
    limits = cgroups.parse_limits(**config.limits)          # bad values fail before anything exists
    ctx.userns = plan_rootless(config, limits)              # not root: id maps; what cannot work refused
    ctx.policy = resolve_security(config)                   # …and the seccomp filter is compiled here
    net_mode, ports = net.check_network_options(config)
    ctx.init_binary = find_init_binary(ctx.store.root) if config.init else None   # built once (gcc)
    new = ctx.record is None                                # (a restart reuses its record)
    ctx.record = ctx.record or ctx.store.create(
        config.image, config.command or ["/bin/sh"], config.name,
        auto_remove=config.remove, config=config_summary(config), **owner_fields())
    cdir = ctx.store.container_dir(ctx.record.id)           # $C in the narration
    try:
        if new and config.cidfile:                          # --cidfile: the ID, once it exists
            write_cidfile(config.cidfile, ctx.record.id)
        ctx.record.hostname = config.hostname or ctx.record.short_id
        ctx.explain.define("ID", ctx.record.id)             # later steps print $ID, not 64 hex digits
        ctx.explain.define("C", str(cdir))                  # …and $C/upper
        if config.volumes or config.tmpfs or config.mount:  # named volumes exist from here on
            from .storage.volumes import resolve_mounts
            ctx.mounts = resolve_mounts(ctx)
        lowerdir = layers.lowerdir_option(layers.make_init_layer(cdir, lower))   # + mount points
        ctx.overlay = overlay.create_overlay_dirs(cdir, lowerdir, config.storage_size)
        where = ctx.userns.cgroup_root if ctx.userns else ""      # rootless: a delegated group, or None
        ctx.record.cgroup = "" if where is None else cgroup_name(ctx)  # recorded before it exists
        ctx.record.cgroup_root = str(where or "")                  # "": in /sys/fs/cgroup
        ctx.store.save(ctx.record)
        ctx.cgroup = create_cgroup(ctx, limits)
        net.plan_network(ctx, net_mode, ports)               # an address leased, hosts file written
        ctx.no_pivot = config.isolation == "chroot"
        ctx.spec = from_run(ctx, limits)                     # from here on: only the spec counts
    except BaseException:
        teardown(ctx)
        raise


def start(ctx: Context) -> None:
    """Parent: launch PID 1, then record that it runs (or why it did not start)."""
    try:
        launch(ctx)
    except StartError as e:
        ctx.record.status, ctx.record.exit_code = "exited", e.exit_code
        raise
    from . import events
    ctx.signals.deliver()                                   # any signal that came during start-up
    ctx.record.pid, ctx.record.pid_start = ctx.pid, proc_start_time(ctx.pid)
    ctx.record.status, ctx.record.started_at = "running", time.time()
    ctx.store.save(ctx.record)
    events.record(ctx.store, "start", ctx.record)
    if ctx.config.health_cmd or ctx.config.healthcheck:      # a health check (health.py):
        from .health import start_monitor                   # its monitor runs beside PID 1
        start_monitor(ctx.store, ctx.record, ctx.config)


def launch(ctx: Context) -> None:
    """Parent: fork the setup child, do the parent's half, learn the PID of PID 1."""
    if ctx.subreaper and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:   # orphaned PID 1
        raise StartError("prctl(PR_SET_CHILD_SUBREAPER) failed: cannot wait for the container")
    msg_r, msg_w = os.pipe()                                # children → parent (close-on-exec)
    go_r, go_w = os.pipe()                                  # parent → setup child
    ctx.explain.step("fork a setup child", "unshare … --fork", "fork()", "fork(2)",
                     "the namespaces are made in a child, so the CLI process itself stays on the host")
    child = os.fork()
    if child == 0:
        os.close(go_w), os.close(msg_r)                     # the parent's ends: if it dies, we see EOF
        run_in_child(setup_child, ctx, go_r, msg_w)
    os.close(go_r), os.close(msg_w)
    with os.fdopen(msg_r, "rb") as messages:
        report = Report(messages, child)
        if ctx.spec.creates("user"):                        # the child is in its new user
            report.expect(b"userns")                        # namespace; only we can map its ids
            parents_half(report, go_w, b"maps", map_user_ids, ctx, child)
        report.expect(b"ns")
        parents_half(report, go_w, b"go", parents_half_after_ns, ctx, child)   # veth into the new netns
        hooks = HookAnswer(ctx, go_w)                       # OCI: PID 1 will wait for hooks
        if ctx.hooks is None:
            hooks.close()
        try:
            ctx.pid = report.read_to_end(detach=ctx.config is not None and ctx.config.detach,
                                         hooks=hooks)
        finally:
            hooks.close()


def setup_child(ctx: Context, go_r: int, msg_w: int) -> None:
    """Setup child: enter the spec's namespaces and the cgroup, then fork PID 1."""
    ctx.explain.who = "setup child"
    if ctx.joining:                         # exec: before the container's mount namespace hides
        join_cgroup(ctx)                    # the host's cgroup tree
    join_namespaces(ctx)                    # each one given by path: setns(2), the user ns first
    if ctx.spec.creates("user"):
        create_user_namespace(ctx, go_r, msg_w)   # first and alone; the parent maps our ids
    set_non_dumpable(ctx.explain)           # (after the map: dumpable, /proc/PID/uid_map is ours)
    create_namespaces(ctx)                  # all the others but the cgroup namespace
    os.write(msg_w, b"ns\n")                # the parent attaches the network meanwhile, while…
    if not (ctx.joining or parent_joins_cgroup(ctx)):
        join_cgroup(ctx)                    # …we join the cgroup (v2: an RCU grace period, ~10 ms)
    if os.read(go_r, 2) != b"go":                           # wait until the parent is done;
        os._exit(125)                                       # EOF: its half failed, stop here
    create_cgroup_namespace(ctx)            # after joining: our cgroup becomes the container's /
    ctx.explain.step("fork PID 1 of the new PID namespace", "unshare --pid --fork …", "fork()",
                     "fork(2), pid_namespaces(7)", "unshare(CLONE_NEWPID) moved no one: only the next "
                     "child of this process is PID 1 in the new namespace — hence the second fork")
    pid = os.fork()                                         # this child is PID 1 inside
    if pid == 0:
        run_in_child(container_init, ctx, go_r, msg_w)
    os.write(msg_w, b"pid %d\n" % pid)


def container_init(ctx: Context, go_r: int, msg_w: int) -> None:
    """PID 1 of the container (or, joining, an exec'd process): its root, then its process."""
    ctx.explain.who = "exec'd process" if ctx.joining else "container PID 1"
    if not ctx.joining:
        build_root(ctx, go_r, msg_w)
    become_command(ctx, msg_w)


def build_root(ctx: Context, go_r: int, msg_w: int) -> None:
    """PID 1: the container's filesystem, names and network view, then switch root to it."""
    rootfs.set_propagation(ctx)             # first: nothing below may leak to the host
    rootfs.mount_rootfs(ctx)                # run: overlay of image + upper dir; OCI: root.path
    rootfs.mount_all(ctx)                   # the spec's mounts in order: /proc, /sys, /dev …, volumes
    rootfs.create_devices(ctx)              # null, zero …: bound from the host; the spec's: mknod
    set_hostname(ctx)                       # and the domain name
    if ctx.spec.creates("network"):
        bring_up_loopback(ctx)
    if ctx.hooks is not None:               # OCI: the runtime's hooks, then the container's own,
        run_create_hooks(ctx, go_r, msg_w)  # while the host's files are still in reach
    enter_root(ctx)                         # pivot_root (or chroot): the host's files are gone
    rootfs.set_root_propagation(ctx)        # the spec's shared/private for the new /
    write_sysctl(ctx)                       # in the container's own /proc/sys, before it is read-only
    if ctx.spec.root_readonly:
        make_root_read_only(ctx)


def become_command(ctx: Context, msg_w: int) -> None:
    """Who the command runs as, where, with which limits and privileges — then execve."""
    process = ctx.spec.process
    uid, gid, groups, home = resolve_process_user(process)   # names: the *container's* /etc/passwd
    set_workdir(process.cwd or home)
    verify_workdir(process.cwd)             # getcwd(2): really inside the new root
    env = environment(process.env, home)
    if ctx.console is not None:             # a terminal: a pty from our own devpts, master sent home
        ctx.console.attach(uid, gid, console=not ctx.joining, explain=ctx.explain)
    else:
        leave_terminal(ctx.explain)         # none: your terminal must not be its terminal
    reset_signals()
    set_process_limits(process, ctx.explain)  # rlimits, oom_score_adj, umask
    close_fds(keep=ctx.keep_fds, cloexec=True)   # nothing of the runtime leaks into the container
    apply_security(ctx.policy, uid=uid, gid=gid, groups=groups, explain=ctx.explain)
                                            # masks, no_new_privs, user + capabilities, seccomp last
    if ctx.start_fifo is not None:          # OCI create: ready; wait for `start`
        wait_for_start(ctx, msg_w, env)
    ctx.explain.step(f"execute the command as uid {uid}", "exec " + " ".join(process.args),
                     f"execve({process.args[0]!r}, …)", "execve(2)",
                     "the container's program replaces this Python process; it is PID 1 now")
    exec_command(process.args, env)


def wait(ctx: Context) -> int:
    """Parent: wait for PID 1, passing on the signals the user sends us."""
    from . import events
    if ctx.console is not None:
        ctx.console.relay(ctx.pid)          # -t: your terminal ⇄ the pty until PID 1 ends
    _, status = os.waitpid(ctx.pid, 0)
    code = exit_status(status)
    ctx.record.status, ctx.record.exit_code, ctx.record.finished_at = "exited", code, time.time()
    if ctx.cgroup is not None and code == 137 and ctx.cgroup.oom_killed():
        ctx.record.oom_killed = True
        events.record(ctx.store, "oom", ctx.record)
        os.write(2, f"minicontainer: {ctx.record.name} was killed by the kernel's OOM killer: "
                    "it used more memory than its --memory limit (exit 137)\n".encode())
    events.record(ctx.store, "die", ctx.record, exitCode=code)
    return code


def wait_for(pid: int) -> int:
    """waitpid(2) → a shell exit status (128+N for signal N)."""
    return exit_status(os.waitpid(pid, 0)[1])


def teardown(ctx: Context) -> None:
    """Parent: undo prepare() in reverse order. Safe to call after a failure at any step."""
    ctx.explain.section("clean up: the container has exited")
    if ctx.cgroup is not None:
        ctx.cgroup.remove()
        ctx.cgroup = None
    if ctx.record is None:
        return
    from .network import steps as net
    from .storage.overlay import remove_overlay_dirs
    net.detach_network(ctx)
    if ctx.record.status == "created":
        ctx.record.status = "exited"
    if ctx.record.auto_remove:
        remove_overlay_dirs(ctx.store.container_dir(ctx.record.id))
        ctx.store.delete(ctx.record)
    else:
        ctx.store.save(ctx.record)
    ctx.explain.flush()


# ── the steps ─────────────────────────────────────────────────────────────────────────────

def find_image_rootfs(ctx: Context):
    """The image's lower dirs (top first: its layers, or its one rootfs/); its defaults
    (command, env, workdir, user) fill in what the user did not give."""
    from .storage.images import ImageStore, apply_image_config
    image = ImageStore(ctx.store.root / "images").get(ctx.config.image)
    for lower in image.lower_dirs:
        if not lower.is_dir():
            raise ImageError(f"image {image.ref} has no rootfs at {lower}: remove it "
                             f"(`minicontainer image rm {image.ref}`) and import it again")
    ctx.config.image = image.ref
    apply_image_config(ctx.config, image)
    return image.lower_dirs


def resolve_security(config):
    """--cap-add/--cap-drop, --privileged, --security-opt → security.Policy; its warnings said."""
    policy = resolve_policy(cap_add=config.cap_add, cap_drop=config.cap_drop,
                            privileged=config.privileged, security_opt=config.security_opt)
    warnings = list(policy.warnings)
    if config.isolation == "chroot":            # said by the library, so labs and scripts see it too
        warnings.append("--isolation chroot can be escaped by a root process (see labs/01-chroot); "
                        "use it only to learn why")
    for warning in warnings:
        os.write(2, f"minicontainer: warning: {warning}\n".encode())
    return policy


def plan_rootless(config, limits):
    """Not started as root: rootless mode (userns.py). None for root."""
    if os.geteuid() == 0:
        return None
    from .userns import plan_container
    return plan_container(config, limits)


def create_cgroup(ctx: Context, limits):
    """The container's cgroup, its limits written (--device: the devices cgroup's rules too)."""
    where = {}
    if ctx.userns is not None:              # rootless: only in a group delegated to the user
        if ctx.userns.cgroup_root is None:
            return None                     # (prepare said so, and refused limits)
        where = {"root": ctx.userns.cgroup_root}
    ctx.explain.step("create the container's cgroup and write its limits", "",
                     "mkdir(2) and write(2) in the cgroup filesystem", "cgroups(7)",
                     "a cgroup counts and limits the memory, CPU and processes of everything inside")
    if ctx.config.device:                    # --device: the devices cgroup decides (runopts.py)
        from .runopts import with_device_rules
        limits = with_device_rules(limits, ctx.config.device)
    cgroup = cgroups.create_cgroup(ctx.record.cgroup, limits, explain=ctx.explain.callback(),
                                   devices=bool(limits.devices), **where)
    for warning in cgroup.warnings:                          # e.g. no swap accounting: skipped, as Docker does
        os.write(2, f"minicontainer: warning: {warning}\n".encode())
    return cgroup


def cgroup_name(ctx: Context) -> str:
    """ID, or POD_GROUP/ID for a container of a pod: its group sits inside the pod's.
    --cgroup-parent /A/B: /A/B/ID from the hierarchy's root; A/B: below minicontainer/."""
    parent = (ctx.config.cgroup_parent or "").rstrip("/")
    if not parent:
        return ctx.record.id
    if "/" not in parent:
        return f"{parent}/{ctx.record.id}"
    return f"{parent if parent.startswith('/') else '/' + cgroups.PARENT + '/' + parent}/{ctx.record.id}"


def parents_half_after_ns(ctx: Context, child: int) -> None:
    """The network (a veth into the child's new netns); with a user namespace also the cgroup:
    the child, root only inside, may no longer write the host's cgroup files."""
    if ctx.network_mode is not None:
        from .network import steps as net
        net.attach_network(ctx, child)
    if parent_joins_cgroup(ctx):
        ctx.cgroup.add_process(child)


def parent_joins_cgroup(ctx: Context) -> bool:
    """Root with an OCI user namespace: the child's uid 0 inside is an unprivileged uid outside.
    (Rootless: the delegated group is the user's own, the child joins it itself.)"""
    return ctx.spec.creates("user") and ctx.userns is None and ctx.cgroup is not None


def join_cgroup(ctx: Context) -> None:
    if ctx.cgroup is None:                  # rootless without a delegated cgroup
        return
    ctx.explain.step("join the cgroup", f"echo 0 > …/{ctx.cgroup.JOIN_FILE}",
                     f"write(2) to {ctx.cgroup.JOIN_FILE}", "cgroups(7)",
                     "0 means \"the process writing this\": this process moves itself in, and every "
                     "process it forks from here on (PID 1, your command) is counted and limited there")
    ctx.cgroup.join()                       # we have one thread: v1 moves it without a global lock
    ctx.explain.flush()                     # (its lines now: next, this process waits for the parent)


def join_namespaces(ctx: Context) -> None:
    """setns(2) into each namespace the spec gives by path (another container's, a pod's),
    the user namespace first: the others may belong to it. All are opened before the first
    join: once in another mount namespace, the paths may lead elsewhere."""
    joined = sorted((ns for ns in ctx.spec.namespaces if ns.path), key=lambda ns: ns.type != "user")
    fds = []
    try:
        for ns in joined:
            try:
                fds.append(os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as e:
                raise StartError(f"cannot open the {ns.type} namespace {ns.path}: {e.strerror}") from None
        for ns, fd in zip(joined, fds):
            flag, _ = NAMESPACE_TYPES[ns.type]
            ctx.explain.step(f"join the {ns.type} namespace at {ns.path}", f"nsenter --{ {'network': 'net'}.get(ns.type, ns.type)}={ns.path}",
                             f"setns(open(\"{ns.path}\"), {flag_names(flag)})", "setns(2)",
                             "shared with whoever else is in it (a pod, another container, the host)")
            setns(fd, flag)
    finally:
        for fd in fds:
            os.close(fd)


def create_user_namespace(ctx: Context, go_r: int, msg_w: int) -> None:
    ctx.explain.step("create a user namespace" + (" (rootless)" if ctx.userns else ""), "unshare --user",
                     "unshare(CLONE_NEWUSER)",
                     "user_namespaces(7)", "root inside, someone else outside: the namespaces made next "
                     "belong to it, so its root may mount and set a hostname there — and nowhere else")
    if ctx.userns is not None:
        from .userns import unshare_user
        unshare_user()                      # the reason and the fix if this machine forbids it
    else:
        unshare(CLONE_NEWUSER)
    os.write(msg_w, b"userns\n")
    if os.read(go_r, 4) != b"maps":                         # EOF: mapping failed, stop here
        os._exit(125)
    if ctx.userns is None:                  # root with OCI maps: our host uid 0 is unmapped in
        become_namespace_root()             # there (files we make would get EOVERFLOW)


def become_namespace_root() -> None:
    """setresgid/setresuid(0): root of the new user namespace (it holds every capability there)."""
    for call, change in (("setresgid", os.setresgid), ("setresuid", os.setresuid)):
        try:
            change(0, 0, 0)
        except OSError as e:
            raise SyscallError(call, (0, 0, 0), e.errno or 0, "uid/gid 0 of the container must be "
                               "mapped (linux.uidMappings/gidMappings with containerID 0)") from None


def map_user_ids(ctx: Context, child: int) -> None:
    from .userns import write_id_maps
    if ctx.userns is None:                  # root (OCI uidMappings): any map, written directly
        write_spec_id_maps(ctx, child)
        return
    m = ctx.userns.mapping
    ctx.explain.step("map the container's user and group ids",
                     f"uid_map: {' | '.join(r.line() for r in m.uid_map)}",
                     f"write(2) to /proc/{child}/uid_map and gid_map" + (" (by newuidmap/newgidmap)" if m.helpers else ""),
                     "user_namespaces(7), newuidmap(1), subuid(5)",
                     "uid 0 inside is you outside: what the container's root creates belongs to you")
    write_id_maps(child, m, ctx.explain)


def write_spec_id_maps(ctx: Context, child: int) -> None:
    from .userns import write_proc
    for name, maps in (("gid_map", ctx.spec.gid_mappings), ("uid_map", ctx.spec.uid_mappings)):
        text = "\n".join(f"{inside} {outside} {count}" for inside, outside, count in maps)
        ctx.explain.step(f"write the {name} of the container's user namespace",
                         f"printf '{text}' > /proc/{child}/{name}", f"write(2) to /proc/{child}/{name}",
                         "user_namespaces(7)", "container ids → host ids: uid 0 inside is an "
                         "unprivileged user outside")
        if maps:
            write_proc(child, name, text)


def create_namespaces(ctx: Context) -> None:
    flags = 0
    for ns in ctx.spec.namespaces:
        if ns.type not in ("user", "cgroup") and not ns.path:
            flags |= NAMESPACE_TYPES[ns.type][0]
    if not flags:
        return
    ctx.explain.step("create new namespaces", f"unshare {namespace_options(flags)} --fork",
                     f"unshare({flag_names(flags)})", "unshare(2), namespaces(7)",
                     "from now on this process has its own mount table, hostname, IPC and "
                     "network; its next child will be PID 1 of a new PID namespace")
    unshare(flags)


def namespace_options(flags: int) -> str:
    return " ".join(opt for _, (flag, opt, _) in NAMESPACES.items() if flags & flag)


def create_cgroup_namespace(ctx: Context) -> None:
    if not ctx.spec.creates("cgroup"):
        return
    ctx.explain.step("create a cgroup namespace", "unshare --cgroup", "unshare(CLONE_NEWCGROUP)",
                     "cgroup_namespaces(7)", "made after joining the cgroup: the group we are in "
                     "now is what the container will see as the root, /, of the cgroup tree")
    unshare(CLONE_NEWCGROUP)


def set_hostname(ctx: Context) -> None:
    name, domain = ctx.spec.hostname, ctx.spec.domainname
    if name:
        ctx.explain.step(f"set the hostname to {name}", f"hostname {name}",
                         f"sethostname(\"{name}\")", "sethostname(2), uts_namespaces(7)",
                         "the new UTS namespace has its own hostname; the host's is unchanged")
        socket.sethostname(name)
    if domain:
        ctx.explain.step(f"set the domain name to {domain}", f"domainname {domain}",
                         f"setdomainname(\"{domain}\")", "setdomainname(2)", "also per UTS namespace")
        raw = domain.encode()
        if libc.setdomainname(raw, len(raw)) != 0:
            raise SyscallError("setdomainname", (domain,), ctypes.get_errno())


def bring_up_loopback(ctx: Context) -> None:
    ctx.explain.step("bring up the loopback interface", "ip link set lo up",
                     "ioctl(SIOCSIFFLAGS, IFF_UP)", "netdevice(7), network_namespaces(7)",
                     "a new network namespace has only `lo`, and it starts down")
    set_link_up("lo")


def enter_root(ctx: Context) -> None:
    if ctx.no_pivot or ctx.spec.namespace("mount") is None:    # no namespace of its own: pivot_root
        # would move the caller's root too; runc chroots then as well
        ctx.explain.step("change root with chroot (escapable!)", f"chroot {ctx.merged}",
                         f"chroot(\"{ctx.merged}\")", "chroot(2)",
                         "chroot only changes where path lookups start; the host's root stays "
                         "mounted, so a root process can climb back out")
        chroot_into(ctx.merged)
        return
    ctx.explain.step("switch the root mount with pivot_root", f"cd {ctx.merged} && pivot_root . . && umount -l .",
                     "pivot_root(\".\", \".\"), umount2(\".\", MNT_DETACH)", "pivot_root(2)",
                     "the overlay becomes /, the host's root is unmounted: no path leads back")
    pivot_into(ctx.merged)


def make_root_read_only(ctx: Context) -> None:
    ctx.explain.step("make / read-only", "mount -o remount,bind,ro,nodev /",
                     "mount(NULL, \"/\", NULL, MS_REMOUNT|MS_BIND|MS_RDONLY|MS_NODEV)", "mount(2)",
                     "--read-only: the program cannot change its own files (a bind remount sets "
                     "all flags at once, so nodev is repeated)")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV)


def write_sysctl(ctx: Context) -> None:
    """linux.sysctl: kernel settings of the container's own namespaces (net.*, kernel.shm* …)."""
    for key, value in ctx.spec.sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        ctx.explain.step(f"set the sysctl {key}={value}", f"sysctl -w {key}={value}",
                         f"write(2) to {path}", "sysctl(8), proc(5)",
                         "per namespace: this changes the container's copy, not the host's")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise SyscallError("write", (path, str(value)), e.errno or 0,
                               f"sysctl {key} cannot be set in this container") from None


def environment(env: list, home: str) -> dict[str, str]:
    """The spec's KEY=VALUE list; HOME from the user's passwd entry unless given (as runc)."""
    out = dict(item.partition("=")[::2] for item in env)
    out.setdefault("HOME", home)
    return out


def run_create_hooks(ctx: Context, go_r: int, msg_w: int) -> None:
    """OCI, PID 1 before pivot_root: the runtime runs the prestart and createRuntime hooks in its
    own namespaces (the parent, HookAnswer) while we wait; then we run createContainer's here,
    in the container's namespaces (config.md "POSIX-platform Hooks"). Their paths are the host's:
    the old root is still mounted."""
    from .oci import hooks  # noqa: F401  (now: after pivot_root, startContainer's could not)
    ctx.explain.step("let the runtime run its prestart and createRuntime hooks",
                     "(the runtime) echo $STATE_JSON | HOOK", "write(2) \"hooks\", then read(2)",
                     "the OCI runtime spec, config.md \"POSIX-platform Hooks\"",
                     "a hook sees the container's namespaces made and mounted, before pivot_root: "
                     "podman's and NVIDIA's hooks set up networks and devices here")
    os.write(msg_w, b"hooks\n")
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = os.read(go_r, 65536)
        if not chunk:                       # EOF: a hook failed; the runtime reports which one
            os._exit(125)
        answer += chunk
    os.close(go_r)
    ctx.hook_state = json.loads(answer)
    run_hooks(ctx, "createContainer")


def run_hooks(ctx: Context, kind: str) -> None:
    """PID 1 runs the container's own hooks (createContainer, startContainer), state on stdin."""
    if ctx.spec.hooks.get(kind):
        from .oci.hooks import run as run_oci_hooks     # (imported before pivot_root)
        run_oci_hooks(ctx.spec.hooks, kind, ctx.hook_state, explain=ctx.explain)


def wait_for_start(ctx: Context, msg_w: int, env: dict) -> None:
    """OCI create: tell the caller we are ready, then block until `start` writes to exec.fifo
    (opened read-write by `create` before fork: a read then waits for a byte, and the host's
    path is out of reach after pivot_root). The command is looked up first, so a missing one
    fails `create`, as with runc."""
    find_executable(ctx.spec.process.args[0], env.get("PATH", ""))
    ctx.explain.step("wait for `start`", "cat $STATE/exec.fifo", "read(exec.fifo)", "fifo(7)",
                     "created: everything is set up; the command runs when `start` says so")
    os.write(msg_w, b"ready\n")
    ctx.explain.report_fd = None
    os.close(msg_w)                                          # EOF: `create` returns now
    if os.read(ctx.start_fifo, 1) != b"0":
        os._exit(125)
    os.close(ctx.start_fifo)
    if ctx.started_fifo is not None:        # from here on, what we report goes to `start`: a
        os.dup2(ctx.started_fifo, msg_w, inheritable=False)  # failure as a line, execve as EOF
        os.close(ctx.started_fifo)
    if ctx.hook_state is not None:
        ctx.hook_state["status"] = "created"
        run_hooks(ctx, "startContainer")    # in the container, as its user, before execve


# ── plumbing ──────────────────────────────────────────────────────────────────────────────

def run_in_child(step, ctx: Context, *fds) -> None:
    """Run a child's part; never return into the parent's code (always os._exit). Each step
    it announces is also reported ("at TITLE"), so the parent can name where a child died."""
    msg_w = fds[-1]
    status = 0
    try:
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        ctx.explain.report_fd = msg_w
        step(ctx, *fds)
    except ExecError as e:                                  # execve failed: 127 or 126; the
        os.write(2, f"minicontainer: {e}\n".encode())       # message for the terminal, and for
        report_line(msg_w, f"exec {e.status} {e}")          # start() (run -d has no terminal)
        status = e.status
    except MinicontainerError as e:
        report_line(msg_w, f"err {e}")
        status = 125
    except BaseException as e:                              # a bug: still one line, still 125
        report_line(msg_w, f"err internal error in {step.__name__}: {e!r}")
        status = 125
    finally:
        ctx.explain.flush()
        os._exit(status)


def report_line(fd: int, text: str) -> None:
    try:
        os.write(fd, text.replace("\n", " ").encode(errors="replace") + b"\n")
    except OSError:                         # OCI create: the report pipe is already closed
        os.write(2, f"minicontainer: {text}\n".encode(errors="replace"))


class Report:
    """The parent's reader of the message pipe. The children say, one line each: "userns", "ns",
    "at STEP", "pid N", "err WHY", "exec STATUS WHY" (execve failed), "hooks", "ready" (OCI
    create). A failure becomes one StartError carrying the exit status (125, or 126/127 when
    execve failed); a child that died without a word is named with the step it was at."""

    def __init__(self, messages, child: int):
        self.messages, self.child, self.step, self.said = messages, child, "", {}

    def next_line(self) -> bytes:
        while True:
            line = self.messages.readline().rstrip(b"\n")
            if not line.startswith(b"at "):
                return line
            self.step = line[3:].decode(errors="replace")

    def expect(self, kind: bytes) -> None:
        """The next line must be `kind`; a failure report becomes a StartError."""
        line = self.next_line()
        if line.startswith(kind):
            return
        _, status = os.waitpid(self.child, 0)
        self.fail(line, self.died(status, f"it sent {kind.decode()!r}"))

    def fail(self, line: bytes, why: str, status: int = 125) -> None:
        if line.startswith(b"err "):
            raise StartError(line[4:].decode(errors="replace"), status)
        raise StartError(why, status)

    def died(self, wait_status: int, before: str) -> str:
        """Why the setup child's silence is an error: how it ended, and at which step."""
        code = os.waitstatus_to_exitcode(wait_status)
        if code >= 0:
            how = f"exited with status {code}"
        else:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        where = f"at the step {self.step!r}" if self.step else "before its first step"
        return f"the setup child {how} {where}, before {before}"

    def read_to_end(self, detach: bool = False, hooks=None) -> int:
        """After "go": read until EOF (PID 1 ran execve, or died); the PID of PID 1. "hooks"
        (OCI create, before pivot_root): PID 1 waits while `hooks` runs the runtime's."""
        while (line := self.next_line()):
            kind, _, rest = line.partition(b" ")
            if kind == b"hooks":
                while b"pid" not in self.said and (line := self.next_line()):   # (said before,
                    self.said.setdefault(*line.partition(b" ")[::2])            # as a rule)
                hooks(int(self.said.get(b"pid", 0)))
                continue
            self.said.setdefault(kind, rest)
        _, child_status = os.waitpid(self.child, 0)         # the setup child is done
        pid = int(self.said.get(b"pid", 0))
        error = self.said.get(b"err")
        if error is None and b"exec" in self.said and detach:   # execve failed: in the foreground
            status, error = self.said[b"exec"].split(b" ", 1)   # PID 1 told your terminal, and wait()
            self.reap(pid)                                  # returns its 127/126; run -d has no
            self.fail(b"err " + error, "", int(status))     # terminal: say it now
        if error is not None or not pid:
            self.reap(pid)
            self.fail(b"err " + error if error else b"",
                      self.died(child_status, "it started the container"))
        return pid

    @staticmethod
    def reap(pid: int) -> None:
        if pid:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:                       # not ours (OCI: no subreaper)
                pass


class HookAnswer:
    """OCI create, parent: PID 1 said "hooks" (its mounts are made, pivot_root is next). Run the
    prestart/createRuntime hooks here, in the runtime's namespaces, then send PID 1 the state
    JSON for its own hooks; if one fails, close the pipe instead: PID 1 reads EOF and exits."""

    def __init__(self, ctx: Context, go_w: int):
        self.ctx, self.go_w = ctx, go_w

    def __call__(self, pid: int) -> None:
        self.ctx.pid = pid                                  # so a failure kills it
        state = self.ctx.hooks(pid)
        os.write(self.go_w, json.dumps(state).encode() + b"\n")

    def close(self) -> None:
        if self.go_w is not None:
            os.close(self.go_w)
            self.go_w = None


def parents_half(report: Report, go_w: int, word: bytes, step, *args) -> None:
    """Do the parent's part while the setup child waits, then send it `word`; if the part
    fails, close the pipe instead: the child reads EOF and gives up. If the child failed
    first (joining its cgroup, say), its error is the cause of ours: that one is raised."""
    try:
        step(*args)
    except BaseException:
        os.close(go_w)
        _, status = os.waitpid(report.child, 0)
        while (said := report.next_line()):                 # (it keeps the step it was at)
            if said.startswith(b"err "):
                report.fail(said, "")
        # Killed meanwhile (a SIGKILL, the OOM killer)? Then its death is the cause, not what
        # it left us (its netns gone: ENOENT).
        if os.WIFSIGNALED(status):
            raise StartError(report.died(status, "it started the container")) from None
        raise
    try:
        os.write(go_w, word)
    except BrokenPipeError:         # the child failed meanwhile (joining the cgroup): its "err"
        pass                        # line is still in the message pipe, read_to_end reports it


class forward_signals:
    """Pass SIGINT/SIGTERM/… on to PID 1, as `docker run` does (its sig-proxy).

    Installed before the fork, so a signal that arrives while the container is starting is
    kept and delivered as soon as PID 1 exists. A PID 1 without handlers ignores SIGINT and
    SIGTERM (pid_namespaces(7)); so a second Ctrl-C kills it with SIGKILL, saying why."""

    def __init__(self, ctx: Context):
        self.ctx, self.saved, self.pending, self.interrupts = ctx, {}, [], 0

    def handle(self, signum, _frame):
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts > 1:
                os.write(2, b"minicontainer: PID 1 ignores SIGINT (it has no handler); killing it\n")
                signum = signal.SIGKILL
        self.pending.append(signum)
        self.deliver()

    def deliver(self):
        while self.ctx.pid and self.pending:
            try:
                os.kill(self.ctx.pid, self.pending.pop(0))
            except ProcessLookupError:
                pass

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in FORWARDED_SIGNALS:
                self.saved[sig] = signal.signal(sig, self.handle)
        self.ctx.signals = self
        return self

    def __exit__(self, *exc):
        for sig, old in self.saved.items():
            signal.signal(sig, old)


def owner_fields() -> dict:
    """Who waits for this container: us (the CLI, or a -d container's supervisor). gc
    treats a container whose owner is gone before its exit was recorded as an orphan."""
    return {"supervisor_pid": os.getpid(), "supervisor_start": proc_start_time(os.getpid())}


def config_summary(config) -> dict:
    """The options given (none of the defaults): what `inspect` shows and `start` runs again."""
    return {k: v for k, v in asdict(config).items() if v not in (None, [], {}, False)}
