#!/bin/bash
# Usage: bash uts.sh
# In a new UTS namespace, set the hostname to "lab02" and print it. The host keeps its name.
set -euo pipefail

# A new UTS namespace starts as a copy of ours; a change inside stays inside (uts_namespaces(7)).
unshare --uts sh -c 'hostname lab02; hostname'
