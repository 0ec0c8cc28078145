"""Where root filesystems come from and how containers get a writable copy.

    unpack.py    unpack(archive, dest): a tar/tar.gz/tar.xz rootfs, unpacked so that no entry
                 can write outside dest (openat + O_NOFOLLOW walking); `tar -xpf --numeric-owner`
    images.py    ImageStore: import, list, get, remove named images under <root>/images/<name>/<tag>/
    overlay.py   the overlayfs mount that stacks a container's upper dir on an image's rootfs
"""
