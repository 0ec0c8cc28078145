#!/bin/bash
# Usage: bash names.sh
# Containers on the same network reach each other by name: start lab06-server (detached),
# then ping it BY NAME once from a second container. Remove the server at the end.
set -uo pipefail
minicontainer rm -f lab06-server >/dev/null 2>&1
trap 'minicontainer rm -f lab06-server >/dev/null 2>&1' EXIT
minicontainer run -d --name lab06-server busybox sleep 1000 > /dev/null

# TODO: from a second container (--rm), ping -c 1 -W 2 lab06-server. How does it know the
#       address? Look at its /etc/hosts.
