#!/bin/bash
# Usage: bash make-rootfs.sh DIR
# Build the smallest root directory that `chroot DIR /bin/sh` can run a shell in.
set -euo pipefail
DIR=${1:?usage: make-rootfs.sh DIR}
mkdir -p "$DIR"

# 1. One statically linked program: no loader, no libraries needed inside $DIR.
mkdir -p "$DIR/bin"
cp /bin/busybox "$DIR/bin/busybox"

# 2. One name per applet: busybox looks at argv[0] to know whether it is sh, ls or cat.
#    Run inside the chroot, `--install -s` makes links to /bin/busybox — the path that is
#    right *inside*. (Run from outside, the links would point to $DIR/bin/busybox, a path
#    that does not exist in the jail.) Our first chroot!
chroot "$DIR" /bin/busybox --install -s /bin

# 3. Mount points and scratch space.
mkdir -p "$DIR/proc" "$DIR/tmp" "$DIR/etc"
chmod 1777 "$DIR/tmp"
echo "root:x:0:0:root:/root:/bin/sh" > "$DIR/etc/passwd"
