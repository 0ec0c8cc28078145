#!/bin/bash
# Usage: bash modprobe.sh load|unload
# Load and unload a kernel module for real: macvlan, the driver behind Docker's macvlan networks
# (a container with a MAC address of its own on one of the host's network cards). It is a module
# on a stock kernel, loaded only when someone needs it. This needs a kernel that can load modules
# (`minicontainer doctor`, section "kernel modules"); on one that cannot, do this task in the
# QEMU VM (README.md, "Two paths").
#   bash modprobe.sh load     load it, print lsmod's line for it, then USE it: a macvlan link on
#                             a veth, in a throwaway network namespace; print "macvlan works"
#   bash modprobe.sh unload   unload it; print "macvlan unloaded" once lsmod no longer lists it
set -uo pipefail

case "${1:-}" in
load)
    # TODO: Which tool loads a module together with the modules it depends on (modprobe(8))?
    #       Load macvlan, then show lsmod's line for it (only that line).
    # TODO: Use it. In `unshare --net sh -c '…'` (an empty network namespace: nothing on your host
    #       changes) create a veth pair, then a link of type macvlan on one of its ends
    #       (ip-link(8): "ip link add NAME link DEVICE type macvlan"). Delete both links before the
    #       namespace ends — why does that matter for `unload`? Print "macvlan works" if it all worked.
    ;;
unload)
    # TODO: Unload it (modprobe(8) has an option for that), and print "macvlan unloaded" once
    #       /proc/modules no longer lists it. When does unloading fail? (lsmod's "Used by" column.)
    ;;
*)
    echo "usage: bash modprobe.sh load|unload" >&2
    exit 2
    ;;
esac
