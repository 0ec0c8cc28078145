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

# A feature is there when using it works. (The kernel would even load a missing module by
# itself on first use: "fs-overlay" and "rtnl-link-veth" are module aliases for that.)
try overlay grep -qw overlay /proc/filesystems
try veth unshare --net ip link add v0 type veth peer name v1
try bridge unshare --net ip link add br0 type bridge
