"""The boot files of a QEMU guest: an uncompressed kernel and an initramfs, from a Debian kernel package.

    extract_vmlinux      bzImage (vmlinuz) -> vmlinux: TCG boots it without the decompressor stub
    order_modules        the modules a guest needs, dependencies first (what depmod computes)
    CpioWriter           the "newc" cpio format the kernel unpacks as its first root file system
    build_disk_initramfs the `vm` guests' initramfs: load virtio-blk + ext4, mount /dev/vda, switch_root
    boot_files           where the prepared kernel and initramfs are (MC_VM_CACHE/current)

Used by two callers: tests/vm/build_boot_files.py (the cgroup-v2 test stage, whose initramfs mounts the
host over 9p) and tests/vm/prepare.sh through it, which also writes the `vm` verbs' initramfs here.
A Debian ``linux-image-*-amd64`` package is downloaded and unpacked with ``dpkg-deb -x``, never installed.
See: the kernel's Documentation/arch/x86/boot.rst (bzImage header), Documentation/driver-api/
early-userspace/buffer-format.rst (initramfs), man 5 modules.dep, man 8 insmod, man 8 switch_root.
Shell equivalent: ``scripts/extract-vmlinux vmlinuz >vmlinux``; ``(cd root && find . | cpio -o -H newc)``.
"""
from __future__ import annotations

import gzip
import io
import lzma
import os
import stat
import struct
import subprocess
import zlib
from pathlib import Path

from ..errors import VmError

HERE = Path(__file__).resolve().parent
# What the `vm` guests' initramfs loads: the disk (virtio-blk over virtio-pci), its file system, and
# the ACPI power button with its input events (`vm stop` presses it; the guest's acpid powers off).
DISK_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4", "button", "evdev"]
DISK_INIT = HERE / "initramfs_init.sh"


def cache_dir() -> Path:
    return Path(os.environ.get("MC_VM_CACHE", "/var/cache/minicontainer-vm"))


def boot_files() -> tuple[Path, Path]:
    """(vmlinux, initramfs) of the `vm` guests, prepared by tests/vm/prepare.sh (make setup-test)."""
    current = cache_dir() / "current"
    kernel, initramfs = current / "vmlinux", current / "vm-initramfs.cpio"
    if not (kernel.is_file() and initramfs.is_file()):
        raise VmError(f"no guest kernel in {current}: run `sudo make setup-test` (tests/vm/prepare.sh "
                      "downloads the Debian kernel package and builds the initramfs)")
    return kernel, initramfs


def extract_vmlinux(bzimage: bytes) -> bytes:
    """Decompress the kernel inside a bzImage, found through its boot-protocol header."""
    if bzimage[0x202:0x206] != b"HdrS":
        raise ValueError("not a bzImage: no 'HdrS' boot header at offset 0x202")
    setup_sectors = bzimage[0x1F1] or 4          # 0 means 4, for historical reasons
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sectors + 1) * 512 + payload_offset
    payload = bzimage[start:start + payload_length]
    # The payload ends with the kernel's 4-byte uncompressed size, which decompressors take for
    # garbage: the xz and gzip readers below stop at the end of their stream, zstd gets it cut off.
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(payload)
    if payload.startswith(b"\x28\xb5\x2f\xfd"):
        return unzstd(payload[:-4])
    raise ValueError(f"unknown kernel compression, payload starts with {payload[:6].hex()}")


def unzstd(data: bytes) -> bytes:
    """Python 3.11 has no zstd module; the zstd command comes with Debian's zstd package."""
    result = subprocess.run(["zstd", "-dc"], input=data, capture_output=True)
    if result.returncode != 0:
        raise ValueError(f"zstd -dc failed: {result.stderr.decode().strip()}")
    return result.stdout


def read_elf_section(data: bytes, wanted: str) -> bytes:
    """Return the bytes of one section of a 64-bit little-endian ELF file (a .ko is one)."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    for name_index, _type, _flags, _addr, offset, size in headers:
        end = data.index(b"\0", names_offset + name_index)
        if data[names_offset + name_index:end].decode() == wanted:
            return data[offset:offset + size]
    return b""


def decompress_module(path: Path) -> bytes:
    """A module's ELF bytes; Debian compresses them (.ko.xz, .ko.zst) on newer kernels."""
    raw = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(raw)
    if path.name.endswith(".ko.zst"):
        return unzstd(raw)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(raw)
    return raw


def module_name(path: Path) -> str:
    """Kernel module names use '_' where file names may use '-' (modinfo's name= does the same)."""
    return path.name.split(".ko")[0].replace("-", "_")


def index_modules(moddir: Path) -> dict[str, Path]:
    return {module_name(p): p for p in (moddir / "kernel").rglob("*.ko*")}


def builtin_modules(moddir: Path) -> set[str]:
    lines = (moddir / "modules.builtin").read_text().split()
    return {module_name(Path(line)) for line in lines}


def module_dependencies(elf: bytes) -> list[str]:
    """The 'depends=' entry of a module's .modinfo section: what must be loaded before it."""
    for entry in read_elf_section(elf, ".modinfo").split(b"\0"):
        if entry.startswith(b"depends="):
            return [d for d in entry[len(b"depends="):].decode().split(",") if d]
    return []


def order_modules(wanted: list[str], available: dict[str, Path], builtin: set[str]) -> list[tuple[str, bytes]]:
    """Depth-first over dependencies: every module comes after the ones it needs (what depmod computes)."""
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in builtin:
            return
        seen.add(name)
        if name not in available:
            raise ValueError(f"module {name} is neither built in nor in the kernel package")
        elf = decompress_module(available[name])
        for dependency in module_dependencies(elf):
            visit(dependency)
        ordered.append((name, elf))

    for name in wanted:
        visit(name)
    return ordered


def is_static_elf(data: bytes) -> bool:
    """True when no program header is PT_INTERP (3), i.e. the binary needs no dynamic loader."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


class CpioWriter:
    """The 'newc' cpio format the kernel unpacks into its first root file system (rootfs)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.inode = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(name) + 1, 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + name.encode() + b"\0")
        self.pad()
        self.out.write(data)
        self.pad()
        self.inode += 1

    def pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def finish(self) -> bytes:
        self.inode = 0
        self.add("TRAILER!!!", 0)
        return self.out.getvalue()


def build_disk_initramfs(modules: list[tuple[str, bytes]], busybox: bytes) -> bytes:
    """A busybox, the disk modules in load order and /init (initramfs_init.sh), nothing else."""
    cpio = CpioWriter()
    for directory in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        cpio.add(directory, stat.S_IFDIR | 0o755)
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    cpio.add("bin/busybox", stat.S_IFREG | 0o755, busybox)
    cpio.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    cpio.add("init", stat.S_IFREG | 0o755, DISK_INIT.read_bytes())
    for index, (name, elf) in enumerate(modules):
        cpio.add(f"modules/{index:02d}-{name}.ko", stat.S_IFREG | 0o644, elf)
    return cpio.finish()
