#!/usr/bin/env bash
# OCI runtime benchmark (issue 12): one hyperfine run, side by side on the same bundle.
#
#   mc-oci       minicontainer-oci run --bundle B ID     (create + start + wait + delete)
#   runc, crun   runc run / crun run of the same bundle
#   podman-runc  podman run --rm --network=none … with --runtime runc
#   podman-mc    the same with --runtime minicontainer-oci
#   py-floor     the launcher's interpreter, started as it starts it (python -I -S): no import
#   mc-imports   py-floor + importing what `run` imports (the CLI, the run sequence, the OCI
#                modules), nothing run: with py-floor, what every call costs before it works
#
# Targets (ratios of medians in the same run): mc-oci <= 1.0 runc; podman-mc <= 1.1 podman-runc.
# Then the same commands interleaved round by round (bench/interleave.py, BENCH_ROUNDS=15): on a
# shared machine hyperfine's per-command blocks can each meet a different load.
# Usage: sudo bench/oci.sh        (BENCH_* knobs: bench/lib.sh; results in $BENCH_OUT)
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
source "$(dirname "$0")/lib.sh"
need_tools
trap cleanup EXIT
OCI=${OCI:-$REPO/.venv/bin/minicontainer-oci}
[ -x "$OCI" ] || die "$OCI not found: make setup (pyproject's minicontainer-oci script)"
export MINICONTAINER_OCI_ROOT=$BENCH_DIR/oci-state      # never /run/minicontainer-oci

prepare_rootfs
make_bundle
start_crun_namespace
prepare_podman
"$OCI" run --bundle "$BUNDLE" mcb-oci || die "minicontainer-oci cannot run the bench bundle"

q() { printf '%q ' "$@"; }
# mc-imports: the paths the launcher adds to sys.path (minicontainer/oci/launcher.py), then the imports
PATHS=$("$PY" -c 'import sys; from minicontainer.oci.launcher import site_paths; print(site_paths(sys.executable))')
IMPORTS="import sys; sys.path += $PATHS; import minicontainer.oci.cli, minicontainer.oci.container, minicontainer.oci.control"
STAMP=$(date +%Y%m%d-%H%M%S)
JSON=$BENCH_OUT/oci-$STAMP.json
{
    echo "date: $(date -Is)"
    echo "commit: $(git -C "$REPO" log -1 --format='%h %s' 2>/dev/null || echo unknown)"
    echo "host: $(uname -srm), $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "tools: $(hyperfine --version), $(runc --version | head -1), $(crun --version | head -1), $(podman --version)"
    echo "crun: $CRUN_NOTE; hyperfine --warmup $BENCH_WARMUP --runs $BENCH_RUNS -N under ${PRIORITY[*]}"
} | tee "$BENCH_OUT/oci-$STAMP.machine.txt" >&2

ROWS=(                                                  # name, command (as hyperfine -N splits it)
    mc-oci "$(q "$OCI" run --bundle "$BUNDLE" mcb-oci)"
    runc "$(q runc run --bundle "$BUNDLE" mcb-runc)"
    crun "$(q "${CRUN[@]}" run --bundle "$BUNDLE" mcb-crun)"
    podman-runc "$(q "${PODMAN[@]}" "${PODMAN_RUN_FLAGS[@]}" "$PODMAN_IMAGE" true)"
    podman-mc "$(q "${PODMAN[@]}" "${PODMAN_RUN_FLAGS[@]/#runc/$OCI}" "$PODMAN_IMAGE" true)"
    py-floor "$(q "$PY" -I -S -c pass)"
    mc-imports "$(q "$PY" -I -S -c "$IMPORTS")"
)
NAMED=() PAIRS=()
for ((i = 0; i < ${#ROWS[@]}; i += 2)); do
    NAMED+=(-n "${ROWS[i]}" "${ROWS[i+1]}"); PAIRS+=("${ROWS[i]}=${ROWS[i+1]}")
done
REPORT=(--ref runc --ref crun --ref podman-runc
        --target 'mc-oci <= 1.0 runc' --target 'podman-mc <= 1.1 podman-runc')

"${PRIORITY[@]}" hyperfine -N --style basic --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" \
    --export-json "$JSON" "${NAMED[@]}" >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$BENCH_OUT/oci-$STAMP.machine.txt" >&2
"$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT[@]}" | tee "$BENCH_OUT/oci-$STAMP.txt"

# The cross-check: the same commands round-robin (bench/interleave.py), so that a change of the
# machine's load during the run is shared by all of them instead of landing on one block.
ROUNDS=${BENCH_ROUNDS:-15}
echo; echo "interleaved, $ROUNDS rounds (load average before: $(cut -d' ' -f1-3 /proc/loadavg)):"
"${PRIORITY[@]}" "$PY" "$BENCH_SRC/interleave.py" --rounds "$ROUNDS" --warmup 1 \
    --export-json "$BENCH_OUT/oci-$STAMP.interleaved.json" "${PAIRS[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$BENCH_SRC/report.py" "$BENCH_OUT/oci-$STAMP.interleaved.json" "${REPORT[@]}" |
    tee "$BENCH_OUT/oci-$STAMP.interleaved.txt"
