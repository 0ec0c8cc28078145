#!/bin/bash
# Usage: bash vm.sh
# Create the VM lab12 (busybox userland, 256 MiB), start it and wait until its counter ticks. Print:
#   ticking: N          the first "tick N" its console log shows
set -euo pipefail
root=${MINICONTAINER_ROOT:-/var/lib/minicontainer}
log=$root/vms/lab12/console.log

minicontainer vm create lab12 --memory 256 --image busybox
minicontainer vm start lab12 --wait
until tick=$(grep -ao 'tick [0-9]*' "$log" | tail -n 1) && [ -n "$tick" ]; do sleep 0.5; done
echo "ticking: ${tick#tick }"
