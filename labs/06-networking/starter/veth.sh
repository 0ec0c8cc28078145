#!/bin/bash
# Usage: bash veth.sh
# Two network namespaces, red and blue, joined by a veth pair (a virtual cable); red pings blue.
# Everything is removed at the end (the trap), whatever happens.
set -euo pipefail
cleanup() { ip netns del red 2>/dev/null || true; ip netns del blue 2>/dev/null || true; }
trap cleanup EXIT
ip netns add red            # a named network namespace: only lo, and lo is down
ip netns add blue

# TODO 1: a cable with two ends:      ip link add veth-red type veth peer name veth-blue
# TODO 2: plug one end into each:     ip link set veth-red netns red   (and veth-blue into blue)
# TODO 3: an address on each end, up: ip -n red addr add 10.10.0.1/24 dev veth-red
#                                     ip -n red link set veth-red up        (blue: 10.10.0.2/24)

ip netns exec red busybox ping -c 1 -W 2 10.10.0.2
