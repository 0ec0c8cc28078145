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

state() {
    local name=$1 symbol=$2
    # TODO 1: loaded?   grep "^$name " /proc/modules   (the file lsmod prints; it does not exist
    #                   on a kernel without module support)
    # TODO 2: builtin?  grep "/$name.ko" /lib/modules/$(uname -r)/modules.builtin, or
    #                   CONFIG_$symbol=y in the kernel's config: zcat /proc/config.gz, or
    #                   /boot/config-$(uname -r)
    # TODO 3: loadable? modinfo "$name" succeeds, or CONFIG_$symbol=m
    echo missing
}

for feature in $FEATURES; do
    echo "${feature%%:*} $(state "${feature%%:*}" "${feature#*:}")"
done
