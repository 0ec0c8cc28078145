#!/bin/bash
# Usage: bash snapshot.sh
# Take an internal snapshot "before" of lab12 (RAM + CPU + disk), let it run on, restore it. Print:
#   snapshot at tick: N     the last tick on the console right after the snapshot
#   after restore: M        the first tick printed after the restore
set -euo pipefail
root=${MINICONTAINER_ROOT:-/var/lib/minicontainer}
log=$root/vms/lab12/console.log
last_tick() { grep -ao 'tick [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2; }

# TODO 1: minicontainer vm snapshot create lab12 before; then print "snapshot at tick: $(last_tick)"
# TODO 2: let the VM run on for a few seconds (sleep 4)
# TODO 3: minicontainer vm snapshot restore lab12 before
# TODO 4: remember the log's size first (stat -c %s "$log"), then wait for the first "tick N"
#         after that byte (tail -c +$((size + 1)) "$log") and print "after restore: N"
