#!/bin/bash
# Usage: bash cpu.sh
# Two containers burn CPU for 3 seconds at the same time; "heavy" should get twice the CPU
# time of "light". Each prints one line: LABEL TICKS (CPU time in clock ticks, 1/100 s).
set -uo pipefail

# Inside: `yes > /dev/null` burns CPU; after 3 s read its utime+stime (fields 14, 15 of
# /proc/PID/stat, see proc(5)) and stop it.
BURN='yes > /dev/null & pid=$!; sleep 3; set -- $(cut -d" " -f14,15 /proc/$pid/stat); kill $pid; echo "$LABEL $(( $1 + $2 ))"'

# TODO 1: give heavy --cpu-shares 1024 and light --cpu-shares 512.
# TODO 2: shares only matter when the two *compete*: pin both to the same CPU (--cpuset-cpus 0).
minicontainer run --rm -e LABEL=heavy busybox sh -c "$BURN" &
minicontainer run --rm -e LABEL=light busybox sh -c "$BURN" &
wait
