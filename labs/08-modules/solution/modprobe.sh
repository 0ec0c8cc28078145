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
    # modprobe reads modules.dep: it loads what macvlan depends on first, then macvlan.
    modprobe macvlan || exit 1
    lsmod | grep '^macvlan '
    # An empty network namespace: nothing on your host changes. Delete the links before it ends:
    # a link of type macvlan holds a reference on the module, and `modprobe -r` would find it busy.
    if unshare --net sh -c 'ip link add v0 type veth peer name v1 &&
                            ip link add m0 link v0 type macvlan mode bridge && ip -o link show m0 &&
                            ip link del m0 && ip link del v0'; then
        echo "macvlan works"
    fi
    ;;
unload)
    # modprobe -r refuses while the module is in use (lsmod's "Used by" column is not 0).
    modprobe -r macvlan && ! grep -q '^macvlan ' /proc/modules && echo "macvlan unloaded"
    ;;
*)
    echo "usage: bash modprobe.sh load|unload" >&2
    exit 2
    ;;
esac
