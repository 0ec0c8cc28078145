#!/bin/bash
# Usage: bash migrate.sh
# Compute migration, cold: move the first lab11-web pod on node1 to node3. Its writable layer,
# its volume and its name go with it; `migrate` prints the downtime. Print:
#   moved: POD          the pod you moved
# and migrate's own line (… migrated node1 → node3: downtime …).
set -euo pipefail
pod=$(minicontainer get pods -o wide | awk '$1 ~ /^lab11-web-/ && $NF == "node1" {print $1; exit}')
echo "moved: $pod"
minicontainer migrate "pod/$pod" --to node3
