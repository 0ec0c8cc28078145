#!/bin/bash
# Usage: bash replicas.sh N
# Make exactly N replicas of a web service run: lab10-web-1 … lab10-web-N (detached, restart
# policy always). Start the ones that are missing, remove the ones beyond N, leave the others
# alone — a reconcile loop, as an orchestrator runs it. Print "running: N" at the end.
set -uo pipefail
WANT=${1:?usage: replicas.sh N}
SERVE='mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www'

# The names of the running replicas: column 2 of `minicontainer ps`, without the header line.
running() { minicontainer ps | tail -n +2 | tr -s ' ' | cut -d' ' -f2 | grep '^lab10-web-[0-9]*$' | sort -V; }

# TODO 1: for i in 1..WANT: if lab10-web-$i is not in $(running), start it:
#           minicontainer run -d --name lab10-web-$i --restart always busybox sh -c "$SERVE"
# TODO 2: for each running lab10-web-K with K > WANT: minicontainer rm -f lab10-web-K

echo "running: $(running | wc -l)"
