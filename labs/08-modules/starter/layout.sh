#!/bin/bash
# Usage: bash layout.sh
# Print one word: the cgroup layout of this machine — unified, hybrid or legacy
# (the same as the "layout" line of `minicontainer doctor`).
#   unified   /sys/fs/cgroup is a cgroup2 file system
#   hybrid    /sys/fs/cgroup is a tmpfs of v1 hierarchies, AND a cgroup2 is mounted at /sys/fs/cgroup/unified
#   legacy    only v1 hierarchies
set -euo pipefail

# stat -f prints the type of the file system a path is on (cgroup2fs, tmpfs, …).
stat -fc %T /sys/fs/cgroup
# TODO: turn that into unified / hybrid / legacy (look at /sys/fs/cgroup/unified as well).
