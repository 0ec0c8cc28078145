"""Build the two files the cgroup-v2 test VM boots: an uncompressed kernel and a busybox initramfs.

What it is: the kernel comes from a Debian ``linux-image-*-amd64`` package that prepare.sh
downloaded and unpacked with ``dpkg-deb -x`` (never installed). This script
  1. pulls the compressed kernel out of the bzImage (``vmlinuz``) and decompresses it to ``vmlinux``:
     QEMU without KVM (TCG) boots it faster than the bzImage, whose boot stub would decompress it
     inside the emulated CPU, 15-50x slower than here;
  2. writes ``initramfs.cpio``: a static busybox, the kernel modules the guest needs (virtio, 9p,
     overlayfs, virtio-serial, veth, bridge), a file naming them in load order, and ``/init``
     (tests/vm/guest_init.sh);
  3. writes ``modules/lib/modules/VERSION``: those modules and a few more (LOADABLE_MODULES) with
     depmod's index, so that lsmod, modinfo, modprobe and modprobe -r work in the guest (lab 08).
See: boot protocol in the kernel's Documentation/arch/x86/boot.rst, initramfs format in
Documentation/driver-api/early-userspace/buffer-format.rst, man 5 modules.dep, man 8 insmod.
Shell equivalent: ``scripts/extract-vmlinux vmlinuz >vmlinux`` and
``(cd root && find . | cpio -o -H newc) >initramfs.cpio`` plus ``depmod`` to find the load order.

Usage: build_boot_files.py UNPACKED_PACKAGE_DIR OUTPUT_DIR
"""
from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The generic pieces (vmlinux extraction, module order, cpio) live in the package, shared with the
# `vm` verbs (minicontainer/vm/bootfiles.py builds their disk-boot initramfs from the same package).
sys.path.insert(0, str(HERE.parents[1]))
from minicontainer.elf import is_static  # noqa: E402
from minicontainer.vm.bootfiles import (CpioWriter, builtin_modules, extract_vmlinux,  # noqa: E402
                                        index_modules, order_modules, write_atomically)

# Modules the guest loads, by name; their dependencies are added and ordered automatically.
# Add a name here (e.g. "nf_tables") when a test in the VM needs it: the guest has no modprobe.
WANTED_MODULES = [
    "virtio_pci",        # the PCI transport every virtio device below sits on
    "virtio_console",    # virtio-serial: the guest's results travel back to the host on it
    "virtio_rng",        # entropy, so nothing in the guest waits for the random pool
    "9pnet_virtio",      # 9p over virtio: the host's file system, read-only
    "9p",
    "overlay",           # a tmpfs upper layer makes the read-only host root writable in the guest
    "veth",              # container networking tests
    "bridge",
    "crc32c_generic",    # libcrc32c (needed by nf_conntrack) asks for it only as a soft dependency
    "nf_tables",         # --net bridge (the default): NAT and published ports with nftables
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_ct",
    "nft_fib_ipv4",
]

# Modules the guest does NOT load at boot, but can: lab 08 loads and unloads them with modprobe.
# macvlan: the driver of Docker's macvlan networks, a container with its own MAC on a host NIC.
LOADABLE_MODULES = ["macvlan"]

BUSYBOX = Path("/bin/busybox")


def find_kernel(unpacked: Path) -> tuple[str, Path]:
    """Return (version, vmlinuz path) of the one kernel in an unpacked linux-image package."""
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        sys.exit(f"build_boot_files: expected one boot/vmlinuz-* in {unpacked}, found {len(images)}")
    return images[0].name.removeprefix("vmlinuz-"), images[0]


def build_initramfs(modules: list[tuple[str, bytes]], init_script: bytes, busybox: bytes) -> bytes:
    cpio = CpioWriter()
    for directory in ("bin", "dev", "proc", "sys", "lower", "rw", "newroot", "modules"):
        cpio.add(directory, stat.S_IFDIR | 0o755)
    # The kernel opens /dev/console (char 5:1) for /init's stdin/stdout before /init runs.
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    cpio.add("bin/busybox", stat.S_IFREG | 0o755, busybox)
    cpio.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    cpio.add("init", stat.S_IFREG | 0o755, init_script)
    for index, (name, elf) in enumerate(modules):
        cpio.add(f"modules/{index:02d}-{name}.ko", stat.S_IFREG | 0o644, elf)
    return cpio.finish()


def write_module_tree(moddir: Path, version: str, out: Path) -> None:
    """out/lib/modules/VERSION: the modules of WANTED_MODULES and LOADABLE_MODULES (with what they
    depend on) as the package has them, its modules.builtin*, and the modules.dep, modules.alias …
    that depmod(8) writes — what modinfo and modprobe read. The guest links it to
    /lib/modules/$(uname -r) (guest_init.sh, mc_modules=): a modular kernel for lab 08, where
    modprobe and modprobe -r work for real. Only a subset: the whole package is ~4000 modules."""
    available = index_modules(moddir)
    tree = out / "lib" / "modules" / version
    shutil.rmtree(out, ignore_errors=True)
    (tree / "kernel").mkdir(parents=True)
    for name, _elf in order_modules(WANTED_MODULES + LOADABLE_MODULES, available, builtin_modules(moddir)):
        target = tree / available[name].relative_to(moddir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(available[name], target)
    for meta in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (moddir / meta).exists():
            shutil.copyfile(moddir / meta, tree / meta)
    subprocess.run([shutil.which("depmod") or "/usr/sbin/depmod", "-b", str(out), version], check=True)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    unpacked, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    version, vmlinuz = find_kernel(unpacked)
    busybox = BUSYBOX.read_bytes()
    if not is_static(busybox):
        sys.exit(f"build_boot_files: {BUSYBOX} is dynamically linked; install busybox-static")
    moddir = unpacked / "lib" / "modules" / version
    try:
        modules = order_modules(WANTED_MODULES, index_modules(moddir), builtin_modules(moddir))
    except ValueError as error:
        sys.exit(f"build_boot_files: {error}; remove it from WANTED_MODULES")
    write_atomically(outdir / "vmlinux", extract_vmlinux(vmlinuz.read_bytes()))
    shutil.copyfile(vmlinuz, outdir / "vmlinuz")
    shutil.copyfile(unpacked / "boot" / f"config-{version}", outdir / "config")
    init_script = (HERE / "guest_init.sh").read_bytes()
    write_atomically(outdir / "initramfs.cpio", build_initramfs(modules, init_script, busybox))
    write_module_tree(moddir, version, outdir / "modules")
    (outdir / "kernel-version").write_text(version + "\n")
    print(f"build_boot_files: kernel {version}, modules: {' '.join(name for name, _ in modules)}")


if __name__ == "__main__":
    main()
