#!/usr/bin/env bash
# What resource limits cost at start (issue 3): one hyperfine run of
#   mc-cli        minicontainer run --rm busybox true
#   mc-limits     minicontainer run --rm -m 64m --pids-limit 64 busybox true
#   runc(-limits) runc run, without and with the same limits in config.json's linux.resources
#   crun(-limits) the same with crun
#   api(-limits)  per-container time of the library API (api_loop.py), containers without and
#                 with the limits alternating in one process (load hits both alike)
# so the price of creating, writing and removing the memory and pids cgroups shows next to what
# the OCI runtimes pay for the same thing. Skips the minicontainer rows (with a message) while the
# CLI has no -m/--pids-limit yet.
# Usage: sudo bench/limits.sh       (bench/setup.sh installs the peers; BENCH_* knobs: bench/lib.sh)
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
source "$(dirname "$0")/lib.sh"
need_tools
trap cleanup EXIT

LIMIT_FLAGS=(-m 64m --pids-limit 64)
# The same limits in OCI terms: memory.limit in bytes, pids.limit a count.
LIMIT_RESOURCES='{"memory": {"limit": 67108864}, "pids": {"limit": 64}}'

prepare_rootfs
make_bundle
make_bundle "$LIMIT_RESOURCES" "$BENCH_DIR/bundle-limits"
start_crun_namespace
prepare_minicontainer

API_JSON=$BENCH_OUT/limits-api.jsonl
: >"$API_JSON"
q() { printf '%q ' "$@"; }
cmds=()
add() { cmds+=(-n "$1" "$2"); }
if [ "$MC_OK" != 0 ]; then
    if "$MC" run --rm "${LIMIT_FLAGS[@]}" busybox true 2>"$BENCH_DIR/limits.err"; then
        add mc-cli "$(q "$MC" run --rm busybox true)"
        add mc-limits "$(q "$MC" run --rm "${LIMIT_FLAGS[@]}" busybox true)"
        if [ "$MC_OK" = 1 ]; then
            add api-loop "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$BENCH_N" "${LIMIT_FLAGS[@]}" \
                              --also-without-limits --json "$API_JSON")"
        fi
    else
        log "SKIPPING minicontainer rows: 'minicontainer run --rm ${LIMIT_FLAGS[*]} busybox true' failed: $(tail -1 "$BENCH_DIR/limits.err")"
    fi
else
    log "SKIPPING minicontainer rows: $MC_WHY"
fi
add runc "$(q runc run --bundle "$BUNDLE" mcb-runc)"
add runc-limits "$(q runc run --bundle "$BENCH_DIR/bundle-limits" mcb-runc)"
add crun "$(q "${CRUN[@]}" run --bundle "$BUNDLE" mcb-crun)"
add crun-limits "$(q "${CRUN[@]}" run --bundle "$BENCH_DIR/bundle-limits" mcb-crun)"

STAMP=$(date +%Y%m%d-%H%M%S)
JSON=$BENCH_OUT/limits-$STAMP.json
"${PRIORITY[@]}" hyperfine -N --style basic --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" \
    --export-json "$JSON" "${cmds[@]}" >&2
cp "$JSON" "$BENCH_OUT/limits.json"
# Provisional targets until issue 3 sets its own: limits do not make a start noticeably slower,
# and the library with limits stays within runc's whole CLI run with the same limits.
REPORT_ARGS=(--ref runc-limits --ref mc-cli --ref api
             --per-container "api=$API_JSON@busybox" --per-container "api-limits=$API_JSON@busybox+limits"
             --target 'mc-limits ~ mc-cli 10%'
             --target 'api-limits ~ api 10%'
             --target 'api-limits <= 1.0 runc-limits')
echo
"$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT_ARGS[@]}" | tee "$BENCH_OUT/limits-$STAMP.txt"
"$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT_ARGS[@]}" --markdown >"$BENCH_OUT/limits-$STAMP.md"
log "results: $JSON (+ .txt, .md) in $BENCH_OUT"
