#!/bin/sh
# /init of the `minicontainer vm` guests' initramfs (busybox ash, PID 1), built by bootfiles.py.
#
# What it is: the smallest step from kernel to the guest's own disk. Debian's kernel has virtio-blk
# and ext4 as modules, so something must load them before the root file system can be mounted:
# that is the whole job of an initramfs (Debian's initramfs-tools does the same with more cases).
#   insmod the modules (in dependency order) → mount /dev/vda (the qcow2 disk) → switch_root to it
#   → exec the disk's /sbin/init (rootfs-builder put minicontainer's guest init there).
# See: man 8 switch_root, Documentation/filesystems/ramfs-rootfs-initramfs.rst.
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for module in /modules/*.ko; do
    insmod "$module" || echo "mc-initramfs: insmod $module failed" >/dev/console
done
# The disk appears once virtio-blk has probed it: wait for it a little.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "mc-initramfs: cannot mount /dev/vda" >/dev/console; poweroff -f; }
umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
