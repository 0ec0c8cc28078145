#!/bin/bash
# Usage: bash make-rootfs.sh DIR
# Build the smallest root directory that `chroot DIR /bin/sh` can run a shell in.
set -euo pipefail
DIR=${1:?usage: make-rootfs.sh DIR}
mkdir -p "$DIR"

# TODO 1: create $DIR/bin and copy the statically linked busybox (/bin/busybox) into it.
#         (Why static? `file /bin/busybox` — a dynamic program would also need its loader and
#         libraries inside $DIR, see lab 04.)

# TODO 2: give busybox's applets their names (sh, ls, cat, …): busybox looks at argv[0].
#         `chroot "$DIR" /bin/busybox --install -s /bin` makes one symlink per applet, to the
#         path /bin/busybox as seen *inside*. (Or by hand: ln -s busybox "$DIR/bin/sh", …)

# TODO 3: create the empty directories programs expect: $DIR/proc, $DIR/tmp and $DIR/etc.

echo "TODO: make-rootfs.sh is not written yet" >&2
exit 1
