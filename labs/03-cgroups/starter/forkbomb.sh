#!/bin/bash
# Usage: bash forkbomb.sh
# Start a fork bomb in a container that may have at most 50 processes, and show that the
# host survives. The last line this script prints must be:  exit status: N
set -uo pipefail

# The bomb: b calls itself twice, in the background, forever: 2, 4, 8, … processes.
# PID 1 is `sleep 2` (exec: no fork needed), so the container ends after 2 s: when PID 1 of
# a PID namespace exits, the kernel kills every other process in it.
BOMB='(b() { b | b & }; b) 2>/dev/null & exec sleep 2'

# TODO: add --pids-limit 50 to this command. The checker refuses to run a bomb without it —
#       and so should you: without a limit this takes your machine down.
# TODO: then delete the next two lines.
echo "TODO: add --pids-limit first" >&2
exit 1
minicontainer run --rm busybox sh -c "$BOMB"
echo "exit status: $?"
