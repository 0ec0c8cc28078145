#!/bin/bash
# Usage: bash oom.sh
# Run a container that tries to use 100 MB of memory while it may use only 32 MB.
# The last line this script prints must be:  exit status: N   (N: the container's exit status)
set -uo pipefail

# `head -c 100m /dev/zero | tail` makes tail hold 100 MB: it keeps the last 10 *lines*, and
# /dev/zero has no newline, so the whole stream is one line it must remember.
# TODO: limit the container's memory to 32 MB (Docker's flag: -m / --memory).
minicontainer run --rm busybox sh -c 'head -c 100m /dev/zero | tail > /dev/null'
echo "exit status: $?"
