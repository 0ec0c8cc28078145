#!/bin/bash
# Usage: bash container.sh
# Migrate a counting container cold: its state is only what it wrote to the volume lab12-data.
# Print:
#   count before: N           what the volume holds when the first container has stopped
#   container downtime: S s   from the stop until the second container runs
set -euo pipefail
counter='i=$(cat /data/count 2>/dev/null || echo 0); while :; do i=$((i+1)); echo $i >/data/count; sleep 1; done'

# TODO 1: start the counter: minicontainer run -d --net none --name lab12-counter -v lab12-data:/data busybox sh -c "$counter"
# TODO 2: let it count a few seconds, then start=$(date +%s.%N) and stop it (minicontainer stop -t 1 …)
# TODO 3: print "count before: N" (cat /data/count in a --rm container with the same volume)
# TODO 4: start lab12-counter-2 the same way ("the other host"), end=$(date +%s.%N),
#         print "container downtime: S s" (awk "BEGIN { printf \"%.2f\", $end - $start }")
