"""Lab 09 — VM vs container: boot a tiny VM with QEMU, start containers, measure both.
One check per task (see README.md). The VM is the project's cgroup-v2 test VM (tests/vm/): its
boot files are prepared once by tests/vm/prepare.sh (a Debian kernel package, downloaded).

The checks do not judge how fast anything is: they check that the measurements are real
(a different kernel booted, the median is the median) — timings depend on the machine.
"""
from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import statistics
import sys
from pathlib import Path

import pytest

from minicontainer.api import msg

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vm_boot() -> Path:
    """The boot files (vmlinux, initramfs.cpio), prepared by tests/vm/prepare.sh if needed."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip(msg("qemu-system-x86_64 is not installed: apt-get install qemu-system-x86",
                        "qemu-system-x86_64 ist nicht installiert: apt-get install qemu-system-x86"))
    spec = importlib.util.spec_from_file_location("lab09_vmrunner", REPO / "tests" / "vm" / "vmrunner.py")
    vmrunner = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lab09_vmrunner", vmrunner)
    spec.loader.exec_module(vmrunner)
    try:
        return vmrunner.prepare_boot_files()
    except RuntimeError as e:
        pytest.fail(msg("cannot prepare the VM's boot files (bash tests/vm/prepare.sh): ",
                        "die Boot-Dateien der VM lassen sich nicht vorbereiten (bash tests/vm/prepare.sh): ")
                    + str(e).splitlines()[0], pytrace=False)


def test_vm(run_script, vm_boot):
    """vm.sh boots the VM with its own kernel and reports how long it took
    de: vm.sh bootet die VM mit ihrem eigenen Kernel und meldet, wie lange es dauerte

    Hint: qemu-system-x86_64(1), "Linux/Multiboot boot": -kernel, -initrd, -m and -append. The files are in $BOOT (ls it); the guest's init finds its job through mc_job= on the kernel command line.
    Hint 2: KERNEL=$BOOT/vmlinux INITRD=$BOOT/initramfs.cpio MEMORY=512 APPEND="console=ttyS0 panic=-1 quiet mc_job=$RUN/job.sh"
    Hinweis: qemu-system-x86_64(1), „Linux/Multiboot boot“: -kernel, -initrd, -m und -append. Die Dateien liegen in $BOOT (ls); das init des Gastes findet seinen Auftrag über mc_job= auf der Kernel-Kommandozeile.
    Hinweis 2: KERNEL=$BOOT/vmlinux INITRD=$BOOT/initramfs.cpio MEMORY=512 APPEND="console=ttyS0 panic=-1 quiet mc_job=$RUN/job.sh"
    """
    result = run_script("vm.sh", timeout=330, extra_env={"MC_VM_BOOT": str(vm_boot)})
    hello = re.search(r"^hello from the VM: kernel (\S+)$", result.stdout, re.M)
    assert hello, msg("the VM did not say hello ", "die VM hat nicht hallo gesagt ") + f"({result.describe()})"
    assert hello.group(1) != platform.release(), msg("the VM runs the host's kernel? It must boot its own",
                                                     "die VM läuft mit dem Kernel des Hosts? Sie muss ihren eigenen booten")
    seconds = re.search(r"^vm seconds: ([0-9.]+)$", result.stdout, re.M)
    assert seconds and float(seconds.group(1)) > 0, msg("no line 'vm seconds: S'", "keine Zeile 'vm seconds: S'")


def test_containers(run_script, busybox):
    """container.sh times five containers, prints their median, and the kernel they run on
    de: container.sh misst fünf Container, gibt ihren Median aus und den Kernel, auf dem sie laufen

    Hint: the median of five numbers is the third once they are sorted (sort(1) -n); uname(1) -r inside a container names the kernel it runs on.
    Hint 2: while read -r s; do …; done < "$times"; sort -n "$times" | head -n 3 | tail -n 1; minicontainer run --rm busybox uname -r
    Hinweis: der Median von fünf Zahlen ist nach dem Sortieren die dritte (sort(1) -n); uname(1) -r in einem Container nennt den Kernel, auf dem er läuft.
    Hinweis 2: while read -r s; do …; done < "$times"; sort -n "$times" | head -n 3 | tail -n 1; minicontainer run --rm busybox uname -r
    """
    result = run_script("container.sh", timeout=120)
    runs = [float(x) for x in re.findall(r"^run \d: ([0-9.]+)$", result.stdout, re.M)]
    assert len(runs) == 5, msg("expected five lines 'run N: S' ", "erwartet fünf Zeilen 'run N: S' ") + f"({result.describe()})"
    median = re.search(r"^median: ([0-9.]+)$", result.stdout, re.M)
    assert median, msg("no line 'median: S'", "keine Zeile 'median: S'")
    assert abs(float(median.group(1)) - statistics.median(runs)) < 0.0015, \
        msg(f"{median.group(1)} is not the median of {runs}", f"{median.group(1)} ist nicht der Median von {runs}")
    kernel = re.search(r"^kernel: (\S+)$", result.stdout, re.M)
    assert kernel and kernel.group(1) == platform.release(), \
        msg(f"the container's kernel should be the host's {platform.release()}",
            f"der Kernel des Containers sollte der des Hosts sein, {platform.release()}")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: compare your two kernel lines, and read "Background" on TCG and KVM.
    Hinweis: vergleiche deine beiden Kernel-Zeilen und lies „Hintergrund“ zu TCG und KVM.
    """
    answers.expect({"q1": "b", "q2": "a", "q3": "c", "q4": "b"})
