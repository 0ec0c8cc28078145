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

minicontainer run -d --name lab10-heal --net none --restart always busybox sleep 1000 > /dev/null
old=$(minicontainer inspect -f '{{.State.Pid}}' lab10-heal)
echo "old pid: $old"

kill -9 "$old"                      # a crash, not a stop: the supervisor starts it again
new=$old
for _ in $(seq 60); do
    sleep 0.2
    new=$(minicontainer inspect -f '{{.State.Pid}}' lab10-heal)
    [ "$new" != "$old" ] && [ "$new" != 0 ] && break
done
echo "new pid: $new"
echo "restarts: $(minicontainer inspect -f '{{.RestartCount}}' lab10-heal)"
