#!/bin/bash
# Usage: bash compare-ns.sh
# Which namespaces does a minicontainer container NOT share with the host? Print one line per
# namespace, "NAME same" or "NAME different", for: cgroup ipc mnt net pid time user uts
set -euo pipefail
NAMES="cgroup ipc mnt net pid time user uts"

# Inside a container: the same links, read by the container's own process.
inside=$(minicontainer run --rm busybox sh -c "for n in $NAMES; do readlink /proc/self/ns/\$n; done")

for n in $NAMES; do
    host=$(readlink /proc/self/ns/$n)          # e.g. net:[4026531840]
    if grep -qxF "$host" <<<"$inside"; then
        echo "$n same"
    else
        echo "$n different"
    fi
done
