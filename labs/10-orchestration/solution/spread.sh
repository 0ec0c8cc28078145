#!/bin/bash
# Usage: bash spread.sh
# Three replicas (replicas.sh 3), six requests, spread round-robin over them — a load balancer
# in a few lines. Print how many answers each replica gave: `sort | uniq -c` of the answers
# (each replica answers with its hostname).
set -uo pipefail
bash replicas.sh 3 > /dev/null
sleep 0.5                                         # httpd needs a moment to listen

# Each replica's address on the bridge network:
ips=$(for i in 1 2 3; do minicontainer inspect -f '{{.NetworkSettings.ip}}' "lab10-web-$i"; done)

# Round robin: request k goes to replica (k mod 3) + 1. More replicas, more capacity:
# "Höhere Last = mehr Pods".
for k in 1 2 3 4 5 6; do
    ip=$(sed -n "$(( k % 3 + 1 ))p" <<<"$ips")
    busybox wget -q -O - "http://$ip/"
done | sort | uniq -c
