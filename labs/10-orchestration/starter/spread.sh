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

# TODO: six requests, request k going to the ((k mod 3) + 1)-th address; collect the answers and
#       print them counted: … | sort | uniq -c
#       One request:  busybox wget -q -O - "http://$ip/"
for k in 1 2 3 4 5 6; do
    busybox wget -q -O - "http://$(head -n 1 <<<"$ips")/"       # always the first one…
done | sort | uniq -c
