#!/bin/bash
# Usage: bash seccomp.sh
# Creating a user namespace needs no capability at all — yet `unshare -U` fails in a default
# container: the seccomp filter blocks the system call. Print:
#   default: allowed|denied
#   unconfined: allowed|denied      (the same, without the seccomp filter)
set -uo pipefail
TRY='unshare -U true 2>/dev/null && echo allowed || echo denied'

echo "default: $(minicontainer run --rm --net none busybox sh -c "$TRY")"
# TODO: run it without the filter: --security-opt seccomp=unconfined
echo "unconfined: $(minicontainer run --rm --net none busybox sh -c "$TRY")"
