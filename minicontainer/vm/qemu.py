"""The QEMU command line of a VM, and starting that process.

What it is: one qemu-system-x86_64 process *is* the virtual machine: its memory is the guest's RAM,
one thread (TCG) or one thread per vCPU (KVM) runs the guest's CPU, and its devices are emulated in
it. Everything the VM is comes from this command line, so it is built in one place from the record;
a migration target gets the very same line plus -incoming (the two sides must describe the same
machine, or the state stream does not fit).
See: qemu-system-x86_64(1): -kernel/-initrd/-append (direct kernel boot), -blockdev, -chardev,
-serial, -qmp, -daemonize, -incoming.
Shell equivalent (what command() builds, TCG):
    qemu-system-x86_64 -name NAME -accel tcg,thread=single -m 256 -smp 1 -nodefaults -display none \\
      -bios /usr/share/qemu/qboot.rom \\
      -kernel vmlinux -initrd vm-initramfs.cpio -append "console=ttyS0 quiet acpi=off … mc.hostname=NAME" -no-reboot \\
      -blockdev driver=qcow2,node-name=disk0,file.driver=file,file.filename=disk.qcow2 \\
      -device virtio-blk-pci,drive=disk0,id=vda \\
      -chardev socket,id=console,path=run/console.sock,server=on,wait=off,logfile=console.log,logappend=on \\
      -serial chardev:console -qmp unix:run/qmp.sock,server=on,wait=off -pidfile run/qemu.pid -daemonize
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import VmError

QEMU = "qemu-system-x86_64"
# quiet: the console is the guest's, not the kernel's log; panic=-1 with -no-reboot: a panic ends QEMU.
# The rest shortens a TCG boot, where every emulated instruction counts (measured: docs/vms.md):
#   tsc=reliable no_timer_check   no timer/TSC calibration loops
#   audit=0 mitigations=off       no audit, no spectre/meltdown workarounds (the guest is ours)
#   acpi=off                      no ACPI tables to interpret (~1.5 s of CPU under TCG); `vm stop`
#                                 then presses Ctrl-Alt-Del instead of the ACPI power button
#   cryptomgr.notests             no self-tests of every crypto algorithm at boot (~1 s)
#   initcall_blacklist=…          init functions a console-and-disk guest never uses: tracing
#                                 (kprobes, tracefs), the module-signing keyring, encrypted keys, IMA
#   8250.nr_uarts=1 apparmor=0    one serial port to probe, no LSM
KERNEL_ARGS = ("console=ttyS0 quiet panic=-1 tsc=reliable no_timer_check audit=0 mitigations=off acpi=off "
               "cryptomgr.notests initcall_blacklist=init_kprobe_trace,load_system_certificate_list,"
               "init_encrypted,trace_eval_init,tracer_init_tracefs,crypto_kdf108_init,init_ima 8250.nr_uarts=1 "
               "apparmor=0")
# qboot: a minimal firmware that only sets up PCI and jumps to the kernel (SeaBIOS, the default,
# does a full PC BIOS POST first: ~0.25 s more of CPU under TCG). Shipped with qemu-system-data.
QBOOT = Path("/usr/share/qemu/qboot.rom")
SOCKET_PATH_MAX = 107          # sun_path holds 108 bytes with the terminating NUL (man 7 unix)


def find_qemu() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise VmError(f"{QEMU} is not installed: apt-get install qemu-system-x86 (scripts/setup.sh --test)")
    return path


def command(*, name: str, accel_args: list[str], memory_mb: int, kernel: Path, initramfs: Path,
            disk: Path, run_dir: Path, console_log: Path, incoming: str = "") -> list[str]:
    for sock in ("qmp.sock", "console.sock"):
        if len(str(run_dir / sock)) > SOCKET_PATH_MAX:
            raise VmError(f"{run_dir / sock} is longer than a unix socket path may be "
                          f"({SOCKET_PATH_MAX} bytes): use a shorter --root or VM name")
    args = [find_qemu(), "-name", name, *accel_args, "-m", str(memory_mb), "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            *(["-bios", str(QBOOT)] if QBOOT.is_file() else []),
            # Direct kernel boot: no firmware menu, no bootloader; the initramfs mounts /dev/vda.
            "-kernel", str(kernel), "-initrd", str(initramfs),
            # The VM's name reaches its init on the command line: one cached disk serves every VM.
            "-append", f"{KERNEL_ARGS} mc.hostname={name}",
            # The disk: the qcow2 format node on top of a file node; a backing chain opens itself.
            "-blockdev", f"driver=qcow2,node-name=disk0,file.driver=file,file.filename={disk}",
            "-device", "virtio-blk-pci,drive=disk0,id=vda",
            # The serial console: a socket for `vm console`, and every byte also in console.log.
            "-chardev", f"socket,id=console,path={run_dir}/console.sock,server=on,wait=off,"
                        f"logfile={console_log},logappend=on",
            "-serial", "chardev:console",
            "-qmp", f"unix:{run_dir}/qmp.sock,server=on,wait=off",
            "-pidfile", str(run_dir / "qemu.pid"), "-daemonize"]
    if incoming:
        args += ["-incoming", incoming]
    return args


def launch(args: list[str], run_dir: Path) -> int:
    """Start QEMU; -daemonize returns once the sockets listen. Returns the daemon's PID."""
    result = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise VmError(f"{QEMU} did not start: {message}")
    pidfile = run_dir / "qemu.pid"
    for _ in range(100):
        try:
            return int(pidfile.read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
    raise VmError(f"{QEMU} started but wrote no {pidfile}")


def wait_gone(pid: int, timeout: float) -> bool:
    """True once process `pid` has exited (QEMU is not our child after -daemonize: poll /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
