#!/bin/bash
# Usage: bash cow.sh
# Copy-on-write: a container changes three things — it ADDS /data.txt, CHANGES /etc/passwd
# (appends a line) and DELETES /bin/vi. Then print what changed, as `minicontainer diff` lists it
# (A added, C changed, D deleted), and remove the container.
set -euo pipefail
minicontainer rm -f lab05-cow >/dev/null 2>&1 || true

# No --rm: the container's files must outlive its process, so we can look at them.
# TODO 1: replace `true` by a shell command that makes the three changes.
minicontainer run --name lab05-cow --net none busybox true

# TODO 2: print the container's changes (minicontainer diff CONTAINER). Look where they live:
#         minicontainer inspect lab05-cow | grep -A3 -i upper
minicontainer rm lab05-cow >/dev/null
