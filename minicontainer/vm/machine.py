"""A VM's record and its life: create, start, stop, kill, list, inspect, console, remove.

What it is: the state of one VM lives in <state root>/vms/NAME/:
    vm.json        the record below (memory, image, the disk chain, snapshots, the running QEMU)
    disk.qcow2     the base disk; overlay-N.qcow2 files on top after external snapshots
    console.log    everything the guest wrote on its serial console, across restarts and migrations
    run-N/         one per QEMU process: qmp.sock, console.sock, qemu.pid (gone when QEMU is)
Whether a VM runs is asked of the kernel (PID + start time, like containers), never only believed.
See: qemu-system-x86_64(1); docs/vms.md. Shell equivalent: see qemu.py.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import VmError
from ..state import is_alive, proc_start_time, state_root
from . import accel, qemu
from .bootfiles import boot_files
from .disks import backing_chain, build_disk, parse_size
from .qmp import Monitor

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}")
BOOT_LINE = "mc-vm: "          # the guest init's first console line (guest_init.sh)


@dataclass
class VmRecord:
    name: str
    image: str
    memory_mb: int
    disk_size: int
    disk: str                                   # the top of the chain: what QEMU opens
    chain: list[str] = field(default_factory=list)      # every file of ours, base first
    snapshots: dict = field(default_factory=dict)       # tag → {kind, memory_mb, created, ...}
    accel: str = ""
    accel_reason: str = ""
    pid: int = 0
    pid_start: int = 0
    run_dir: str = ""
    runs: int = 0
    created: float = 0.0
    started: float = 0.0
    node: str = ""                              # the cluster node its QEMU runs on (vm/nodes.py)
    restart_on_failure: bool = False            # HA: a cold boot on a survivor when the node fails
    want_running: bool = False                  # started and not stopped on purpose (what HA restores)
    events: list = field(default_factory=list)  # HA restarts: {time, reason, message}

    @property
    def running(self) -> bool:
        return self.pid > 0 and is_alive(self.pid, self.pid_start)

    @property
    def status(self) -> str:
        return "running" if self.running else "stopped"

    @property
    def qmp_socket(self) -> Path:
        return Path(self.run_dir) / "qmp.sock"

    @property
    def console_socket(self) -> Path:
        return Path(self.run_dir) / "console.sock"


class VmStore:
    """<state root>/vms: one directory per VM; verbs on one VM hold its lock."""

    def __init__(self, root=None):
        self.dir = state_root(root) / "vms"

    def vm_dir(self, name: str) -> Path:
        return self.dir / name

    def load(self, name: str) -> VmRecord:
        if not NAME_RE.fullmatch(name):
            raise VmError(f"no VM named {name!r} (minicontainer vm ls lists them)")
        try:
            data = json.loads((self.vm_dir(name) / "vm.json").read_text())
        except FileNotFoundError:
            raise VmError(f"no VM named {name!r} (minicontainer vm ls lists them)") from None
        return VmRecord(**data)

    def save(self, rec: VmRecord) -> None:
        path = self.vm_dir(rec.name) / "vm.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec), indent=1))
        os.replace(tmp, path)

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.dir.glob("*/vm.json"))

    @contextmanager
    def locked(self, name: str):
        """Hold the VM's lock (flock on its .lock file) and yield its record."""
        self.load(name)
        with open(self.vm_dir(name) / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self.load(name)


def create(store: VmStore, name: str, *, memory_mb: int = 256, disk: str = "1G",
           image: str = "busybox", node: str = "", restart_on_failure: bool = False) -> VmRecord:
    """Build the disk (qcow2 from the image) and write the record; the VM is not started.
    `node`: a cluster node to run on; `restart_on_failure`: HA (vm/ha.py)."""
    if not NAME_RE.fullmatch(name):
        raise VmError(f"invalid VM name {name!r}: up to 32 letters, digits, '_', '.', '-'")
    if not 16 <= memory_mb <= 65536:
        raise VmError(f"invalid --memory {memory_mb}: give MiB between 16 and 65536")
    if restart_on_failure and not node:
        raise VmError("--restart-on-failure restarts a VM on another cluster node: give --node NAME too "
                      "(`minicontainer node ls`)")
    if node:
        from .nodes import check_node
        check_node(store.dir.parent, node, "--node")
    size = parse_size(disk, what="--disk")
    boot_files()                                # fail before building anything without a kernel
    qemu.find_qemu()
    vm_dir = store.vm_dir(name)
    store.dir.mkdir(parents=True, exist_ok=True)
    try:
        vm_dir.mkdir()
    except FileExistsError:
        raise VmError(f"a VM named {name!r} exists already: pick another name or `vm rm` it") from None
    try:
        base = vm_dir / "disk.qcow2"
        build_disk(image, size, base)
        rec = VmRecord(name=name, image=image, memory_mb=memory_mb, disk_size=size, disk=str(base),
                       chain=[str(base)], created=time.time(), node=node,
                       restart_on_failure=restart_on_failure)
        store.save(rec)
        return rec
    except BaseException:
        shutil.rmtree(vm_dir, ignore_errors=True)        # nothing half-created stays
        raise


def new_run_dir(store: VmStore, rec: VmRecord) -> Path:
    rec.runs += 1
    run_dir = store.vm_dir(rec.name) / f"run-{rec.runs}"
    drop_run_dir(run_dir)
    run_dir.mkdir()
    return run_dir


def drop_run_dir(run_dir) -> None:
    """A QEMU that is gone: its node cgroup (if it ran on a node), sockets and pidfile."""
    from .nodes import leave_cgroup
    leave_cgroup(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)


def spawn(store: VmStore, rec: VmRecord, *, incoming: str = "", prefix: list[str] = (),
          cgroup_parent: str = "") -> tuple[int, Path, accel.Choice]:
    """Start one QEMU for this record (a migration target when `incoming` is set), through
    `prefix`: `unshare --net` (a network namespace of its own, living as long as QEMU does) or
    `nsenter --net=…` (a cluster node's, vm/nodes.py), and into a group below `cgroup_parent`
    (the node's)."""
    kernel, initramfs = boot_files()
    choice = accel.choose()
    run_dir = new_run_dir(store, rec)
    args = qemu.command(name=rec.name, accel_args=choice.qemu_args(), memory_mb=rec.memory_mb,
                        kernel=kernel, initramfs=initramfs, disk=Path(rec.disk), run_dir=run_dir,
                        console_log=store.vm_dir(rec.name) / "console.log", incoming=incoming)
    pid = 0
    try:
        pid = qemu.launch([*prefix, *args], run_dir)
        if cgroup_parent:
            from .nodes import join_cgroup
            join_cgroup(run_dir, cgroup_parent, f"vm-{rec.name}-{rec.runs}", pid)
    except BaseException:
        if pid:
            qemu.kill(pid)
            qemu.wait_gone(pid, 10)
        drop_run_dir(run_dir)
        raise
    return pid, run_dir, choice


def start(store: VmStore, name: str) -> VmRecord:
    with store.locked(name) as rec:
        if rec.running:
            raise VmError(f"VM {name} is running already (PID {rec.pid})")
        return boot(store, rec)


def boot(store: VmStore, rec: VmRecord) -> VmRecord:
    """Start QEMU for a locked, stopped record: here, or in its cluster node's network namespace."""
    prefix, group = [], ""
    if rec.node:
        from .nodes import check_node, in_node, node_cgroup
        node = check_node(store.dir.parent, rec.node, f"VM {rec.name}'s node")
        prefix, group = in_node(node), node_cgroup(node)
    forget_run(rec)
    pid, run_dir, choice = spawn(store, rec, prefix=prefix, cgroup_parent=group)
    rec.pid, rec.pid_start, rec.run_dir = pid, proc_start_time(pid), str(run_dir)
    rec.accel, rec.accel_reason, rec.started = choice.accel, choice.reason, time.time()
    rec.want_running = True
    store.save(rec)
    return rec


def forget_run(rec: VmRecord) -> None:
    """The run directory of a QEMU that is gone (sockets, pidfile) goes too."""
    if rec.run_dir and not rec.running:
        drop_run_dir(rec.run_dir)
        rec.pid = rec.pid_start = 0
        rec.run_dir = ""


def require_running(rec: VmRecord) -> None:
    if not rec.running:
        raise VmError(f"VM {rec.name} is not running: `minicontainer vm start {rec.name}` first")


CTRL_ALT_DEL = [{"type": "qcode", "data": key} for key in ("ctrl", "alt", "delete")]


def stop(store: VmStore, name: str, *, timeout: float = 10.0) -> VmRecord:
    """Ctrl-Alt-Del on the VM's keyboard: the guest's init syncs and reboots, and QEMU (-no-reboot)
    exits; after `timeout` s, quit. (The guests boot with acpi=off, so there is no ACPI power
    button: it cost more boot time than anything else we could drop, see qemu.KERNEL_ARGS.)"""
    with store.locked(name) as rec:
        if rec.running:
            with Monitor(rec.qmp_socket) as qmp:
                qmp.cmd("send-key", keys=CTRL_ALT_DEL)
                if not qemu.wait_gone(rec.pid, timeout):
                    qmp.quit()
            qemu.wait_gone(rec.pid, 10) or qemu.kill(rec.pid)
            qemu.wait_gone(rec.pid, 5)
        forget_run(rec)
        rec.want_running = False                # stopped on purpose: HA leaves it off
        store.save(rec)
        return rec


def kill(store: VmStore, name: str) -> VmRecord:
    """SIGKILL to QEMU: the VM's power cord. The disk keeps what the guest had synced."""
    with store.locked(name) as rec:
        if rec.running:
            qemu.kill(rec.pid)
            qemu.wait_gone(rec.pid, 10)
        forget_run(rec)
        rec.want_running = False
        store.save(rec)
        return rec


def remove(store: VmStore, name: str, *, force: bool = False) -> None:
    """Delete the VM: its QEMU (with force), sockets, disks, overlays, console log."""
    with store.locked(name) as rec:
        if rec.running and not force:
            raise VmError(f"VM {name} is running: stop it first or use `vm rm -f`")
        if rec.running:
            qemu.kill(rec.pid)
            qemu.wait_gone(rec.pid, 10)
        if rec.run_dir:
            drop_run_dir(rec.run_dir)           # (its node cgroup; the rest goes below)
        gone = store.dir / f".removing-{name}-{os.getpid()}"
        os.rename(store.vm_dir(name), gone)
    for path in rec.chain:                     # a storage-migrated disk lives elsewhere
        if not Path(path).is_relative_to(store.vm_dir(name)):
            Path(path).unlink(missing_ok=True)
    shutil.rmtree(gone, ignore_errors=True)


def inspect(store: VmStore, name: str) -> dict:
    rec = store.load(name)
    info = asdict(rec)
    info["status"] = rec.status
    info["chain"] = [{"file": i["filename"], "format": i["format"], "virtual_size": i["virtual-size"],
                      "actual_size": i.get("actual-size", 0),
                      "backing_file": i.get("backing-filename", "")} for i in backing_chain(Path(rec.disk))]
    if rec.running:
        with Monitor(rec.qmp_socket) as qmp:
            info["qemu_status"] = qmp.cmd("query-status")["status"]
    return info


def list_vms(store: VmStore) -> list[VmRecord]:
    return [store.load(n) for n in store.names()]


def console_log(store: VmStore, name: str) -> Path:
    store.load(name)
    return store.vm_dir(name) / "console.log"


def wait_console(store: VmStore, name: str, pattern: str, *, after: int = 0, timeout: float = 60.0) -> re.Match:
    """Wait until the console log (from byte `after` on) matches `pattern`; the match."""
    path, regex = console_log(store, name), re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = path.read_bytes()[after:].decode(errors="replace")
        except FileNotFoundError:
            text = ""
        match = regex.search(text)
        if match:
            return match
        if time.monotonic() > deadline:
            raise VmError(f"VM {name}: no {pattern!r} on its console within {timeout:.0f} s")
        time.sleep(0.05)


def update(store: VmStore, name: str, *, memory_mb: int | None = None, node: str | None = None) -> VmRecord:
    """Change a stopped VM's memory size (QEMU's -m is fixed while it runs), or the cluster node
    it starts on ("localhost": this machine, off the cluster — e.g. after `cluster rm`)."""
    if memory_mb is None and node is None:
        raise VmError("nothing to change: give --memory M or --node NODE")
    if memory_mb is not None and not 16 <= memory_mb <= 65536:
        raise VmError(f"invalid --memory {memory_mb}: give MiB between 16 and 65536")
    if node and node != "localhost":
        from .nodes import check_node
        check_node(store.dir.parent, node, "--node")
    with store.locked(name) as rec:
        if rec.running:
            raise VmError(f"VM {name} is running: stop it before changing its "
                          f"{'memory' if memory_mb is not None else 'node (or `vm migrate` it live)'}")
        if memory_mb is not None:
            rec.memory_mb = memory_mb
        if node is not None:
            rec.node = "" if node == "localhost" else node
            rec.restart_on_failure = rec.restart_on_failure and bool(rec.node)
        store.save(rec)
        return rec


DETACH = b"\x1d"            # Ctrl-], as telnet and virsh console use


def attach_console(store: VmStore, name: str, *, stdin: int = 0, stdout: int = 1, quiet_after_eof: float = 1.0) -> None:
    """Relay the terminal to the guest's serial console until Ctrl-] (or, from a pipe, until
    the input ends and the guest has been quiet for `quiet_after_eof` seconds)."""
    import select
    import socket
    import termios
    import tty
    rec = store.load(name)
    require_running(rec)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(rec.console_socket))
    except OSError as e:
        raise VmError(f"cannot attach to {rec.console_socket}: {e.strerror}") from None
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    if saved:
        tty.setraw(stdin)
    inputs = [sock, stdin]
    try:
        while True:
            ready, _, _ = select.select(inputs, [], [], None if stdin in inputs else quiet_after_eof)
            if not ready:
                return                                   # the input ended, the guest went quiet
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return                               # QEMU went away (stop, migration)
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 4096)
                if not data or (saved and DETACH in data):
                    if saved:
                        return
                    inputs.remove(stdin)
                    continue
                sock.sendall(data.replace(b"\n", b"\r") if not saved else data)
    finally:
        if saved:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sock.close()
