#!/bin/bash
# Usage: bash caps.sh
# The effective capabilities (CapEff in /proc/self/status, a hex bit mask) of root in three
# containers. Print three lines:
#   default HEX       minicontainer's default: Docker's 14 capabilities
#   none HEX          with every capability dropped
#   privileged HEX    with --privileged
set -euo pipefail
CAPEFF='grep CapEff /proc/self/status | cut -f2'

echo "default $(minicontainer run --rm --net none busybox sh -c "$CAPEFF")"
echo "none $(minicontainer run --rm --net none --cap-drop ALL busybox sh -c "$CAPEFF")"
echo "privileged $(minicontainer run --rm --net none --privileged busybox sh -c "$CAPEFF")"
