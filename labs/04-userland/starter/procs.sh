#!/bin/bash
# Usage: bash procs.sh
# In ONE container, start three `sleep 30` in the background, then print how many sleep
# processes run in the container: one line with just the number (it must be 3).
set -euo pipefail

# TODO: this counts too many. Why? Run `ps` alone in the container (sh instead of the
#       pipeline) and look at every line that contains the word sleep.
#       Fix the count: let ps print only the command names (ps -o comm) and match whole
#       lines (grep -x), or count with grep -c.
minicontainer run --rm lab04-app sh -c '
    sleep 30 & sleep 30 & sleep 30 &
    sleep 1                            # give them a moment to start
    ps | grep sleep | wc -l'
