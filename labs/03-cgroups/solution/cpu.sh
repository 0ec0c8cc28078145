#!/bin/bash
# Usage: bash cpu.sh
# Two containers burn CPU for 3 seconds at the same time; "heavy" should get twice the CPU
# time of "light". Each prints one line: LABEL TICKS (CPU time in clock ticks, 1/100 s).
set -uo pipefail

# Inside: `yes > /dev/null` burns CPU; after 3 s read its utime+stime (fields 14, 15 of
# /proc/PID/stat, see proc(5)) and stop it.
BURN='yes > /dev/null & pid=$!; sleep 3; set -- $(cut -d" " -f14,15 /proc/$pid/stat); kill $pid; echo "$LABEL $(( $1 + $2 ))"'

# Same CPU, weights 1024 : 512 (cpu.shares in v1, cpu.weight 100 : 50 in v2): when both want
# the CPU, the scheduler gives them 2/3 and 1/3. Alone, either would get all of it.
minicontainer run --rm --cpuset-cpus 0 --cpu-shares 1024 -e LABEL=heavy busybox sh -c "$BURN" &
minicontainer run --rm --cpuset-cpus 0 --cpu-shares 512 -e LABEL=light busybox sh -c "$BURN" &
wait
