"""Where root filesystems come from and how containers get a writable copy (docs/storage.md).

    unpack.py     unpack(archive, dest): a tar/tar.gz/tar.xz rootfs, unpacked so that no entry
                  can write outside dest (openat + O_NOFOLLOW walking); `tar -xpf --numeric-owner`
    images.py     ImageStore: import, list, get, remove named images under <root>/images/<name>/<tag>/
    overlay.py    the overlayfs mount that stacks a container's upper dir on an image's rootfs
    layers.py     images as stacks of layers (<root>/layers/<chain id>/), whiteouts, the init layer
    diff.py       `diff`: A/C/D read from the upper dir
    commit.py     `commit`: the upper dir becomes one more layer of a new image
    snapshots.py  `snapshot`: a frozen copy of the upper dir, and rollback
    export.py     `export`: the container's merged filesystem as one tar
    oci.py        `image import/export`: OCI layouts and docker-save archives
    volumes.py    -v HOST_DIR|NAME:CTR_DIR[:ro], --tmpfs, named volumes
    copy.py       the exact tree copy (whiteouts, xattrs, hardlinks) snapshots and commits use
    usage.py      `system df`
"""
