#!/bin/bash
# Usage: bash bind.sh
# Share a host directory with a container, read-only: the container reads site/index.html
# and fails to write next to it. Print exactly two lines:
#   read: <the first line of index.html>
#   write: allowed|denied
set -uo pipefail
mkdir -p site
echo "hello from the host" > site/index.html

# TODO: bind-mount $PWD/site at /www, read-only (-v HOST_DIR:CTR_DIR:ro).
minicontainer run --rm --net none busybox sh -c '
    echo "read: $(head -n1 /www/index.html 2>/dev/null)"
    if touch /www/new 2>/dev/null; then echo "write: allowed"; else echo "write: denied"; fi'
