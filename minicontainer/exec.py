"""`minicontainer exec`: run one more process inside a running container.

    man 2 setns, man 7 namespaces, man 7 user_namespaces, man 1 nsenter, man 2 chroot, man 7 cgroups
    shell: nsenter --target PID --all --root --wd sh     (+ echo $$ > …/cgroup.procs)

A container is nothing but a set of namespaces, a cgroup and a root directory, all held by
its processes. To add a process, take them from PID 1 — /proc/PID/ns/* are handles to its
namespaces, /proc/PID/root is its root — and put them on, one by one:

    the CLI                     exec child (E1)                     the new process (E2)
    open /proc/PID/ns/*, root
    fork ─────────────────────▶ not dumpable (until E2's execve: nothing inside may open
                                  /proc/E2/exe, root, fd… — they are the host's)
                                join the cgroup (host's /sys/fs/cgroup: before setns(mnt))
                                setns(user, cgroup, ipc, uts, net, pid, mnt)
                                fchdir(root); chroot(".")
                                fork ──────────────────────────────▶ (in the PID namespace now)
                                wait                                 user, workdir, environment
                                                                     the container's security
                                                                     policy (capabilities,
                                                                     no_new_privs, seccomp)
         ◀──────────── exit status ─ exit with E2's status           execve(the command)

Why fork again? setns(CLONE_NEWPID), like unshare, moves only the caller's future children:
E2 gets a PID inside the container (ps there shows it), E1 never does.
Why the user namespace first? (rootless containers: a root container shares ours, and it is
skipped.) setns(2) into any other namespace needs CAP_SYS_ADMIN in the user namespace that
*owns* it — the container's. As an ordinary user we hold no capability anywhere, so
setns(cgroup) first fails with EPERM; but the creator of a user namespace (our uid) may
join it, and whoever joins one gets every capability in it. So user goes first, and then
the others are ours to join. (nsenter(1) gets there in two passes: first every namespace but
user — enough for root — then user, then those that failed.) Inside, we are root of the
container's map: in a single-id map only root exists, and -u is refused as `run` refuses it.
Why chroot after setns(mnt)? setns puts us at the root of the mount namespace — right after
pivot_root, but with --isolation chroot the namespace's root is still the host's; fchdir to
PID 1's own root and chroot(".") is right in both cases.
The masks (/proc/kcore …) are mounts: the mount namespace already has them. Everything else
of the policy is per process and is applied again, exactly as for PID 1.
"""
from __future__ import annotations

import os
import signal

from .errors import ContainerError, MinicontainerError
from .explain import Explainer
from .kernel.namespaces import NAMESPACES, setns
from .process import (exec_command, exit_status, leave_terminal, reset_signals, resolve_user,
                      set_workdir)
from .records import field, record, replace
from .security import apply as apply_security, close_fds, set_non_dumpable, verify_workdir
from .state import StateStore, is_alive, proc_start_time, state_root
from .status import container_cgroup

# user first (its capabilities let us join the rest: rootless containers only; a root
# container shares ours), mnt last — once in the container's mount namespace, the host's
# /proc and /sys/fs/cgroup are out of reach. nsenter(1)'s order, with user moved to the front.
JOIN_ORDER = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


@record
class ExecContext:
    command: list[str]
    config: object                                  # the container's ContainerConfig (+ exec's -e)
    hostname: str
    workdir: str | None
    user: str | None
    policy: object
    cgroup: object | None
    ns_fds: dict = field(default_factory=dict)      # name → open /proc/PID/ns/NAME
    root_fd: int = -1                               # open /proc/PID/root
    console: object | None = None                   # tty.Console with -t
    explain: Explainer = field(default_factory=Explainer)


