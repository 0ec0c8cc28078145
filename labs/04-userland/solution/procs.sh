#!/bin/bash
# Usage: bash procs.sh
# In ONE container, start three `sleep 30` in the background, then print how many sleep
# processes run in the container: one line with just the number (it must be 3).
set -euo pipefail

# `ps | grep sleep` also lists the grep itself ("grep sleep" contains "sleep"): 4.
# ps -o comm prints only the program names; grep -x matches whole lines: the three sleeps.
# (When the container's PID 1 exits, the kernel kills the sleeps: no need to wait 30 s.)
minicontainer run --rm lab04-app sh -c '
    sleep 30 & sleep 30 & sleep 30 &
    sleep 1                            # give them a moment to start
    ps -o comm | grep -x sleep | wc -l'
