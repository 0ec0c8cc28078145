"""Demo: boot a tiny VM with QEMU, start a container, and compare (labs/09).

The VM is the project's cgroup-v2 test VM (tests/vm/): a Debian kernel and a busybox initramfs,
booted by qemu-system-x86_64 (KVM where it works, else TCG: the CPU emulated in software). Its
init mounts the host's / read-only over virtio-9p, runs a one-line job and powers off.

Shell equivalent:
    time qemu-system-x86_64 -kernel vmlinux -initrd initramfs.cpio -append "… mc_job=job.sh" …
    time minicontainer run --rm busybox echo hello
The lecture: *Unterschied VM / Container — schlanker als eine VM, startet innert Sekundenbruchteilen*.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

TITLE = "VM vs. container: what does it cost to start one?"
SUMMARY = "boot a tiny VM with QEMU, start a container, compare the times"

REPO = Path(__file__).resolve().parents[2]
JOB = 'echo "hello from the VM: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPU"\n'


def load_vmrunner():
    path = REPO / "tests" / "vm" / "vmrunner.py"
    if not path.is_file():
        from .narrate import DemoError
        raise DemoError(f"{path} is missing: the VM demo needs a minicontainer checkout")
    spec = importlib.util.spec_from_file_location("mc_vmrunner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mc_vmrunner", module)
    spec.loader.exec_module(module)
    return module


def boot_vm(vmrunner, memory_mb: int = 512) -> dict:
    """Boot once with a job that prints one line; return timings, the guest's line, the peak RSS."""
    from .narrate import DemoError
    try:
        boot = vmrunner.prepare_boot_files()
    except RuntimeError as e:
        raise DemoError(f"cannot prepare the VM's kernel and initramfs: {str(e).splitlines()[0]}") from None
    run_dir = vmrunner.new_run_dir()
    (run_dir / "job.sh").write_text(JOB)
    accel = vmrunner.choose_accel()
    command = vmrunner.qemu_command(boot, run_dir, accel=accel, cpus=1, memory_mb=memory_mb)
    out = run_dir / "out.log"
    start = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first_line = answer = None
    rss = 0
    try:
        while qemu.poll() is None and time.monotonic() - start < 300:
            text = out.read_text(errors="replace") if out.exists() else ""
            if first_line is None and text:
                first_line = time.monotonic() - start
            if answer is None and "hello from the VM" in text:
                answer = time.monotonic() - start
            rss = max(rss, vm_rss_kb(qemu.pid))
            time.sleep(0.05)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    total = time.monotonic() - start
    text = out.read_text(errors="replace") if out.exists() else ""
    if answer is None and "hello from the VM" in text:      # qemu was gone before we looked again
        answer = total
    shutil.rmtree(run_dir, ignore_errors=True)
    line = next((l for l in text.splitlines() if l.startswith("hello from the VM")), "")
    if not line:
        raise DemoError(f"the VM did not answer within {total:.0f} s (accel={accel})")
    return {"accel": accel, "first_line": first_line, "answer": answer, "total": total, "line": line,
            "rss_mb": rss / 1024, "memory_mb": memory_mb}


def vm_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def run(demo) -> None:
    from .narrate import DemoError
    demo.need("qemu-system-x86_64")
    demo.ensure_image("busybox")
    vmrunner = load_vmrunner()
    demo.say("""A virtual machine emulates a whole computer: the firmware starts, a kernel boots,
        probes its (virtual) devices, mounts a root file system and starts init. A container
        starts one process on the kernel that is already running.""")

    demo.step("Boot a tiny VM (a Debian kernel + a busybox initramfs) that prints one line")
    demo.show("qemu-system-x86_64 -kernel vmlinux -initrd initramfs.cpio -m 512 -append '… mc_job=job.sh' …")
    vm = boot_vm(vmrunner)
    demo.print(vm["line"])
    demo.print(f"accel={vm['accel']}" + (" (KVM: the CPU runs guest code natively)" if vm["accel"] == "kvm" else
                                         " (no usable KVM here: QEMU emulates every instruction)"))
    demo.print(f"guest's first line after {vm['answer']:.1f} s; qemu gone after {vm['total']:.1f} s; "
               f"qemu used up to {vm['rss_mb']:.0f} MB of host memory ({vm['memory_mb']} MB given to the guest)")

    demo.step("Start a container that prints one line")
    start = time.monotonic()
    ran = demo.mc("run", "--rm", "--net", "none", "busybox", "sh", "-c",
                  'echo "hello from a container: kernel $(uname -r)"')
    container = time.monotonic() - start
    if ran.returncode != 0:
        raise DemoError(f"the container failed (exit {ran.returncode}): {ran.stderr.strip()}")
    demo.print(f"done after {container:.2f} s, including the Python start-up of the minicontainer command")

    demo.step("Side by side")
    demo.columns("VM (QEMU)", [f"start → first line: {vm['answer']:.1f} s",
                               f"its own kernel: {vm['line'].split('kernel ')[1].split(',')[0]}",
                               f"host memory: ~{vm['rss_mb']:.0f} MB", "boots firmware, kernel, init"],
                 "container", [f"start → first line: {container:.2f} s",
                               f"the host's kernel: {ran.stdout.split('kernel ')[-1].strip()}",
                               "host memory: a few MB (its processes)", "fork, unshare, mount, execve"])
    demo.say(f"""About {vm['answer'] / container:.0f}× here. The VM's price buys a separate kernel —
        stronger isolation, any operating system. The container's price is the shared kernel: the
        kernel version above is the host's. Lab 09 measures this properly, several times.""")
