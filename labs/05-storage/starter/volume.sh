#!/bin/bash
# Usage: bash volume.sh
# Persistent data: two containers, one after the other, each adds 1 to a counter in
# /data/count. The second must see the first one's count, although both are removed (--rm).
# Print the final count as the last line:  count: 2
set -euo pipefail
minicontainer volume rm lab05-data >/dev/null 2>&1 || true     # start from zero

COUNT='n=$(cat /data/count 2>/dev/null || echo 0); echo $((n + 1)) > /data/count; cat /data/count'
# TODO: mount a named volume lab05-data at /data in both containers (-v NAME:/data).
#       Without it, /data is in each container's own upper directory — gone with --rm.
minicontainer run --rm --net none busybox sh -c "mkdir -p /data; $COUNT" > /dev/null
echo "count: $(minicontainer run --rm --net none busybox sh -c "mkdir -p /data; $COUNT")"
