"""The OCI runtime's short operations: start, kill, delete, pause/resume, ps — over the state
directory, without the run sequence (create and exec are in container.py). Kept apart so that
the calls an engine makes most often (podman: state, start, kill, delete for every container)
import only what they use.
"""
from __future__ import annotations

import os
import signal

from ..errors import ConfigError, ContainerError, MinicontainerError
from .state import OciState


def start(root: str, container_id: str) -> None:
    """created → running: one byte into exec.fifo releases PID 1; started.fifo then reaches its
    end when PID 1 runs execve (or carries the line saying why it did not); then poststart."""
    state = OciState.load(root, container_id)
    status = state.status()
    if status != "created":
        raise ContainerError(f"container {container_id!r} is {status}, not created: only a created "
                             "container can be started")
    try:
        fd = os.open(state.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        started = os.open(state.started_fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ContainerError(f"container {container_id!r} cannot be started: its PID 1 is not "
                             f"waiting ({e.strerror})") from None
    try:
        os.set_blocking(started, True)      # PID 1 holds the only writer: EOF once it has exec'd
        os.write(fd, b"0")
        os.close(fd)
        said = read_all(started)
    finally:
        os.close(started)
    os.unlink(state.fifo), os.unlink(state.started_fifo)    # from now on: running (or stopped)
    for line in said.decode(errors="replace").splitlines():
        kind, _, why = line.partition(" ")
        if kind in ("err", "exec"):         # "exec STATUS WHY": execve failed
            raise ContainerError(f"container {container_id!r} did not start: "
                                 + (why.partition(" ")[2] if kind == "exec" else why))
    try:
        run_hooks(state, "poststart",   # running: it has run execve (`true` may be gone already)
                  {**state.oci_state(), "status": "running", "pid": state.pid})
    except ContainerError as e:             # runtime.md step 9: an error, and the container stops
        os.kill(state.pid, signal.SIGKILL)
        raise ContainerError(f"{e}; the container was killed") from None


def read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    return out


def kill(root: str, container_id: str, sig: str = "SIGTERM", all_processes: bool = False) -> None:
    state = OciState.load(root, container_id)
    number = parse_signal(sig)
    if state.status() == "stopped":
        raise ContainerError(f"container {container_id!r} is stopped: there is no process to signal")
    if all_processes:
        cgroup = state_cgroup(state)
        for pid in cgroup.procs() if cgroup else [state.pid]:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass
        return
    os.kill(state.pid, number)


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Remove a stopped (or created) container; --force kills a running one first."""
    state = OciState.load(root, container_id)
    status = state.status()
    if status in ("running", "paused") and not force:
        raise ContainerError(f"container {container_id!r} is {status}: stop it first "
                             "(`kill ID KILL`) or use `delete --force`")
    before = state.oci_state()
    destroy(state.pid if state.alive() else 0, state_cgroup(state), state)
    run_hooks(state, "poststop", before, warn_only=True)


def run_hooks(state: OciState, kind: str, oci_state: dict, warn_only: bool = False) -> None:
    if (state.data.get("hooks") or {}).get(kind):          # (subprocess only when there are any)
        from . import hooks
        hooks.run(state.data["hooks"], kind, oci_state, warn_only=warn_only)


def destroy(pid: int, cgroup, state: OciState) -> None:
    """Kill PID 1 and whatever else is in the cgroup, remove the cgroup, then the state dir."""
    if cgroup is not None:
        cgroup.thaw() if state.data.get("paused") else None
        cgroup.remove()                                     # kills what is inside first
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if state.data.get("mounts_in_caller_ns"):
        unmount_below(state.data["rootfs"])
    state.remove()


def unmount_below(root: str) -> None:
    """umount -l every mount at or below `root`, deepest first (a container without a mount
    namespace of its own made them in ours)."""
    from ..kernel.mount import MNT_DETACH, umount2
    from ..procfs import mountinfo_lines, unescape
    points = [unescape(line.split()[4]) for line in mountinfo_lines("self")]
    for point in sorted({p for p in points if p == root or p.startswith(root.rstrip("/") + "/")},
                        key=lambda p: -p.count("/")):
        try:
            umount2(point, MNT_DETACH)
        except MinicontainerError:
            pass                                            # gone with its parent


def pause(root: str, container_id: str, freeze: bool = True) -> None:
    state = OciState.load(root, container_id)
    status = state.status()
    if status not in (("running",) if freeze else ("paused",)):
        raise ContainerError(f"container {container_id!r} is {status}: "
                             + ("only a running container can be paused" if freeze else "it is not paused"))
    cgroup = state_cgroup(state)
    if cgroup is None:
        raise ContainerError(f"container {container_id!r} has no cgroup to freeze")
    cgroup.freeze() if freeze else cgroup.thaw()
    state.data["paused"] = freeze
    state.save()


def processes(root: str, container_id: str) -> list[int]:
    state = OciState.load(root, container_id)
    cgroup = state_cgroup(state)
    return cgroup.procs() if cgroup else ([state.pid] if state.alive() else [])


def state_cgroup(state: OciState):
    info = state.data.get("cgroup") or {}
    if not info:
        return None
    from ..cgroups import open_cgroup
    return open_cgroup(info["name"], parent=info["parent"], devices=info.get("devices", False))


SIGNALS = {name: getattr(signal, name) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(getattr(signal, name), int)}


def parse_signal(value: str) -> int:
    """KILL, SIGKILL, 9 — as `runc kill` takes them."""
    text = str(value).strip().upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    if name in SIGNALS:
        return SIGNALS[name]
    raise ConfigError(f"invalid signal {value!r}: use a name such as TERM or SIGKILL, or a number "
                      f"from 1 to {signal.NSIG - 1}")
