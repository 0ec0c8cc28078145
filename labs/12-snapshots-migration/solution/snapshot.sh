#!/bin/bash
# Usage: bash snapshot.sh
# Take an internal snapshot "before" of lab12 (RAM + CPU + disk), let it run on, restore it. Print:
#   snapshot at tick: N     the last tick on the console right after the snapshot
#   after restore: M        the first tick printed after the restore
set -euo pipefail
root=${MINICONTAINER_ROOT:-/var/lib/minicontainer}
log=$root/vms/lab12/console.log
last_tick() { grep -ao 'tick [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2; }

minicontainer vm snapshot create lab12 before
echo "snapshot at tick: $(last_tick)"
sleep 4
minicontainer vm snapshot restore lab12 before
size=$(stat -c %s "$log")
# The first tick written after the restore: everything after byte $size of the log.
until after=$(tail -c +"$((size + 1))" "$log" | grep -ao 'tick [0-9]*' | head -n 1 | cut -d' ' -f2) && [ -n "$after" ]; do
    sleep 0.2
done
echo "after restore: $after"
minicontainer vm snapshot ls lab12
