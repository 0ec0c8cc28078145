#!/bin/bash
# Usage: bash mnt.sh
# In a new mount namespace: mount a tmpfs on /mnt, write /mnt/hello.txt, print it.
# The host must not see the tmpfs or the file afterwards.
set -euo pipefail

# The new namespace gets a copy of our mount table; with private propagation nothing flows back.
# The tmpfs disappears when the namespace's last process exits.
unshare --mount --propagation private sh -c '
    mount -t tmpfs tmpfs /mnt
    echo "only in my namespace" > /mnt/hello.txt
    cat /mnt/hello.txt'
