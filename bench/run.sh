#!/usr/bin/env bash
# All the benchmarks, one after another (what `make bench` runs):
#   bench/setup.sh        install hyperfine, runc, crun, podman when missing
#   bench/start.sh        start time side by side + targets               (issue 2)
#   bench/importtime.sh   where the CLI's start-up goes, module by module (issue 2)
#   bench/limits.sh       what -m / --pids-limit add to a start           (issue 3)
#   bench/network.sh      --net bridge vs none vs podman's default network (issue 6)
# The scripts share one work directory (kept between them, removed at the end); the results
# stay in $BENCH_OUT (/var/tmp/mc-bench-results). Knobs: see bench/lib.sh.
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"                    # records the host's network state before any run
"$here/setup.sh"
status=0
for script in start.sh importtime.sh limits.sh network.sh; do
    echo "=== bench/$script"
    BENCH_KEEP=1 "$here/$script" || { status=$?; echo "bench/$script failed (exit $status)" >&2; }
    echo
done
cleanup
exit $status
