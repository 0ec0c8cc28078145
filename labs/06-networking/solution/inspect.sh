#!/bin/bash
# Usage: bash inspect.sh
# How is a container (default network, --net bridge) connected? Print three lines:
#   address A.B.C.D/N     the container's eth0 address and prefix length
#   gateway G.H.I.J       the container's default route
#   bridge NAME           the host's bridge interface that has the gateway address
set -euo pipefail

inside=$(minicontainer run --rm busybox sh -c 'ip -4 -o addr show eth0; ip route')
address=$(grep ' inet ' <<<"$inside" | tr -s ' ' | cut -d' ' -f4)          # 10.201.0.2/16
gateway=$(grep '^default' <<<"$inside" | cut -d' ' -f3)                     # 10.201.0.1
echo "address $address"
echo "gateway $gateway"
# The gateway is the bridge's own address on the host: containers' veth ends hang on it.
echo "bridge $(ip -4 -o addr show | grep " $gateway/" | tr -s ' ' | cut -d' ' -f2)"
