#!/bin/bash
# Usage: bash caps.sh
# The effective capabilities (CapEff in /proc/self/status, a hex bit mask) of root in three
# containers. Print three lines:
#   default HEX       minicontainer's default: Docker's 14 capabilities
#   none HEX          with every capability dropped
#   privileged HEX    with --privileged
set -euo pipefail
echo "host $(grep CapEff /proc/self/status | cut -f2)"       # root on the host: all its CapBnd allows
# TODO: the same grep inside three containers: the default, --cap-drop ALL, --privileged.
#       minicontainer run --rm --net none busybox sh -c 'grep CapEff /proc/self/status | cut -f2'
#       Decode a mask on the host: capsh --decode=00000000a80425fb  (package libcap2-bin)
