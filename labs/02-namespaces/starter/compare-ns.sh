#!/bin/bash
# Usage: bash compare-ns.sh
# Which namespaces does a minicontainer container NOT share with the host? Print one line per
# namespace, "NAME same" or "NAME different", for: cgroup ipc mnt net pid time user uts
set -euo pipefail
NAMES="cgroup ipc mnt net pid time user uts"

# The host's view. `readlink /proc/self/ns/net` prints e.g. net:[4026531840]: the number is the
# namespace's inode. Two processes are in the same namespace exactly when the numbers are equal.
for n in $NAMES; do
    echo "host: $(readlink /proc/self/ns/$n)"
done

# TODO 1: get the same list from inside a container:
#           minicontainer run --rm busybox sh -c '…'
#         (busybox's readlink takes one file at a time: loop over the names inside.)
# TODO 2: for each NAME print "NAME same" or "NAME different".
