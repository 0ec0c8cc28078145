#!/bin/bash
# Usage: bash modules.sh
# For each kernel feature a container runtime needs, print one line "NAME STATE":
#     overlay veth bridge nf_nat
# STATE is one of:
#     loaded     it is a module and it is loaded              (lsmod / /proc/modules lists it)
#     builtin    compiled into the kernel: always there       (modules.builtin, or CONFIG_X=y)
#     loadable   a module that exists but is not loaded yet   (modinfo finds it, or CONFIG_X=m)
#     missing    none of these
set -uo pipefail

# name and the kernel config symbol that builds it
FEATURES="overlay:OVERLAY_FS veth:VETH bridge:BRIDGE nf_nat:NF_NAT"

# The kernel's build configuration, if this system keeps it anywhere.
CONFIG=$(zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null || true)

state() {
    local name=$1 symbol=$2
    if grep -q "^$name " /proc/modules 2>/dev/null; then            # what lsmod shows
        echo loaded
    elif grep -q "/$name.ko" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null; then
        echo builtin
    elif grep -q "^CONFIG_$symbol=y" <<<"$CONFIG"; then
        echo builtin
    elif modinfo "$name" >/dev/null 2>&1; then                       # a .ko file in /lib/modules
        echo loadable
    elif grep -q "^CONFIG_$symbol=m" <<<"$CONFIG"; then
        echo loadable
    else
        echo missing
    fi
}

for feature in $FEATURES; do
    echo "${feature%%:*} $(state "${feature%%:*}" "${feature#*:}")"
done
