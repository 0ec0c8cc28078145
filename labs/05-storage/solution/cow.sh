#!/bin/bash
# Usage: bash cow.sh
# Copy-on-write: a container changes three things — it ADDS /data.txt, CHANGES /etc/passwd
# (appends a line) and DELETES /bin/vi. Then print what changed, as `minicontainer diff` lists it
# (A added, C changed, D deleted), and remove the container.
set -euo pipefail
minicontainer rm -f lab05-cow >/dev/null 2>&1 || true

# The image stays untouched: the first write to /etc/passwd copies it up into the container's
# upper directory; the deletion of /bin/vi is recorded there as a whiteout.
minicontainer run --name lab05-cow --net none busybox sh -c \
    'echo data > /data.txt; echo "lab:x:2000:2000::/tmp:/bin/sh" >> /etc/passwd; rm /bin/vi'

minicontainer diff lab05-cow
minicontainer rm lab05-cow >/dev/null
