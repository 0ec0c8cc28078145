#!/bin/bash
# Usage: bash heal.sh
# Self-healing: apply web.yaml, wait for 3 Running replicas, then kill -9 the PID 1 of one
# replica's container from the host (a crash, as the OOM killer would cause). The controller
# starts the container again in the same pod. Print:
#   killed: POD         the pod whose container you killed
#   restarts: N         its RESTARTS afterwards (kubectl's column)
#   running: 3          the replicas Running again
set -uo pipefail
minicontainer apply -f web.yaml > /dev/null

# The pods of lab10-web that are Running with READY 1/1: column 1 of `get pods`.
ready() { minicontainer get pods | grep '^lab10-web-' | grep ' 1/1 .* Running ' | cut -d' ' -f1; }
for _ in $(seq 300); do [ "$(ready | wc -l)" = 3 ] && break; sleep 0.3; done

pod=$(ready | head -n1)
pid=$(minicontainer inspect -f '{{.State.Pid}}' "$pod-httpd")   # the container of pod P is P-httpd
echo "killed: $pod"
kill -9 "$pid"

sleep 0.5
for _ in $(seq 100); do [ "$(ready | wc -l)" = 3 ] && break; sleep 0.2; done
echo "restarts: $(minicontainer get pods | grep "^$pod " | tr -s ' ' | cut -d' ' -f4)"
echo "running: $(ready | wc -l)"
