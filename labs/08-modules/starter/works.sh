#!/bin/bash
# Usage: bash works.sh
# Load (if needed) and TRY each of overlay, veth and bridge; print "NAME works" or "NAME fails".
# Everything happens in throwaway namespaces: nothing on your host changes.
set -uo pipefail

# modprobe loads a module and the modules it depends on (modules.dep); it does nothing for a
# feature that is built in or already loaded. On a kernel without module support, or without
# kmod installed, it fails — that is fine: the test below decides.
for name in overlay veth bridge; do
    modprobe "$name" 2>/dev/null
done

try() {   # try NAME COMMAND… : run the command quietly, print "NAME works" or "NAME fails"
    if "${@:2}" >/dev/null 2>&1; then echo "$1 works"; else echo "$1 fails"; fi
}

# TODO 1: overlay — the kernel lists the file systems it can mount in /proc/filesystems.
#         try overlay grep -qw overlay /proc/filesystems
# TODO 2: veth — create a pair in a new, empty network namespace (gone when the command ends):
#         try veth unshare --net ip link add v0 type veth peer name v1
# TODO 3: bridge — the same with: ip link add br0 type bridge
