#!/bin/bash
# Usage: bash pid.sh
# In a new PID namespace, print "my PID: N" and then the processes you can see (ps -o pid,comm).
set -euo pipefail

# --fork: unshare(CLONE_NEWPID) does not move the caller, only its next child becomes PID 1.
# --mount-proc: ps reads /proc, and the old /proc shows the old namespace's processes.
unshare --pid --fork --mount-proc sh -c 'echo "my PID: $$"; ps -o pid,comm'
