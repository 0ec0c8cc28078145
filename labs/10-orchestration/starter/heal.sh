#!/bin/bash
# Usage: bash heal.sh
# Self-healing: a service with the restart policy "always" crashes (its PID 1 is killed from
# the host with SIGKILL, as the OOM killer would) and comes back by itself. Print:
#   old pid: P          PID 1 of lab10-heal before the crash (host PID)
#   new pid: Q          after it came back
#   restarts: N
# Leave the container running for the checker (it removes it).
set -uo pipefail
minicontainer rm -f lab10-heal >/dev/null 2>&1

# TODO 1: add --restart always
minicontainer run -d --name lab10-heal --net none busybox sleep 1000 > /dev/null
old=$(minicontainer inspect -f '{{.State.Pid}}' lab10-heal)
echo "old pid: $old"

# TODO 2: crash it: kill -9 "$old"   (not `minicontainer kill`/`stop`: a container stopped on
#         purpose stays stopped, as with Docker)
# TODO 3: wait (poll, at most 30 s) until it runs again with another PID; print new pid and restarts.
