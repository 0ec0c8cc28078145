#!/bin/bash
# Usage: bash netadmin.sh
# Changing a network interface needs CAP_NET_ADMIN, which a default container lacks. Print:
#   default: allowed|denied
#   net_admin: allowed|denied       (the same command with that one capability added)
set -uo pipefail
TRY='ip link set lo mtu 1400 2>/dev/null && echo allowed || echo denied'

echo "default: $(minicontainer run --rm --net none busybox sh -c "$TRY")"
# TODO: add exactly the one capability it needs (--cap-add NAME, without the CAP_ prefix).
echo "net_admin: $(minicontainer run --rm --net none busybox sh -c "$TRY")"
