"""The OCI runtime's operations that run the run sequence (runtime.md "Operations"):

    create   config.json → spec; cgroup; runtime.launch(): PID 1 set up, blocked on exec.fifo
    exec     a new process in the container's namespaces and cgroup: the same launch(), with
             every namespace joined by path instead of created
    (start, kill, delete, pause, ps: control.py; state: state.py)

Who waits for PID 1? `create` does not make itself a subreaper: its setup child exits and PID 1
is adopted by the caller's subreaper — conmon, containerd-shim — which reaps it and reports the
exit. `run` (create + start + wait) is the caller itself, so it is a subreaper, as `minicontainer
run` is.
"""
from __future__ import annotations

import os
import socket
import time

from .. import runtime
from ..cgroups import Limits, create_cgroup
from ..cgroups.limits import ALLOWED_DEVICES
from ..errors import ConfigError, ContainerError
from ..explain import Explainer
from ..security import policy_from_spec
from ..spec import NAMESPACE_TYPES, OCI_VERSION, Namespace, Spec
from ..procfs import proc_start_time
from ..tty import Console
from .config import load_bundle
from .control import destroy, state_cgroup
from .state import OciState

# The hooks PID 1 waits for before pivot_root (startContainer needs the state JSON sent then)
CREATE_HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer")
DEFAULT_CGROUP_PARENT = os.environ.get("MINICONTAINER_OCI_CGROUP_PARENT") or "minicontainer-oci"
EXPLAIN_ENV = "MINICONTAINER_OCI_EXPLAIN"          # 1: narrate on stderr; a path: into that file
EXPLAIN_ANNOTATION = "org.minicontainer.explain"    # the same, per container (podman --annotation)


def create(root: str, container_id: str, bundle: str = ".", pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False, preserve_fds: int = 0,
           subreaper: bool = False) -> runtime.Context:
    """Set the container up to the last step before execve; PID 1 then waits for `start`."""
    spec, _ = load_bundle(bundle)
    limits = limits_from_resources(spec.resources, spec.devices)   # every value checked first
    policy = policy_from_spec(spec)                         # the seccomp filter is compiled here
    if spec.process.terminal and not console_socket:
        raise ConfigError("process.terminal is true: give --console-socket (the caller's unix socket "
                          "that receives the terminal's master)")
    parent, name = cgroup_location(spec.cgroups_path, container_id)
    state = OciState(root, container_id).create()
    if spec.namespace("mount") is None:
        os.write(2, b"minicontainer-oci: warning: no mount namespace: the container's mounts are made "
                    b"in yours (under root.path); delete unmounts them\n")
    ctx = runtime.Context(None, None, make_explainer(spec), spec=spec, policy=policy, subreaper=subreaper,
                          start_fifo=os.open(state.fifo, os.O_RDWR | os.O_CLOEXEC), no_pivot=no_pivot,
                          started_fifo=os.open(state.started_fifo, os.O_RDWR | os.O_CLOEXEC),
                          keep_fds=tuple(range(3 + preserve_fds)))
    if any(spec.hooks.get(kind) for kind in CREATE_HOOKS):
        ctx.hooks = lambda pid: run_runtime_hooks(spec, state, pid, ctx.explain)
    try:
        state.data = {"ociVersion": OCI_VERSION, "bundle": os.path.abspath(bundle),
                      "annotations": spec.annotations,
                      "created": time.time(), "hooks": spec.hooks, "rootfs": spec.root_path,
                      "cgroup": {"parent": parent, "name": name, "devices": bool(limits.devices)},
                      "mounts_in_caller_ns": spec.namespace("mount") is None,
                      "owner": os.geteuid()}
        state.save()                                        # recorded before the cgroup exists
        ctx.cgroup = create_cgroup(name, limits, explain=ctx.explain.callback(), parent=parent,
                                   devices=bool(limits.devices))
        for warning in ctx.cgroup.warnings:
            os.write(2, f"minicontainer-oci: warning: {warning}\n".encode())
        if console_socket:
            ctx.console = SocketConsole(console_socket)
        runtime.launch(ctx)                                 # (the create hooks run in here)
        state.data.update(pid=ctx.pid, pid_start=proc_start_time(ctx.pid))
        state.save()
        if pid_file:
            write_pid_file(pid_file, ctx.pid)
    except BaseException:
        destroy(ctx.pid, ctx.cgroup, state)                 # nothing is left behind
        raise
    finally:
        os.close(ctx.start_fifo), os.close(ctx.started_fifo)   # PID 1 has its own copies
        if ctx.console is not None:
            ctx.console.close()
    return ctx


