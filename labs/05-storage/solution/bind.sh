#!/bin/bash
# Usage: bash bind.sh
# Share a host directory with a container, read-only: the container reads site/index.html
# and fails to write next to it. Print exactly two lines:
#   read: <the first line of index.html>
#   write: allowed|denied
set -uo pipefail
mkdir -p site
echo "hello from the host" > site/index.html

# A bind mount: the host's directory itself appears at /www (mount --bind), here read-only.
minicontainer run --rm --net none -v "$PWD/site:/www:ro" busybox sh -c '
    echo "read: $(head -n1 /www/index.html 2>/dev/null)"
    if touch /www/new 2>/dev/null; then echo "write: allowed"; else echo "write: denied"; fi'
