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

# TODO 1: add the restart policy on-failure:3 (--restart POLICY; it needs -d).
minicontainer run -d --name lab10-flaky --net none busybox sh -c 'echo start; exit 1' > /dev/null

# TODO 2: wait until RestartCount is 3 and the status is exited (poll inspect every 0.5 s,
#         at most 30 s), then print the two lines. `minicontainer logs lab10-flaky` shows each start.
