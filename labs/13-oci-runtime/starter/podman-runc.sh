#!/bin/bash
# Usage: bash podman-runc.sh
# Run the same busybox with podman and runc (a private store in ./podman) and print:
#   capeff: HEX
set -euo pipefail
run=/tmp/lab13-$(printf %s "$PWD" | md5sum | cut -c1-10)   # podman: a runroot below 50 characters
podman=(podman --root "$PWD/podman/root" --runroot "$run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

# TODO 1: minicontainer image export busybox -o busybox.tar   (an OCI archive)
# TODO 2: "${podman[@]}" load -i busybox.tar                  (once; `image exists` tells)
# TODO 3: "${podman[@]}" run --rm --runtime runc --network none "${limits[@]}" IMAGE sh -c '…'
