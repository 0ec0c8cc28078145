#!/bin/bash
# Usage: bash minicontainer.sh
# Run busybox with minicontainer and print the container's effective capabilities:
#   capeff: HEX        the CapEff value of /proc/self/status inside the container
set -euo pipefail

minicontainer run --rm busybox sh -c 'echo "capeff: $(grep CapEff /proc/self/status | cut -f2)"'
