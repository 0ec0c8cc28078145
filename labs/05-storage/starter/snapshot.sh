#!/bin/bash
# Usage: bash snapshot.sh
# Leave behind a STOPPED container lab05-snap whose /etc/motd says "version 1" again after it
# was changed to "version 2": snapshot, change, roll back. (The checker looks at the container
# and its snapshot v1, then removes it.)
set -euo pipefail
minicontainer rm -f lab05-snap >/dev/null 2>&1 || true

minicontainer run -d --name lab05-snap --net none busybox sh -c 'echo "version 1" > /etc/motd; exec sleep 1000'
sleep 0.5

# TODO 1: take a snapshot named v1           (minicontainer snapshot create CONTAINER TAG)
# TODO 2: change /etc/motd to "version 2"    (minicontainer exec CONTAINER sh -c '…')
# TODO 3: stop the container                 (minicontainer stop -t 1 CONTAINER)
# TODO 4: roll back to v1                    (minicontainer snapshot restore CONTAINER TAG)
minicontainer diff lab05-snap
