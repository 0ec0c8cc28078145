"""`export`: the whole filesystem of a container as one tarball (a backup).

    man 8 mount (overlay, read-only), tar(5)
    shell: unshare --mount sh -c 'mount --make-rprivate / &&
             mount -t overlay overlay -o ro,lowerdir=$UPPER:$IMAGE $TMP &&
             tar --numeric-owner -cf backup.tar -C $TMP .'

What a container sees is its upper dir over its image's layers, merged by overlayfs. To
write that view we let overlayfs merge it once more: a second, *read-only* overlay mount
with the upper dir as the topmost lower layer (whiteouts in it are honoured as in any lower
layer), in a private mount namespace of a short-lived child, so the host never sees it.
The tar is written from that mount; `minicontainer image import` takes it back as an image.

Consistent: a running container is frozen (cgroup freezer) while the tar is written, so no
file is caught half-written. Atomic: the tar is written to a temporary name next to the
output and renamed when complete.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

from minicontainer.errors import ConfigError, ContainerError, MinicontainerError, SyscallError
from minicontainer.storage.snapshots import frozen


def export_container(store, images, rec, out: str | os.PathLike, explain=None) -> int:
    """Write container REC's merged filesystem to OUT (an uncompressed tar); returns its size."""
    out = check_output(out)
    image = images.get(rec.image)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    mnt = store.container_dir(rec.id) / f".export-{os.getpid()}"
    mnt.mkdir(mode=0o700, exist_ok=True)
    try:
        with frozen(rec, explain):
            in_mount_namespace(write_merged_tar, store.container_dir(rec.id), rec.name,
                               image.lower_dirs, mnt, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        mnt.rmdir()
    return out.stat().st_size


def write_merged_tar(cdir: Path, name: str, image_lower: list[Path], mnt: Path, out: Path) -> None:
    """In a private mount namespace: mount the read-only overlay on MNT, tar it into OUT.
    (A size-limited disk is mounted here too: overlayfs takes its layers from our namespace.)"""
    from minicontainer.kernel.mount import MS_NODEV, MS_RDONLY, mount
    from minicontainer.storage.layer_tar import add_tree
    from minicontainer.storage.overlay import DISK_IMAGE, DISK_MOUNT
    upper = cdir / "upper"
    if (cdir / DISK_IMAGE).exists():
        from minicontainer.storage.disk import mount_disk
        mount_disk(cdir / DISK_IMAGE, cdir / DISK_MOUNT)
        upper = cdir / DISK_MOUNT / "upper"
    if not upper.is_dir():
        raise ContainerError(f"container {name} has no upper dir at {upper}: nothing to export")
    lower = [upper, *image_lower]
    mount("overlay", str(mnt), "overlay", MS_RDONLY | MS_NODEV,
          "lowerdir=" + ":".join(str(d) for d in lower))
    try:
        with open(out, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            add_tree(tar, mnt, "")
    except OSError as e:
        raise SyscallError("write", (e.filename or str(out),), e.errno or 0) from None


def check_output(out: str | os.PathLike) -> Path:
    """-o FILE: a file in an existing directory (refused before any work is done)."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"-o {out} is a directory: give a file name, like {out / 'backup.tar'}")
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: the directory {out.parent} does not exist")
    return out


def in_mount_namespace(fn, *args) -> None:
    """Run fn(*args) in a forked child with its own, private mount namespace (unshare -m)."""
    from minicontainer.kernel.mount import MS_PRIVATE, MS_REC, mount
    from minicontainer.kernel.namespaces import CLONE_NEWNS, unshare
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                         # the child: never returns
        status = 0
        try:
            os.close(r)
            unshare(CLONE_NEWNS)
            mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates to the host
            fn(*args)
        except BaseException as e:                       # one line back to the parent
            os.write(w, (str(e) if isinstance(e, MinicontainerError) else repr(e)).encode()[:4000])
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise MinicontainerError(message or f"the export child failed (wait status {status})")
