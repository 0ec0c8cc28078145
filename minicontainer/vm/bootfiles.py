"""The boot files of a QEMU guest: an uncompressed kernel and an initramfs, from a Debian kernel package.

    extract_vmlinux      bzImage (vmlinuz) -> vmlinux: TCG boots it without the decompressor stub
    order_modules        the modules a guest needs, dependencies first (what depmod computes)
    CpioWriter           the "newc" cpio format the kernel unpacks as its first root file system
    build_disk_initramfs the `vm` guests' initramfs: load virtio-blk + ext4, mount /dev/vda, switch_root
    boot_files           the prepared kernel (MC_VM_CACHE/current) and the disk initramfs (MC_VM_CACHE/vm-boot)

Used by two callers: tests/vm/build_boot_files.py (the cgroup-v2 test stage, whose initramfs mounts the
host over 9p) and the `vm` verbs, whose initramfs is built here on first use from the same package.
A Debian ``linux-image-*-amd64`` package is downloaded and unpacked with ``dpkg-deb -x``, never installed.
See: the kernel's Documentation/arch/x86/boot.rst (bzImage header), Documentation/driver-api/
early-userspace/buffer-format.rst (initramfs), man 5 modules.dep, man 8 insmod, man 8 switch_root.
Shell equivalent: ``scripts/extract-vmlinux vmlinuz >vmlinux``; ``(cd root && find . | cpio -o -H newc)``.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import stat
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from ..errors import VmError

HERE = Path(__file__).resolve().parent
# What the `vm` guests' initramfs loads: the disk (virtio-blk over virtio-pci) and its file system;
# nothing more, each module costs boot time under TCG (`vm stop` uses the built-in PS/2 keyboard).
DISK_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"]
DISK_INIT = HERE / "initramfs_init.sh"
BUSYBOX = Path("/bin/busybox")            # static (busybox-static), like the test stage's


def cache_dir() -> Path:
    return Path(os.environ.get("MC_VM_CACHE", "/var/cache/minicontainer-vm"))


def boot_files() -> tuple[Path, Path]:
    """(vmlinux, initramfs) of the `vm` guests: the kernel tests/vm/prepare.sh pinned and unpacked
    (MC_VM_CACHE/current), and our own initramfs for it (MC_VM_CACHE/vm-boot, built on first use)."""
    current = cache_dir() / "current"
    kernel, package = current / "vmlinux", current / "package"
    if not (kernel.is_file() and package.is_file()):
        raise VmError(f"no guest kernel in {current}: run `sudo make setup-test` (tests/vm/prepare.sh "
                      "downloads the Debian kernel package once)")
    return kernel, ensure_disk_initramfs(package.read_text().strip())


def inputs_stamp(package: str) -> str:
    """What the initramfs is made of: the kernel package, this file, the init script, busybox."""
    digest = hashlib.sha256(package.encode())
    for path in (Path(__file__), DISK_INIT, BUSYBOX):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_disk_initramfs(package: str) -> Path:
    """The disk-boot initramfs for `package`, rebuilt when an input changed (a few ms when not).
    It lives beside prepare.sh's `current/`, not in it: prepare.sh swaps that directory whole."""
    out_dir = cache_dir() / "vm-boot"
    out, stamp = out_dir / "vm-initramfs.cpio", inputs_stamp(package)
    ready = out_dir / "ready"
    if out.is_file() and ready.is_file() and ready.read_text() == stamp:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one builder; a second caller finds it done
        if not (out.is_file() and ready.is_file() and ready.read_text() == stamp):
            debs = sorted((cache_dir() / "debs").glob(f"{package}_*.deb"))
            if not debs:
                raise VmError(f"the kernel package {package} is not in {cache_dir() / 'debs'}: "
                              "run `sudo make setup-test` (tests/vm/prepare.sh)")
            write_atomically(out, build_disk_initramfs(disk_modules_from_deb(debs[0], out_dir),
                                                       BUSYBOX.read_bytes()))
            ready.write_text(stamp)
    return out


def disk_modules_from_deb(deb: Path, scratch: Path) -> list[tuple[str, bytes]]:
    """DISK_MODULES and what they depend on, read from the package's /lib/modules
    (dpkg-deb --fsys-tarfile | tar -x: only the modules are unpacked, and only for a moment)."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        tar = subprocess.run(["tar", "-x", "-C", tmp, "--wildcards", "*/lib/modules/*"],
                             stdin=dpkg.stdout, capture_output=True, text=True)
        dpkg.stdout.close()
        if dpkg.wait() != 0 or tar.returncode != 0:
            raise VmError(f"cannot unpack the modules of {deb}: {tar.stderr.strip() or 'dpkg-deb failed'}")
        moddir = next(Path(tmp).glob("*lib/modules/*"), None) or next(Path(tmp).glob("lib/modules/*"))
        try:
            modules = order_modules(DISK_MODULES, index_modules(moddir), builtin_modules(moddir))
        except ValueError as e:
            raise VmError(f"the guest initramfs: {e}") from None
    return [(name, strip_signature(elf)) for name, elf in modules]


SIGNATURE_MAGIC = b"~Module signature appended~\n"


def strip_signature(module: bytes) -> bytes:
    """A module without its appended signature (what `strip` of scripts/sign-file's output would
    leave). The guest has no key to check it with anyway; unsigned, the kernel does not hash the
    whole module first (SHA-512 of ~3 MB costs a noticeable part of a TCG boot). Layout at the end:
    signature, struct module_signature (12 bytes, big-endian sig_len last), the magic string."""
    if not module.endswith(SIGNATURE_MAGIC):
        return module
    info = module[-len(SIGNATURE_MAGIC) - 12:-len(SIGNATURE_MAGIC)]
    signer_len, key_id_len = info[3], info[4]
    sig_len, = struct.unpack(">I", info[8:12])
    return module[:-(len(SIGNATURE_MAGIC) + 12 + signer_len + key_id_len + sig_len)]


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
