"""The VM's disk: a qcow2 file, built from a rootfs-builder image, and its backing chain.

What it is: qcow2 ("QEMU copy-on-write v2") stores a virtual disk in clusters of 64 KiB, allocated
on first write, so a 1 GiB disk holding 3 MB of files takes ~3 MB. A qcow2 file may name a *backing
file*: clusters it has not written are read from there. An external snapshot is exactly that: a new,
empty overlay whose backing file is the old disk, which is never written again (the lecture: "all
writes to disks are redirected to another file"). Internal snapshots live inside one qcow2 file.
    build_disk        image (busybox|debian) → ext4 tree → qcow2, with our /sbin/init (cached per image)
    backing_chain     qemu-img info --backing-chain: top overlay first, base image last
    compare           qemu-img compare: same guest-visible content, byte for byte
See: qemu-img(1), docs/interop/qcow2.txt, mke2fs(8) -d.
Shell equivalent:
    mkdir root && tar -xpf busybox.tar -C root && truncate -s 1G raw && mkfs.ext4 -d root raw
    qemu-img convert -O qcow2 raw disk.qcow2
    qemu-img create -f qcow2 -b disk.qcow2 -F qcow2 overlay.qcow2
    qemu-img info --backing-chain overlay.qcow2
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import VmError
from .bootfiles import HERE

IMAGES = ("busybox", "debian")         # rootfs-builder recipes a VM can boot
GUEST_INIT = HERE / "guest_init.sh"
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, *, what: str) -> int:
    """'1G', '512M', '256' (MiB for memory is the caller's business) → bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not match or int(match.group(1)) == 0:
        raise VmError(f"invalid {what} {text!r}: use a number with K, M or G, e.g. 1G")
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def qemu_img(*args: str) -> str:
    """Run qemu-img; its own error message (last line) becomes a VmError."""
    tool = shutil.which("qemu-img")
    if tool is None:
        raise VmError("qemu-img is not installed: apt-get install qemu-utils (or run scripts/setup.sh --test)")
    result = subprocess.run([tool, *args], capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise VmError(f"qemu-img {args[0]}: {message}")
    return result.stdout


def build_disk(image: str, size: int, path: Path) -> None:
    """The image's files on an ext4 file system in a qcow2 file, booting our guest init. Every VM of
    one image and size starts from the same bytes (its name comes on the kernel command line), so
    the qcow2 is built once into the cache and copied: a few MB, milliseconds instead of ~1 s."""
    if image not in IMAGES:
        raise VmError(f"unknown VM image {image!r}: use {' or '.join(IMAGES)}")
    from ..builder import build_recipe
    from .bootfiles import cache_dir
    tarball = Path(build_recipe(image).path)
    stamp = hashlib.sha256(tarball.read_bytes() + GUEST_INIT.read_bytes()).hexdigest()[:16]
    cache = cache_dir() / "disks"
    cached = cache / f"{image}-{size}-{stamp}.qcow2"
    if not cached.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)           # one builder; a second caller finds it made
            if not cached.is_file():
                for old in cache.glob(f"{image}-{size}-*.qcow2"):
                    old.unlink()                       # an older guest init or image: rebuilt
                tmp = cache / f".{cached.name}.{os.getpid()}"
                try:
                    make_disk(image, tarball, size, tmp)
                    os.rename(tmp, cached)
                finally:
                    tmp.unlink(missing_ok=True)
    shutil.copyfile(cached, path)


def make_disk(image: str, tarball: Path, size: int, path: Path) -> None:
    """unpack the image, put our init in, mkfs.ext4 -d, qemu-img convert to qcow2."""
    from ..storage.unpack import unpack
    with tempfile.TemporaryDirectory(prefix="mc-vm-disk-", dir=path.parent) as tmp:
        root, raw = Path(tmp) / "root", Path(tmp) / "disk.raw"
        root.mkdir()
        unpack(tarball, root)
        install_guest_init(root)
        with open(raw, "wb") as f:
            f.truncate(size)             # sparse: mkfs and qemu-img only touch what is used
        mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "mc-vm", "-d", str(root), str(raw)],
                              capture_output=True, text=True)
        if mkfs.returncode != 0:
            last = (mkfs.stderr.strip().splitlines() or ["failed"])[-1]
            raise VmError(f"mkfs.ext4 -d {root}: {last} (is --disk big enough for the {image} image?)")
        qemu_img("convert", "-O", "qcow2", str(raw), str(path))


def install_guest_init(root: Path) -> None:
    """/sbin/init = guest_init.sh (the counter and a console shell); /var/lib/mc for its counter."""
    init = root / "sbin" / "init"
    init.parent.mkdir(parents=True, exist_ok=True)
    if init.is_symlink() or init.exists():
        init.unlink()
    shutil.copyfile(GUEST_INIT, init)
    os.chmod(init, 0o755)
    (root / "var" / "lib" / "mc").mkdir(parents=True, exist_ok=True)


def create_overlay(backing: Path, overlay: Path) -> None:
    """A new, empty qcow2 whose unwritten clusters are read from `backing` (offline snapshot)."""
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(backing), "-F", "qcow2", str(overlay))


def backing_chain(path: Path) -> list[dict]:
    """qemu-img's view of the chain, top first; -U: also while a running QEMU holds the lock."""
    return json.loads(qemu_img("info", "-U", "--backing-chain", "--output=json", str(path)))


def describe_chain(path: Path) -> str:
    """'overlay-1.qcow2 (3.1 MB) → disk.qcow2 (5.2 MB)': for `vm ls` and `vm inspect`."""
    if not path.exists():
        return f"{path} (missing)"
    return " → ".join(f"{Path(i['filename']).name} ({i.get('actual-size', 0) / 1e6:.1f} MB)"
                      for i in backing_chain(path))


def internal_snapshots(path: Path) -> list[dict]:
    """The internal snapshots stored in the top qcow2 file (name, vm-state-size, date)."""
    return backing_chain(path)[0].get("snapshots", [])


def compare(first: Path, second: Path) -> bool:
    """True when both disks show the guest the same bytes (qemu-img compare exits 0)."""
    tool = shutil.which("qemu-img") or "qemu-img"
    result = subprocess.run([tool, "compare", "-U", str(first), str(second)], capture_output=True, text=True)
    if result.returncode > 1:
        raise VmError(f"qemu-img compare: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
    return result.returncode == 0


def check_target(path: Path, needed: int) -> None:
    """A storage-migration target must be new, in a writable directory with room for the disk."""
    if path.exists():
        raise VmError(f"{path} exists already: storage-migrate writes a new file, give a new path")
    directory = path.parent
    if not directory.is_dir():
        raise VmError(f"no directory {directory}: create it first")
    st = os.statvfs(directory)
    if st.f_flag & os.ST_RDONLY:
        raise VmError(f"{directory} is on a read-only file system: choose a writable target")
    if not os.access(directory, os.W_OK):
        raise VmError(f"{directory} is not writable: choose another target")
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise VmError(f"{directory} has {free / 1e6:.1f} MB free, the disk needs {needed / 1e6:.1f} MB: "
                      "free space or choose another target")
