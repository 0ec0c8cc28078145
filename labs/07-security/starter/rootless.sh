#!/bin/bash
# Usage: bash rootless.sh   (as root; it runs minicontainer as the unprivileged user nobody)
# A rootless container: started by nobody (uid 65534), root inside. It creates a file in a
# bind-mounted directory. Print:
#   inside: UID          the container's `id -u`
#   on the host: UID     the owner of that file, seen from the host
set -euo pipefail
DIR=$(mktemp -d /tmp/lab07-rootless.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
mkdir "$DIR/shared"

# nobody needs an image of its own: export a busybox container's files as a tar (an image IS
# a tar), and let nobody import it.
minicontainer rm -f lab07-export >/dev/null 2>&1 || true
minicontainer run --name lab07-export --net none busybox true
minicontainer export lab07-export -o "$DIR/busybox.tar"
minicontainer rm lab07-export > /dev/null
chown -R 65534:65534 "$DIR"

# Runs a command as nobody, with nobody's own state root (images and containers) in $DIR.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$DIR" MINICONTAINER_ROOT="$DIR/state" "$@"; }
as_nobody minicontainer image import "$DIR/busybox.tar" busybox > /dev/null

# TODO 1: as_nobody minicontainer run --rm -v "$DIR/shared:/shared" busybox sh -c '…' that prints
#         "inside: $(id -u)" and touches /shared/made-inside
# TODO 2: echo "on the host: $(stat -c %u "$DIR/shared/made-inside")"
