"""Which accelerator runs the guest's CPU: KVM (the kernel's hypervisor) or TCG (QEMU's emulator).

What it is: with KVM, QEMU hands the guest's instructions to the CPU itself (Intel VT-x / AMD-V),
through /dev/kvm, which the kvm module and kvm_intel or kvm_amd create (lab 08). Without it, TCG
("tiny code generator") translates every guest instruction block into host code: 10-50x slower,
but it runs anywhere. Single-threaded TCG (thread=single) runs all vCPUs in one host thread: the
reliable choice where QEMU has to share two cores with other work.
See: qemu-system-x86_64(1) -accel, Documentation/virt/kvm/api.rst (KVM_GET_API_VERSION).
Shell equivalent: ls -l /dev/kvm; grep -cE 'vmx|svm' /proc/cpuinfo; lsmod | grep kvm
"""
from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass

KVM_GET_API_VERSION = 0xAE00        # _IO(KVMIO=0xAE, 0x00); the stable API answers 12


@dataclass
class Choice:
    accel: str          # "kvm" or "tcg"
    reason: str

    def qemu_args(self) -> list[str]:
        if self.accel == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        return ["-accel", "tcg,thread=single"]


def kvm_problem() -> str:
    """'' when /dev/kvm can boot a stock kernel, else what stands in the way."""
    if not os.path.exists("/dev/kvm"):
        return "there is no /dev/kvm (modprobe kvm_intel or kvm_amd; lab 08)"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/kvm cannot be opened: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        return f"/dev/kvm does not answer KVM_GET_API_VERSION: {e.strerror}"
    finally:
        os.close(fd)
    if version != 12:
        return f"/dev/kvm speaks KVM API {version}, not 12"
    # Some sandboxes offer a /dev/kvm without hardware virtualization behind it, which cannot boot
    # a normal kernel: the CPU flag tells (vmx: Intel VT-x, svm: AMD-V).
    with open("/proc/cpuinfo") as f:
        if not re.search(r"^flags\s*:.*\b(vmx|svm)\b", f.read(), re.M):
            return "/dev/kvm is there, but the CPU shows no vmx/svm flag: it cannot boot a stock kernel"
    return ""


def choose() -> Choice:
    """KVM where it works, else single-threaded TCG; MC_VM_ACCEL=tcg|kvm overrides."""
    wanted = os.environ.get("MC_VM_ACCEL", "")
    if wanted in ("tcg", "kvm"):
        return Choice(wanted, f"MC_VM_ACCEL={wanted}")
    problem = kvm_problem()
    if not problem:
        return Choice("kvm", "/dev/kvm works and the CPU has hardware virtualization")
    return Choice("tcg", f"{problem}; TCG emulates the CPU, single-threaded (one host thread)")