def exec_in_container(ref: str, command: list[str], *, interactive: bool = False, tty: bool = False,
                      env=(), workdir: str | None = None, user: str | None = None, root=None,
                      explain: bool = False) -> int:
    """Run `command` in the running container `ref`; returns its exit status (128+N: signal N)."""
    from .supervisor import config_of
    if not command or not command[0]:
        raise ContainerError("exec needs a command to run, e.g. `minicontainer exec NAME sh`")
    store = StateStore(state_root(root))
    rec = store.find(ref)
    if rec.status == "paused":
        raise ContainerError(f"container {rec.name} is paused: unpause it first (`minicontainer unpause {rec.name}`)")
    if rec.status != "running" or not is_alive(rec.pid, rec.pid_start):
        raise ContainerError(f"container {rec.name} is not running (see `minicontainer ps -a`)")
    config = config_of(rec)
    config.env = [*config.env, *env]
    config.interactive = interactive
    config.tty = tty
    user = user if user is not None else config.user
    ctx = ExecContext(command=list(command), config=config, hostname=rec.hostname,
                      workdir=workdir or config.workdir, user=user, policy=exec_policy(config),
                      cgroup=container_cgroup(rec), explain=Explainer(explain))
    check_user_mapped(rec, user)
    open_namespaces(ctx, rec)
    if tty:
        from .tty import Console
        ctx.console = Console(interactive=interactive)
    try:
        return run_exec(ctx)
    finally:
        for fd in (*ctx.ns_fds.values(), ctx.root_fd):
            os.close(fd)


def exec_policy(config):
    """The container's security policy (security.resolve on its stored options), minus the
    masks: those are mounts, and the container's mount namespace has them already."""
    from .security import resolve
    policy = resolve(cap_add=config.cap_add, cap_drop=config.cap_drop,
                     privileged=config.privileged, security_opt=config.security_opt)
    return replace(policy, masked_paths=(), readonly_paths=())


def check_user_mapped(rec, user: str | None) -> None:
    """A rootless container's user namespace has only the ids its map names (the container's
    /proc/PID/uid_map, written when it started): with the single-id map only root exists, and
    -u refuses anything else exactly as `run` does (userns.check_user_mapped)."""
    try:
        if user is None or os.readlink(f"/proc/{rec.pid}/ns/user") == os.readlink("/proc/self/ns/user"):
            return                                  # our own user namespace: every id exists
    except OSError:
        return                                      # gone: open_namespaces says so
    from .userns import IdMapping, check_user_mapped as check, plan_id_mapping
    uid_map, gid_map = read_id_map(rec.pid, "uid_map"), read_id_map(rec.pid, "gid_map")
    if not uid_map or not gid_map or sum(r.count for r in uid_map) > 1:
        return                                      # a range (newuidmap): other users exist too
    owner, group = uid_map[0].outside, gid_map[0].outside
    why = plan_id_mapping(owner, group).why_single or \
        "it was started with the single-id map (restart it to use your new /etc/subuid range)"
    check(IdMapping(str(owner), uid_map, gid_map, False, why), user)   # the owner's reason, as run said it


def read_id_map(pid: int, name: str) -> tuple:
    """/proc/PID/uid_map (or gid_map): lines of `inside outside count`, user_namespaces(7)."""
    from .userns import IdRange
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return tuple(IdRange(*map(int, line.split())) for line in f if len(line.split()) == 3)
    except OSError as e:
        raise ContainerError(f"cannot read /proc/{pid}/{name}: {e.strerror}") from None


def open_namespaces(ctx: ExecContext, rec) -> None:
    """Open PID 1's namespaces and root, then check PID 1 is still the container's: a PID the
    kernel gave to someone else in between would have another start time."""
    pid = rec.pid
    try:
        for name in JOIN_ORDER:
            if os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"):
                ctx.ns_fds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        ctx.root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        for fd in ctx.ns_fds.values():
            os.close(fd)
        raise ContainerError(f"container {rec.name} is not running ({e.filename}: {e.strerror})") from None
    if proc_start_time(pid) != rec.pid_start:
        for fd in (*ctx.ns_fds.values(), ctx.root_fd):
            os.close(fd)
        raise ContainerError(f"container {rec.name} is not running (its PID 1 has exited)")


