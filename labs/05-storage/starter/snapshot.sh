#!/bin/bash
# Usage: bash snapshot.sh
# Leave the container lab05-snap RUNNING again, rolled back: /etc/motd said "version 1" when you
# took the snapshot v1, then "version 2"; after the rollback and `start` it says "version 1".
# (The checker looks at the running container and its snapshot v1, then removes it.)
set -euo pipefail
minicontainer rm -f lab05-snap >/dev/null 2>&1 || true

minicontainer run -d --name lab05-snap --net none busybox sleep 1000
minicontainer exec lab05-snap sh -c 'echo "version 1" > /etc/motd'

# TODO 1: take a snapshot named v1           (minicontainer snapshot create CONTAINER TAG)
# TODO 2: change /etc/motd to "version 2"    (minicontainer exec CONTAINER sh -c '…')
# TODO 3: stop the container                 (minicontainer stop -t 1 CONTAINER)
# TODO 4: roll back to v1                    (minicontainer snapshot restore CONTAINER TAG)
# TODO 5: start the same container again     (minicontainer start CONTAINER)
minicontainer exec lab05-snap cat /etc/motd
minicontainer diff lab05-snap
