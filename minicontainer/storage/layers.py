"""Layers: an image as a stack of directories, shared on disk, merged by overlayfs.

    Documentation/filesystems/overlayfs.rst ("Multiple lower layers", "whiteouts and opaque
    directories"), OCI image-spec layer.md (the same idea, written as tar files)
    shell: mount -t overlay overlay -o lowerdir=L3:L2:L1,upperdir=UPPER,workdir=WORK MERGED

On disk (<state root> = /var/lib/minicontainer):

    layers/<chain id>/fs/          one layer: only what changed relative to the layers below
    layers/<chain id>/layer.json   {"id", "size", "created", "source"}
    images/<name>/<tag>/image.json  "layers": [bottom, …, top]  — ids, not copies

A layer's id is its *chain id*, as Docker names layers: for the bottom layer the sha256 of
its tar (its diff_id), above it sha256("<chain id below> <diff_id>"). So a layer is named by
its content *and* everything under it: two images built on the same base list the same ids
for the shared part, which exists once on disk; the same bytes at another place in another
stack are another directory (overlayfs cannot mount one directory twice in a stack).
A container of an image mounts lowerdir=top:…:bottom (overlayfs lists the *top* first);
`commit` turns the container's upper dir into one more layer on that stack.

A layer records deletions, which a plain directory cannot. Two formats say the same thing:

    in a tar (OCI/Docker)          in a directory (overlayfs)          means
    dir/.wh.NAME  (empty file)     dir/NAME: char device 0/0          NAME was deleted
    dir/.wh..wh..opq               xattr trusted.overlay.opaque=y     dir was emptied (and remade)

Layer tars are turned into the overlayfs form when unpacked and back when exported: that is
layer_tar.py (unpack_layer, write_layer_tar), which needs tarfile; this module is on `run`'s
path and does not. An image imported from a plain rootfs tarball has no layers:
its `rootfs/` directory is the whole image (one lower dir). It is moved into layers/ the
first time something is built on top of it (ImageStore.convert_to_layers).

The init layer: the runtime bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf and
mounts /proc, /sys and /dev. If the image lacks one of these, an empty placeholder must
exist to mount on; creating it in the container's upper dir would show up in `diff` and be
saved by `commit`. So, as Docker does, the placeholders go into a small layer of their own,
<container>/init/, between the image and the upper dir.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from minicontainer.errors import ArchiveError, ImageError

WHITEOUT_PREFIX = ".wh."                 # OCI: .wh.NAME deletes NAME from the layers below
OPAQUE_MARKER = ".wh..wh..opq"           # OCI: this directory hides the layers below
OPAQUE_XATTR = "trusted.overlay.opaque"  # overlayfs: the same, as an extended attribute
MAX_LOWERDIR = 3500                      # the mount options must fit in one page (4096 bytes)


# ── whiteouts ───────────────────────────────────────────────────────────────────────────────

def is_whiteout(st: os.stat_result) -> bool:
    """A character device with device number 0/0: overlayfs's "deleted here"."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | os.PathLike) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def make_whiteout(name: str, dir_fd: int) -> None:
    """mknod NAME c 0 0 — needs CAP_MKNOD (root)."""
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def overlay_xattr_filter(name: str) -> bool:
    """Which xattrs a committed layer keeps: all but overlayfs's private bookkeeping
    (trusted.overlay.origin, .impure, … point at inodes of *this* mount); opaque stays."""
    return not name.startswith("trusted.overlay.") or name == OPAQUE_XATTR


# ── reading a stack of layer directories ───────────────────────────────────────────────────

def lookup(lower_dirs: list[Path], rel: str) -> os.stat_result | None:
    """lstat of what a container would see at REL (no leading /) in the stack LOWER_DIRS
    (top first), as overlayfs merges it: None if absent, deleted or hidden.

    Component by component: a directory merges with the same directory below it until a
    layer holds a whiteout, a non-directory or an opaque directory there. Never follows a
    symlink: a path below a symlink does not exist in a layer."""
    active = list(lower_dirs)
    parts = [p for p in rel.split("/") if p]
    found = None
    for depth, _ in enumerate(parts):
        sub = "/".join(parts[:depth + 1])
        found, below = None, []
        for layer in active:
            try:
                st = os.lstat(layer / sub)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(st):
                break                                    # deleted here: nothing below counts
            if found is None:
                found = st
            if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(found.st_mode):
                break                                    # a file hides everything below it
            below.append(layer)
            if is_opaque(layer / sub):
                break
        if found is None or (depth < len(parts) - 1 and not stat.S_ISDIR(found.st_mode)):
            return None
        active = below
    return found


# ── the init layer ─────────────────────────────────────────────────────────────────────────

INIT_DIRS = {"proc": 0o555, "sys": 0o555, "dev": 0o755}
INIT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def make_init_layer(container_dir: Path, lower_dirs: list[Path]) -> list[Path]:
    """Create <container>/init/ with the mount points the image lacks; returns the lower
    stack to mount (init on top when it holds anything)."""
    init = container_dir / "init"
    needed = [d for d in INIT_DIRS if lookup(lower_dirs, d) is None]
    etc = lookup(lower_dirs, "etc")
    if etc is None or stat.S_ISDIR(etc.st_mode):       # an image whose /etc is a link: leave it
        needed += [f for f in INIT_FILES if lookup(lower_dirs, f) is None]
    if not needed:
        return list(lower_dirs)
    init.mkdir(mode=0o755, exist_ok=True)
    for entry in needed:
        path = init / entry
        if entry in INIT_DIRS:
            path.mkdir(mode=INIT_DIRS[entry], exist_ok=True)
            os.chmod(path, INIT_DIRS[entry])
            continue
        if not (init / "etc").is_dir():
            (init / "etc").mkdir(mode=0o755)
            if etc is not None:                          # the merged /etc keeps the image's look
                os.chown(init / "etc", etc.st_uid, etc.st_gid)
                os.chmod(init / "etc", stat.S_IMODE(etc.st_mode))
        path.touch(mode=0o644, exist_ok=True)
    if etc is not None and (init / "etc").is_dir():
        os.utime(init / "etc", ns=(etc.st_atime_ns, etc.st_mtime_ns))
    return [init, *lower_dirs]


def lowerdir_option(lower_dirs: list[Path]) -> str:
    """"L3:L2:L1" for mount(8); refuses a stack whose options would not fit in one page."""
    text = ":".join(str(d) for d in lower_dirs)
    if len(text) > MAX_LOWERDIR:
        raise ImageError(f"the image has {len(lower_dirs)} layers, too many for one overlay mount "
                         f"({len(text)} bytes of lowerdir): flatten it with `minicontainer export` "
                         "and `minicontainer image import`")
    return text


# ── layer ids ───────────────────────────────────────────────────────────────────────────────

def chain_id(below: str | None, diff_id: str) -> str:
    """The id (hex) of layer DIFF_ID on top of the layer whose id is BELOW (None: the bottom)."""
    if below is None:
        return sha256_hex(diff_id)
    from hashlib import sha256
    return sha256(f"sha256:{below} {diff_id}".encode()).hexdigest()


def sha256_hex(digest: str) -> str:
    """"sha256:ab…" → "ab…", refusing anything that is not a sha256 digest."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ArchiveError(f"unsupported digest {digest!r}: only sha256:<64 hex digits> is supported")
    return hexpart

