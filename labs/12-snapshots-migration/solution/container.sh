#!/bin/bash
# Usage: bash container.sh
# Migrate a counting container cold: its state is only what it wrote to the volume lab12-data.
# Print:
#   count before: N           what the volume holds when the first container has stopped
#   container downtime: S s   from the stop until the second container runs
set -euo pipefail
counter='i=$(cat /data/count 2>/dev/null || echo 0); while :; do i=$((i+1)); echo $i >/data/count; sleep 1; done'

minicontainer run -d --net none --name lab12-counter -v lab12-data:/data busybox sh -c "$counter" >/dev/null
sleep 3
start=$(date +%s.%N)
minicontainer stop -t 1 lab12-counter >/dev/null
echo "count before: $(minicontainer run --rm --net none -v lab12-data:/data busybox cat /data/count)"
minicontainer run -d --net none --name lab12-counter-2 -v lab12-data:/data busybox sh -c "$counter" >/dev/null
end=$(date +%s.%N)
echo "container downtime: $(awk "BEGIN { printf \"%.2f\", $end - $start }") s"
sleep 2