def run_runtime_hooks(spec: Spec, state: OciState, pid: int, explain: Explainer) -> dict:
    """PID 1 waits before pivot_root: record its PID, run prestart and createRuntime here, in
    the runtime's namespaces; the state JSON returned goes to PID 1 for its own hooks."""
    state.data.update(pid=pid, pid_start=proc_start_time(pid))
    state.save()                                            # `state ID` in a hook: created, PID
    oci_state = state.oci_state()                           # (the environment exists: step 2 is
                                                            # done, as crun and the test suite say)
    from . import hooks
    explain.who = "minicontainer-oci"
    hooks.run(spec.hooks, "createRuntime", oci_state, also=("prestart",), explain=explain)
    return oci_state


def exec_process(root: str, container_id: str, process, detach: bool = False, pid_file: str | None = None,
                 console_socket: str | None = None, preserve_fds: int = 0) -> int:
    """A new process in a running container: every namespace of its PID 1 joined by path."""
    state = OciState.load(root, container_id)
    if state.status() not in ("running", "created"):
        raise ContainerError(f"container {container_id!r} is {state.status()}: exec needs a running container")
    spec, _ = load_bundle(state.data["bundle"])
    spec.process = process
    spec.namespaces = joined_namespaces(state.pid, spec)
    spec.mounts, spec.devices, spec.sysctl = [], [], {}
    if process.terminal and not console_socket:
        raise ConfigError("--tty needs --console-socket")
    ctx = runtime.Context(None, None, make_explainer(spec), spec=spec, policy=policy_from_spec(spec, masked=False),
                          subreaper=not detach, joining=True, cgroup=state_cgroup(state),
                          keep_fds=tuple(range(3 + preserve_fds)))
    if console_socket:
        ctx.console = SocketConsole(console_socket)
    try:
        runtime.launch(ctx)
    finally:
        if ctx.console is not None:
            ctx.console.close()
    if pid_file:
        write_pid_file(pid_file, ctx.pid)
    if detach:
        return 0
    return runtime.wait_for(ctx.pid)


def joined_namespaces(pid: int, spec: Spec) -> list:
    """Each namespace the container has of its own, as /proc/PID/ns/… to join (the container's
    spec lists them; those it shares with the host stay the host's)."""
    spaces = []
    for ns in spec.namespaces:
        spaces.append(Namespace(ns.type, f"/proc/{pid}/ns/{NAMESPACE_TYPES[ns.type][1]}"))
    return spaces


# ── helpers ───────────────────────────────────────────────────────────────────────────────

def cgroup_location(path: str, container_id: str) -> tuple[str, str]:
    """linux.cgroupsPath → (parent, name) below each hierarchy's root. Empty: minicontainer-oci/ID.
    Relative paths are taken from the root too (the spec lets the runtime choose)."""
    if not path:
        return DEFAULT_CGROUP_PARENT, container_id
    if ":" in path:
        raise ConfigError(f"linux.cgroupsPath {path!r} is systemd's slice:prefix:name form: "
                          "minicontainer-oci manages cgroups itself (podman: --cgroup-manager cgroupfs)")
    parts = [p for p in path.split("/") if p]
    if not parts or ".." in parts:
        raise ConfigError(f"linux.cgroupsPath {path!r}: give a path such as /mygroup/{container_id}")
    return "/".join(parts[:-1]), parts[-1]


