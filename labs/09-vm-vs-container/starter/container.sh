#!/bin/bash
# Usage: bash container.sh
# Start 5 containers, one after another, and time each (start → its line printed → gone). Print:
#   run 1: S   …   run 5: S        seconds, e.g. 0.31
#   median: S                      the middle one of the five (sort -n, then the 3rd line)
#   kernel: VERSION                `uname -r` inside the container
set -uo pipefail
times=$(mktemp)
trap 'rm -f "$times"' EXIT

for i in 1 2 3 4 5; do
    start=$(date +%s.%N)
    minicontainer run --rm --net none busybox echo "hello from a container" > /dev/null
    end=$(date +%s.%N)
    awk "BEGIN { printf \"%.3f\n\", $end - $start }" >> "$times"
done

# TODO 1: print "run N: S" for each line of $times        (cat -n, or a while-read loop)
# TODO 2: print "median: S": sort -n "$times" | head -n 3 | tail -n 1
# TODO 3: print "kernel: …" with `uname -r` run inside a container
