#!/bin/bash
# Usage: bash pid.sh
# In a new PID namespace, print "my PID: N" and then the processes you can see (ps -o pid,comm).
set -euo pipefail

# This runs in YOUR PID namespace: a large PID, and ps shows every process of the host.
sh -c 'echo "my PID: $$"; ps -o pid,comm | head -5'

# TODO: run the same `sh -c '…'` with `unshare --pid --fork --mount-proc`.
#       Why --fork?  Why --mount-proc?  (unshare(1), pid_namespaces(7))
