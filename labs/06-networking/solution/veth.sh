#!/bin/bash
# Usage: bash veth.sh
# Two network namespaces, red and blue, joined by a veth pair (a virtual cable); red pings blue.
# Everything is removed at the end (the trap), whatever happens.
set -euo pipefail
cleanup() { ip netns del red 2>/dev/null || true; ip netns del blue 2>/dev/null || true; }
trap cleanup EXIT
ip netns add red            # a named network namespace: only lo, and lo is down
ip netns add blue

# A veth pair: what goes into one end comes out of the other (veth(4)).
ip link add veth-red type veth peer name veth-blue
ip link set veth-red netns red
ip link set veth-blue netns blue
ip -n red addr add 10.10.0.1/24 dev veth-red
ip -n red link set veth-red up
ip -n blue addr add 10.10.0.2/24 dev veth-blue
ip -n blue link set veth-blue up

ip netns exec red busybox ping -c 1 -W 2 10.10.0.2
