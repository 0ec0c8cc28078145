#!/bin/bash
# Usage: bash failover.sh
# HA: a power cut on node2 while a client keeps asking the Service. Apply web.yaml, wait for
# 6 ready replicas, start a request loop against the Service's ClusterIP, `node fail node2`,
# wait until all 6 are ready on the other nodes, stop the loop. Print:
#   failover: S         seconds from `node fail` until 6 are ready again elsewhere
#   failed: F of T      requests through the Service that failed, of all sent
set -uo pipefail
minicontainer apply -f web.yaml > /dev/null
ready() { minicontainer get pods -o wide | grep '^lab11-web-' | grep ' 1/1 .* Running '; }
for _ in $(seq 300); do [ "$(ready | wc -l)" = 6 ] && break; sleep 0.3; done

ip=$(minicontainer get svc lab11-web -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d.get("items") or [d])[0]["spec"]["clusterIP"])')
log=$(mktemp)
( while :; do wget -q -t 1 -T 1 -O /dev/null "http://$ip/" && echo ok || echo failed; sleep 0.1; done > "$log" ) &
loop=$!
sleep 1
start=$(date +%s.%N)
# TODO 1: cut node2's power (`minicontainer node fail --help`)
# TODO 2: wait until 6 replicas are ready again, none of them on node2 (the last column of
#         `get pods -o wide` is the node)
end=$(date +%s.%N)
sleep 1; kill "$loop"
echo "failover: $(awk "BEGIN { printf \"%.1f\", $end - $start }")"
echo "failed: $(grep -c failed "$log") of $(wc -l < "$log")"
rm -f "$log"
