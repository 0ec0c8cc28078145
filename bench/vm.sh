#!/usr/bin/env bash
# Issue 18's speed figures for `minicontainer vm` next to a container's (bench/vm.py):
#   create + boot to the first console line, savevm, loadvm, live-migration downtime and total time
#   (QEMU's own numbers), QEMU's RSS; a container's `run -d` and its cold move (stop + start).
# Usage: sudo bench/vm.sh [--runs N]      (default 5; needs `make setup-test` for QEMU and the kernel)
set -euo pipefail
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
REPO=$(cd "$(dirname "$0")/.." && pwd)
exec nice -n -10 "$REPO/.venv/bin/python" "$REPO/bench/vm.py" "$@"
