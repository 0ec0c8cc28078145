#!/usr/bin/env bash
# The CLI's own start-up cost, module by module (python -X importtime, median of 5 runs):
#   1. `import minicontainer.cli.typer_app, …commands`   what a verb parsed by typer pays
#      (`run` takes the fast lane, cli/run_verb.py, and skips typer and click)
#   2. `minicontainer run --rm busybox true`      the run path, lazy imports included
#   3. `python -c pass` in the venv               the floor: interpreter + site (+ .pth files)
#   4. bench/breakdown.py: the run path's phases (start-up, CLI import, first and second
#      container, interpreter exit), with the default network and with --net none
# Usage: sudo bench/importtime.sh   (2 needs the busybox image; it uses the bench's state root)
source "$(dirname "$0")/netns.sh"          # a private network namespace: run uses the bridge
source "$(dirname "$0")/lib.sh"
TOP=${TOP:-15}
mkdir -p "$BENCH_OUT"
exec > >(tee "$BENCH_OUT/importtime-$(date +%Y%m%d-%H%M%S).txt")

"$PY" -c 'import minicontainer.cli' 2>/dev/null ||
    die "cannot import minicontainer.cli with $PY: is the CLI written and installed (scripts/setup.sh)?"

"${PRIORITY[@]}" "$PY" "$BENCH_SRC/importtime.py" --top "$TOP" -- "$PY" -c pass
echo
"${PRIORITY[@]}" "$PY" "$BENCH_SRC/importtime.py" --top "$TOP" -- "$PY" -c \
    'import minicontainer.cli.typer_app, minicontainer.cli.commands'
echo
if [ -x "$MC" ] && [ "$(id -u)" = 0 ]; then
    trap cleanup EXIT
    prepare_rootfs
    mkdir -p "$MC_ROOT"
    "$MC" image inspect busybox >/dev/null 2>&1 || "$MC" image import "$BUSYBOX_TAR" busybox:latest >/dev/null
    "${PRIORITY[@]}" "$PY" "$BENCH_SRC/importtime.py" --top "$TOP" -- "$PY" "$MC" run --rm busybox true
    echo
    "${PRIORITY[@]}" "$PY" "$BENCH_SRC/breakdown.py" --runs 20
    echo
    "${PRIORITY[@]}" "$PY" "$BENCH_SRC/breakdown.py" --runs 20 --net none
else
    log "skipping the run path: needs root and $MC"
fi
