#!/bin/bash
# Usage: bash net.sh
# Print the names of the network interfaces in a NEW network namespace, one per line.
set -euo pipefail

# A new network namespace has its own interfaces, routes, firewall and ports: just `lo`, down.
unshare --net sh -c "ip -o link show | cut -d: -f2 | tr -d ' ' | cut -d@ -f1"
