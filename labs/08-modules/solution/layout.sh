#!/bin/bash
# Usage: bash layout.sh
# Print one word: the cgroup layout of this machine — unified, hybrid or legacy
# (the same as the "layout" line of `minicontainer doctor`).
#   unified   /sys/fs/cgroup is a cgroup2 file system
#   hybrid    /sys/fs/cgroup is a tmpfs of v1 hierarchies, AND a cgroup2 is mounted at /sys/fs/cgroup/unified
#   legacy    only v1 hierarchies
set -euo pipefail

if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo unified
elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then
    echo hybrid
else
    echo legacy
fi
