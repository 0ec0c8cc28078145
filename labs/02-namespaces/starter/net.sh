#!/bin/bash
# Usage: bash net.sh
# Print the names of the network interfaces in a NEW network namespace, one per line.
set -euo pipefail

# This lists YOUR interfaces (the host's): lo, eth0, docker0, …
ip -o link show | cut -d: -f2 | tr -d ' ' | cut -d@ -f1

# TODO: run the same pipeline inside `unshare --net sh -c '…'`. What is left? Is it up?
