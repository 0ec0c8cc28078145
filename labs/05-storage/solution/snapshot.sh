#!/bin/bash
# Usage: bash snapshot.sh
# Leave behind a STOPPED container lab05-snap whose /etc/motd says "version 1" again after it
# was changed to "version 2": snapshot, change, roll back. (The checker looks at the container
# and its snapshot v1, then removes it.)
set -euo pipefail
minicontainer rm -f lab05-snap >/dev/null 2>&1 || true

minicontainer run -d --name lab05-snap --net none busybox sh -c 'echo "version 1" > /etc/motd; exec sleep 1000'
sleep 0.5

minicontainer snapshot create lab05-snap v1              # a copy of the upper directory
minicontainer exec lab05-snap sh -c 'echo "version 2" > /etc/motd'
minicontainer stop -t 1 lab05-snap                       # restore wants it stopped
minicontainer snapshot restore lab05-snap v1             # the copy becomes the upper directory again
minicontainer diff lab05-snap
