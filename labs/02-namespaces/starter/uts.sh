#!/bin/bash
# Usage: bash uts.sh
# In a new UTS namespace, set the hostname to "lab02" and print it. The host keeps its name.
set -euo pipefail

# TODO: wrap these two commands in `unshare --uts sh -c '…'` — without it, you would rename the host!
#         hostname lab02
#         hostname
echo "TODO: uts.sh is not written yet" >&2
exit 1
