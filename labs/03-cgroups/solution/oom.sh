#!/bin/bash
# Usage: bash oom.sh
# Run a container that tries to use 100 MB of memory while it may use only 32 MB.
# The last line this script prints must be:  exit status: N   (N: the container's exit status)
set -uo pipefail

# -m 32m writes 33554432 to memory.max (v2) or memory.limit_in_bytes (v1). When the group is
# over it and nothing can be reclaimed, the kernel's OOM killer kills a process *in the group*
# (SIGKILL), not some random process on the host: 128 + 9 = 137.
minicontainer run --rm -m 32m busybox sh -c 'head -c 100m /dev/zero | tail > /dev/null'
echo "exit status: $?"
