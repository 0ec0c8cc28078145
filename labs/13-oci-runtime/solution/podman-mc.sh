#!/bin/bash
# Usage: bash podman-mc.sh
# The same with minicontainer-oci as podman's runtime, narrating into steps.txt. Print:
#   capeff: HEX
#   steps: N           how many steps steps.txt narrates (lines starting with ▸)
set -euo pipefail
oci=${MINICONTAINER_OCI:-minicontainer-oci}
run=/tmp/lab13-$(printf %s "$PWD" | md5sum | cut -c1-10)   # podman: a runroot below 50 characters
podman=(podman --root "$PWD/podman/root" --runroot "$run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
rm -f steps.txt

if ! "${podman[@]}" image exists localhost/busybox:latest; then
    minicontainer image export busybox -o busybox.tar
    "${podman[@]}" load -q -i busybox.tar >/dev/null
    "${podman[@]}" tag "$("${podman[@]}" images -q | head -n 1)" localhost/busybox:latest
fi
"${podman[@]}" run --rm --runtime "$oci" --annotation org.minicontainer.explain="$PWD/steps.txt" \
    --network none "${limits[@]}" localhost/busybox \
    sh -c 'echo "capeff: $(grep CapEff /proc/self/status | cut -f2)"'
echo "steps: $(grep -c '^▸' steps.txt)"
