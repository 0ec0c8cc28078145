"""Build the two files the cgroup-v2 test VM boots: an uncompressed kernel and a busybox initramfs.

What it is: the kernel comes from a Debian ``linux-image-*-amd64`` package that prepare.sh
downloaded and unpacked with ``dpkg-deb -x`` (never installed). This script
  1. pulls the compressed kernel out of the bzImage (``vmlinuz``) and decompresses it to ``vmlinux``:
     QEMU without KVM (TCG) boots it faster than the bzImage, whose boot stub would decompress it
     inside the emulated CPU, 15-50x slower than here;
  2. writes ``initramfs.cpio``: a static busybox, the kernel modules the guest needs (virtio, 9p,
     overlayfs, virtio-serial, veth, bridge), a file naming them in load order, and ``/init``
     (tests/vm/guest_init.sh).
See: boot protocol in the kernel's Documentation/arch/x86/boot.rst, initramfs format in
Documentation/driver-api/early-userspace/buffer-format.rst, man 5 modules.dep, man 8 insmod.
Shell equivalent: ``scripts/extract-vmlinux vmlinuz >vmlinux`` and
``(cd root && find . | cpio -o -H newc) >initramfs.cpio`` plus ``depmod`` to find the load order.

Usage: build_boot_files.py UNPACKED_PACKAGE_DIR OUTPUT_DIR
"""
from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

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

HERE = Path(__file__).resolve().parent
BUSYBOX = Path("/bin/busybox")


def find_kernel(unpacked: Path) -> tuple[str, Path]:
    """Return (version, vmlinuz path) of the one kernel in an unpacked linux-image package."""
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        sys.exit(f"build_boot_files: expected one boot/vmlinuz-* in {unpacked}, found {len(images)}")
    return images[0].name.removeprefix("vmlinuz-"), images[0]


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
            sys.exit(f"build_boot_files: module {name} is neither built in nor in the package; "
                     f"remove it from WANTED_MODULES")
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


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    unpacked, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    version, vmlinuz = find_kernel(unpacked)
    busybox = BUSYBOX.read_bytes()
    if not is_static_elf(busybox):
        sys.exit(f"build_boot_files: {BUSYBOX} is dynamically linked; install busybox-static")
    moddir = unpacked / "lib" / "modules" / version
    modules = order_modules(WANTED_MODULES, index_modules(moddir), builtin_modules(moddir))
    write_atomically(outdir / "vmlinux", extract_vmlinux(vmlinuz.read_bytes()))
    shutil.copyfile(vmlinuz, outdir / "vmlinuz")
    shutil.copyfile(unpacked / "boot" / f"config-{version}", outdir / "config")
    init_script = (HERE / "guest_init.sh").read_bytes()
    write_atomically(outdir / "initramfs.cpio", build_initramfs(modules, init_script, busybox))
    (outdir / "kernel-version").write_text(version + "\n")
    print(f"build_boot_files: kernel {version}, modules: {' '.join(name for name, _ in modules)}")


if __name__ == "__main__":
    main()
