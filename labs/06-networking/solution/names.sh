#!/bin/bash
# Usage: bash names.sh
# Containers on the same network reach each other by name: start lab06-server (detached),
# then ping it BY NAME once from a second container. Remove the server at the end.
set -uo pipefail
minicontainer rm -f lab06-server >/dev/null 2>&1
trap 'minicontainer rm -f lab06-server >/dev/null 2>&1' EXIT
minicontainer run -d --name lab06-server busybox sleep 1000 > /dev/null

# Both hang on the same bridge; the name comes from the /etc/hosts minicontainer writes for
# every container of the network (no DNS server involved).
minicontainer run --rm busybox sh -c 'grep lab06-server /etc/hosts; ping -c 1 -W 2 lab06-server'
