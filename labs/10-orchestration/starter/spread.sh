#!/bin/bash
# Usage: bash spread.sh
# One address for three replicas: the Service lab10-web. From a client container (not one of the
# replicas), send six requests to the Service's ClusterIP (column CLUSTER-IP of `get svc`) and
# count the answers per replica: `sort | uniq -c` (each replica answers with its hostname).
set -uo pipefail
bash scale.sh 3 > /dev/null
# The Service's endpoints: the ready pods its address leads to (a pod just ready may take a moment).
for _ in $(seq 50); do [ "$(minicontainer get endpoints lab10-web | tail -n1 | tr ',' '\n' | grep -c :80)" = 3 ] && break; sleep 0.2; done

# TODO 1: ip=the CLUSTER-IP column of `minicontainer get svc lab10-web`
# TODO 2: minicontainer run --rm busybox sh -c "for k in 1 2 3 4 5 6; do wget -qO- http://$ip/; done"
#         and pipe its output through sort | uniq -c
