#!/bin/bash
# Usage: bash minicontainer.sh
# Run busybox with minicontainer and print the container's effective capabilities:
#   capeff: HEX        the CapEff value of /proc/self/status inside the container
set -euo pipefail

# TODO: minicontainer run --rm busybox sh -c '…'  (grep CapEff /proc/self/status, print "capeff: HEX")
