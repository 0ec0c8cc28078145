#!/bin/bash
# Usage: bash podman-runc.sh
# Run the same busybox with podman and runc (a private store in ./podman) and print:
#   capeff: HEX
set -euo pipefail
run=/tmp/lab13-$(printf %s "$PWD" | md5sum | cut -c1-10)   # podman: a runroot below 50 characters
podman=(podman --root "$PWD/podman/root" --runroot "$run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

if ! "${podman[@]}" image exists localhost/busybox:latest; then
    minicontainer image export busybox -o busybox.tar
    "${podman[@]}" load -q -i busybox.tar >/dev/null
    "${podman[@]}" tag "$("${podman[@]}" images -q | head -n 1)" localhost/busybox:latest
fi
"${podman[@]}" run --rm --runtime runc --network none "${limits[@]}" localhost/busybox \
    sh -c 'echo "capeff: $(grep CapEff /proc/self/status | cut -f2)"'
