#!/bin/bash
# Usage: bash restart.sh
# A flaky service: it prints "start" and exits 1, every time. With a restart policy of
# on-failure:3 it is started again after each failure, at most 3 times. Wait until it has given
# up, then print:
#   restarts: N          (minicontainer inspect -f '{{.RestartCount}}' lab10-flaky)
#   status: STATUS       (… -f '{{.State.Status}}')
# Leave the container for the checker (it removes it).
set -uo pipefail
minicontainer rm -f lab10-flaky >/dev/null 2>&1

# The supervisor that runs a detached container watches PID 1: on a non-zero exit it starts the
# container again (with a growing delay), at most 3 times.
minicontainer run -d --name lab10-flaky --net none --restart on-failure:3 busybox sh -c 'echo start; exit 1' > /dev/null

for _ in $(seq 60); do
    state=$(minicontainer inspect -f '{{.RestartCount}} {{.State.Status}}' lab10-flaky)
    [ "$state" = "3 exited" ] && break
    sleep 0.2
done
echo "restarts: $(minicontainer inspect -f '{{.RestartCount}}' lab10-flaky)"
echo "status: $(minicontainer inspect -f '{{.State.Status}}' lab10-flaky)"
minicontainer logs lab10-flaky
