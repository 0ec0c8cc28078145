#!/bin/bash
# Usage: bash vm.sh
# Create the VM lab12 (busybox userland, 256 MiB), start it and wait until its counter ticks. Print:
#   ticking: N          the first "tick N" its console log shows
set -euo pipefail
root=${MINICONTAINER_ROOT:-/var/lib/minicontainer}
log=$root/vms/lab12/console.log

# TODO 1: create the VM: minicontainer vm create NAME --memory MiB --image busybox
# TODO 2: start it and wait for its first console line: minicontainer vm start NAME --wait
# TODO 3: wait until "$log" holds a line "tick N" (grep -ao 'tick [0-9]*' "$log" | tail -n 1)
#         and print "ticking: N"
