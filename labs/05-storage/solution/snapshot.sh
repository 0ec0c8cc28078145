#!/bin/bash
# Usage: bash snapshot.sh
# Leave the container lab05-snap RUNNING again, rolled back: /etc/motd said "version 1" when you
# took the snapshot v1, then "version 2"; after the rollback and `start` it says "version 1".
# (The checker looks at the running container and its snapshot v1, then removes it.)
set -euo pipefail
minicontainer rm -f lab05-snap >/dev/null 2>&1 || true

minicontainer run -d --name lab05-snap --net none busybox sleep 1000
minicontainer exec lab05-snap sh -c 'echo "version 1" > /etc/motd'

minicontainer snapshot create lab05-snap v1              # a copy of the upper directory
minicontainer exec lab05-snap sh -c 'echo "version 2" > /etc/motd'
minicontainer stop -t 1 lab05-snap                       # restore wants it stopped
minicontainer snapshot restore lab05-snap v1             # the copy becomes the upper directory again
minicontainer start lab05-snap                           # the same container, on the restored files
minicontainer exec lab05-snap cat /etc/motd
minicontainer diff lab05-snap
