#!/bin/bash
# Usage: bash seccomp.sh
# Creating a user namespace needs no capability at all — yet `unshare -U` fails in a default
# container: the seccomp filter blocks the system call. Print:
#   default: allowed|denied
#   unconfined: allowed|denied      (the same, without the seccomp filter)
set -uo pipefail
TRY='unshare -U true 2>/dev/null && echo allowed || echo denied'

echo "default: $(minicontainer run --rm --net none busybox sh -c "$TRY")"
# The filter is a BPF program the kernel runs on every system call; unshare(2) gets EPERM
# before it starts. Without it, the same process may create the namespace.
echo "unconfined: $(minicontainer run --rm --net none --security-opt seccomp=unconfined busybox sh -c "$TRY")"