def run_exec(ctx: ExecContext) -> int:
    """Fork E1, learn E2's PID (for signals), relay the terminal, return E1's exit status."""
    from .runtime import run_in_child
    msg_r, msg_w = os.pipe()
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:                        # like system(3): Ctrl-C is for the process in the container
        child = os.fork()
        if child == 0:
            run_in_child(enter_container, ctx, msg_w)
        os.close(msg_w)
        target = []
        forward = {sig: signal.signal(sig, lambda s, _: target and os.kill(target[0], s))
                   for sig in FORWARDED}
        try:
            with os.fdopen(msg_r, "rb") as messages:
                lines = messages.read().splitlines()     # EOF: E2 ran execve (or failed)
            target += [int(l.split()[1]) for l in lines if l.startswith(b"pid ")]
            error = next((l[4:].decode(errors="replace") for l in lines if l.startswith(b"err ")), None)
            if error is None and ctx.console is not None and target:
                ctx.console.relay(child)
            _, status = os.waitpid(child, 0)
        finally:
            for sig, handler in forward.items():
                signal.signal(sig, handler)
        if error is not None:
            raise MinicontainerError(error)
        return exit_status(status)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def enter_container(ctx: ExecContext, msg_w: int) -> None:
    """E1: cgroup, namespaces, root; then fork E2 and wait for it."""
    ctx.explain.who = "exec child"
    set_non_dumpable(ctx.explain)           # E2 inherits it: /proc/E2/exe is the host's Python
    if ctx.cgroup is not None:
        ctx.explain.step("join the container's cgroup", "echo $$ > …/cgroup.procs",
                         "write(2) to cgroup.procs", "cgroups(7)",
                         "the new process counts against the container's limits")
        join_cgroup(ctx)
    names = [n for n in JOIN_ORDER if n in ctx.ns_fds]
    ctx.explain.step("join the container's namespaces", "nsenter --target PID " + " ".join(
                     NAMESPACES[n][1] for n in names), "setns(open(\"/proc/PID/ns/…\"), 0)",
                     "setns(2), nsenter(1)", "a namespace is joined through a handle to it; user "
                     "first (rootless), for the capabilities the others need; pid applies to our "
                     "children, so we fork once more below")
    for name in names:
        setns(ctx.ns_fds[name], NAMESPACES[name][0])
    ctx.explain.step("enter the container's root", "chroot /proc/PID/root", "fchdir(fd); chroot(\".\")",
                     "chroot(2)", "PID 1's root, whether it was made by pivot_root or chroot")
    os.fchdir(ctx.root_fd)
    os.chroot(".")
    os.chdir("/")
    pid = os.fork()
    if pid == 0:
        from .runtime import run_in_child
        run_in_child(become_command, ctx, msg_w)
    os.write(msg_w, b"pid %d\n" % pid)
    os.close(msg_w)
    for sig in (signal.SIGINT, signal.SIGQUIT, *FORWARDED):
        signal.signal(sig, signal.SIG_IGN)          # E2 gets them; E1 only reports its status
    _, status = os.waitpid(pid, 0)
    os._exit(exit_status(status))


def join_cgroup(ctx: ExecContext) -> None:
    """echo 0 > …/cgroup.procs (v1: tasks, see cgroups/base.py). As a user, the kernel allows
    the move only within the subtree delegated to us (write access to the common ancestor's
    cgroup.procs)."""
    from .errors import CgroupError
    try:
        ctx.cgroup.join()                           # E1 was just forked: one thread
    except CgroupError as e:
        if os.geteuid() == 0:
            raise
        raise ContainerError(f"{e} — a user may move a process only within the cgroup subtree "
                             "delegated to it: run exec from inside that subtree, as the container was "
                             "(systemd-run --user --scope -p Delegate=yes minicontainer exec …)") from None


def become_command(ctx: ExecContext, msg_w: int) -> None:
    """E2, inside the PID namespace: the same last steps as the container's PID 1."""
    ctx.explain.who = "exec process"
    for fd in (*ctx.ns_fds.values(), ctx.root_fd):
        os.close(fd)
    uid, gid, home = resolve_user(ctx.user)
    set_workdir(ctx.workdir or (home if ctx.user else "/"))
    verify_workdir(ctx.workdir)             # getcwd(2): really inside the container's root
    env = ctx.config.environment(ctx.hostname, home)
    if ctx.console is not None:
        ctx.console.attach(uid, gid, console=False, explain=ctx.explain)
    else:
        leave_terminal(ctx.explain)         # no -t: your terminal must not be its terminal
    reset_signals()
    close_fds(keep=(0, 1, 2), cloexec=True)
    apply_security(ctx.policy, uid=uid, gid=gid, groups=[gid], explain=ctx.explain)
    exec_command(ctx.command, env)
