#!/usr/bin/env bash
# Start-time benchmark (issue 2): one hyperfine run, every command side by side on the same
# busybox rootfs, then bench/report.py prints medians, ratios and the targets' PASS/MISS.
#
#   mc-cli       minicontainer run --rm busybox true               (the CLI, whole process)
#   mc-none      minicontainer run --rm --net none busybox true    (no bridge/veth: like podman's)
#   mc-big       minicontainer run --rm busybox-big true           (same, ~200 MB / 20 000-file image)
#   mc-help      minicontainer --help                              (interpreter + CLI imports, no container)
#   api-loop     api_loop.py -n N: N containers via the library, one process
#   api          per-container median measured inside api_loop.py (perf_counter), all runs pooled
#   api-loop-none, api-none   the same with net="none"
#   api-sizes    api_loop.py alternating busybox and busybox-big container by container, N/2 each:
#                api-small / api-big, the per-container medians (load hits both images alike)
#   runc, crun   `runc run` / `crun run` of an OCI bundle on the same rootfs
#   podman       podman run --rm --network=none … (runc; private store under $BENCH_DIR)
#   python3      /usr/bin/python3 -c pass (the interpreter the venv uses); venv-python: .venv's
#
# Usage: sudo bench/start.sh        (bench/setup.sh installs the peers; BENCH_* knobs: bench/lib.sh)
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
source "$(dirname "$0")/lib.sh"
need_tools
trap cleanup EXIT

prepare_rootfs
prepare_big_tar
make_bundle
start_crun_namespace
prepare_podman
prepare_minicontainer busybox-big

q() { printf '%q ' "$@"; }              # one command line for hyperfine -N (shell-word quoting)
cmds=()
add() { cmds+=(-n "$1" "$2"); }

API_JSON=$BENCH_OUT/api.jsonl; API_NONE_JSON=$BENCH_OUT/api-none.jsonl
SIZES_JSON=$BENCH_OUT/api-sizes.jsonl
: >"$API_JSON"; : >"$API_NONE_JSON"; : >"$SIZES_JSON"
if [ "$MC_OK" = 1 ] || [ "$MC_OK" = cli ]; then
    add mc-cli "$(q "$MC" run --rm busybox true)"
    add mc-none "$(q "$MC" run --rm --net none busybox true)"
    add mc-big "$(q "$MC" run --rm busybox-big true)"
    add mc-help "$(q "$MC" --help)"
fi
if [ "$MC_OK" = 1 ]; then
    add api-loop "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$BENCH_N" --json "$API_JSON")"
    add api-loop-none "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$BENCH_N" --net none --json "$API_NONE_JSON")"
    add api-sizes "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$((BENCH_N / 2))" --image busybox \
                       --image busybox-big --json "$SIZES_JSON")"
fi
[ "$MC_OK" = 1 ] || log "SKIPPING minicontainer rows: $MC_WHY"
add runc "$(q runc run --bundle "$BUNDLE" mcb-runc)"
add crun "$(q "${CRUN[@]}" run --bundle "$BUNDLE" mcb-crun)"
add podman "$(q "${PODMAN[@]}" "${PODMAN_RUN_FLAGS[@]}" "$PODMAN_IMAGE" true)"
add python3 "$(q "$SYS_PY" -c pass)"
add venv-python "$(q "$PY" -c pass)"

STAMP=$(date +%Y%m%d-%H%M%S)
JSON=$BENCH_OUT/start-$STAMP.json
{
    echo "date: $(date -Is)"
    echo "commit: $(git -C "$REPO" log -1 --format='%h %s' 2>/dev/null || echo unknown)"
    echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "cgroups: $(mountpoint -q /sys/fs/cgroup/unified && echo 'v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)' || stat -fc %T /sys/fs/cgroup)"
    echo "python: $("$PY" -VV | head -1)"
    echo "tools: $(hyperfine --version), $(runc --version | head -1), $(crun --version | head -1), $(podman --version)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rootfs: $ROOTFS_SOURCE; crun: $CRUN_NOTE"
    [ "$MC_OK" = 1 ] || echo "minicontainer rows skipped: $MC_WHY"
    echo "hyperfine: --warmup $BENCH_WARMUP --runs $BENCH_RUNS -N, under ${PRIORITY[*]}; api_loop N=$BENCH_N"
    for ((i = 0; i < ${#cmds[@]}; i += 3)); do echo "  ${cmds[i+1]}: ${cmds[i+2]}"; done
} | tee "$BENCH_OUT/start-$STAMP.machine.txt" >&2

"${PRIORITY[@]}" hyperfine -N --style basic --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" \
    --export-json "$JSON" "${cmds[@]}" >&2
cp "$JSON" "$BENCH_OUT/start.json"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$BENCH_OUT/start-$STAMP.machine.txt" >&2

REPORT_ARGS=(--ref podman --ref runc --ref crun
             --divide "api-loop=$BENCH_N" --per-container "api=$API_JSON" --per-container "api-none=$API_NONE_JSON"
             --per-container "api-small=$SIZES_JSON@busybox"
             --per-container "api-big=$SIZES_JSON@busybox-big"
             --target 'mc-cli <= 0.5 podman'
             --target 'api <= 1.0 runc'
             --target 'api-none <= 1.0 runc'
             --target 'mc-big ~ mc-cli 10%'
             --target 'api-big ~ api-small 10%')
echo
"$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT_ARGS[@]}" | tee "$BENCH_OUT/start-$STAMP.txt"
"$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT_ARGS[@]}" --markdown >"$BENCH_OUT/start-$STAMP.md"
log "results: $JSON (+ .txt, .md, .machine.txt) in $BENCH_OUT"
