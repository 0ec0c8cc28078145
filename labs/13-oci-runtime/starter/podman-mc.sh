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

# TODO 1: load busybox as in podman-runc.sh if it is not there yet
# TODO 2: "${podman[@]}" run --rm --runtime "$oci" --annotation org.minicontainer.explain="$PWD/steps.txt" …
# TODO 3: print "steps: N" (grep -c '^▸' steps.txt)