def limits_from_resources(r: dict, devices=()) -> Limits:
    """linux.resources → cgroups.Limits (memory, cpu, pids, devices); each value checked."""
    def number(section: dict, key: str, where: str, signed: bool = False):
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not (signed and value == -1)):
            raise ConfigError(f"config.json: linux.resources.{where}.{key} must be a number, not {value!r}")
        return value
    memory, cpu, pids = (r.get(k) or {} for k in ("memory", "cpu", "pids"))
    for key, section in (("memory", memory), ("cpu", cpu), ("pids", pids)):
        if not isinstance(section, dict):
            raise ConfigError(f"config.json: linux.resources.{key} must be an object")
    swap = number(memory, "swap", "memory", signed=True)
    pids_limit = number(pids, "limit", "pids", signed=True)
    return Limits(memory=number(memory, "limit", "memory", signed=True) if memory.get("limit", -1) != -1 else None,
                  memory_swap=swap, memory_reservation=number(memory, "reservation", "memory"),
                  pids_limit=None if pids_limit in (None, 0) else (-1 if pids_limit < 0 else pids_limit),
                  cpu_shares=number(cpu, "shares", "cpu"), cpu_period=number(cpu, "period", "cpu"),
                  cpu_quota_us=number(cpu, "quota", "cpu", signed=True),
                  cpuset_cpus=cpu.get("cpus") or None, cpuset_mems=cpu.get("mems") or None,
                  devices=device_rules(r.get("devices") or [], devices))




def device_rules(entries, devices=()) -> tuple:
    """linux.resources.devices in order; then, as runc does, allow each of linux.devices and the
    defaults (only when there are rules at all: no rule leaves the parent's allow-all)."""
    rules = []
    for i, d in enumerate(entries):
        where = f"linux.resources.devices[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("allow"), bool):
            raise ConfigError(f"config.json: {where} needs allow: true|false")
        kind, access = d.get("type") or "a", d.get("access") or "rwm"
        if kind not in ("a", "c", "b") or not access or set(access) - set("rwm"):
            raise ConfigError(f"config.json: {where}: type a|c|b and access of r, w, m")
        major, minor = d.get("major", -1), d.get("minor", -1)
        rules.append((d["allow"], kind, -1 if major is None else major, -1 if minor is None else minor, access))
    if not rules:
        return ()
    own = [(True, "c" if d.type in ("c", "u") else d.type, d.major, d.minor, "rwm")
           for d in devices if d.type != "p"]
    return tuple(rules + own) + ALLOWED_DEVICES


def write_pid_file(path: str, pid: int) -> None:
    """Written whole, then renamed: a reader never sees half a number (conmon reads it at once)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def make_explainer(spec: Spec) -> Explainer:
    """--explain for the OCI path: MINICONTAINER_OCI_EXPLAIN=1 (stderr) or =FILE, or the
    annotation org.minicontainer.explain — so a student sees what podman asked for."""
    where = spec.annotations.get(EXPLAIN_ANNOTATION) or os.environ.get(EXPLAIN_ENV)
    if not where or where in ("0", "false"):
        return Explainer(False)
    if where in ("1", "true", "stderr"):
        return Explainer(True)
    try:
        fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot open the explain file {where}: {e.strerror}") from None
    os.set_inheritable(fd, True)                # the children narrate into it too
    return Explainer(True, fd=fd)


class SocketConsole(Console):
    """process.terminal with --console-socket: PID 1 makes the pty (tty.Console.attach) and
    sends the master over the caller's unix socket, which conmon or containerd-shim listens on."""

    def __init__(self, path: str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise ConfigError(f"cannot connect to --console-socket {path}: {e.strerror}") from None
        self.interactive, self.size, self.master = True, (24, 80), -1
        self.parent_end = self.child_end = sock

    def close(self) -> None:
        self.child_end.close()


__all__ = ["create", "exec_process"]
