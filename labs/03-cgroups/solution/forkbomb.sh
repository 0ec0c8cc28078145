#!/bin/bash
# Usage: bash forkbomb.sh
# Start a fork bomb in a container that may have at most 50 processes, and show that the
# host survives. The last line this script prints must be:  exit status: N
set -uo pipefail

# The bomb: b calls itself twice, in the background, forever: 2, 4, 8, … processes.
# PID 1 is `sleep 2` (exec: no fork needed), so the container ends after 2 s: when PID 1 of
# a PID namespace exits, the kernel kills every other process in it.
BOMB='(b() { b | b & }; b) 2>/dev/null & exec sleep 2'

# --pids-limit 50 writes 50 to pids.max: the 51st fork() in the group fails with EAGAIN.
# The bomb stops growing; everything outside the group forks as usual.
minicontainer run --rm --pids-limit 50 busybox sh -c "$BOMB"
echo "exit status: $?"
