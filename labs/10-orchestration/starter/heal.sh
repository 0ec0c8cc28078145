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

# TODO 1: pod=the first ready pod; its container is named "$pod-httpd":
#         pid=$(minicontainer inspect -f '{{.State.Pid}}' "$pod-httpd"); echo "killed: $pod"; kill -9 "$pid"
# TODO 2: wait until 3 are ready again, then print "restarts: N" (column 4 of the pod's line in
#         `minicontainer get pods`) and "running: $(ready | wc -l)"
