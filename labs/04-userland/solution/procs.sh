#!/bin/bash
# Usage: bash procs.sh
# In ONE container, start three `sleep 30` in the background, then print how many sleep
# processes run in the container: one line with just the number (it must be 3).
set -euo pipefail

# `ps | grep sleep` counts every line with "sleep" in it: the three sleeps, but also the
# container's shell (its command line `sh -c '… sleep 30 …'` holds the word), and the pipeline's
# own ps, grep and wc — busybox sh forks them as copies of itself, and until one has called
# execve, ps shows it with the shell's command line ("{ps} sh -c …"); grep's own command line,
# `grep sleep`, holds the word anyway. Mostly 7; 6 or 5 when ps reads /proc before the
# pipeline's other members have started (a race: the count is not even stable).
# ps -o comm prints only the program names; grep -x matches whole lines: the three sleeps.
# (When the container's PID 1 exits, the kernel kills the sleeps: no need to wait 30 s.)
minicontainer run --rm lab04-app sh -c '
    sleep 30 & sleep 30 & sleep 30 &
    sleep 1                            # give them a moment to start
    ps -o comm | grep -x sleep | wc -l'
