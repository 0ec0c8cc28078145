#!/bin/bash
# Usage: bash inspect.sh
# How is a container (default network, --net bridge) connected? Print three lines:
#   address A.B.C.D/N     the container's eth0 address and prefix length
#   gateway G.H.I.J       the container's default route
#   bridge NAME           the host's bridge interface that has the gateway address
set -euo pipefail

# What the container sees (busybox's ip):
minicontainer run --rm busybox sh -c 'ip -4 -o addr show eth0; ip route'

# TODO 1: from that output, print "address …" and "gateway …" (cut, tr, awk or sed).
# TODO 2: on the host, find the bridge: the interface that holds the gateway address
#         (ip -4 -o addr show | grep "GATEWAY/"), its 2nd field. Print "bridge NAME".
