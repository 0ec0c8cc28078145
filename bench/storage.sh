#!/usr/bin/env bash
# Storage benchmarks (issue 5), as root:  sudo bench/storage.sh
#   1. `minicontainer image import` of a Debian base vs GNU `tar -x` of the same tar (<= 1.5x)
#   2. container start, Debian base vs busybox, through the library (within 10 %)
# Builds the Debian base with rootfs-builder (mmdebstrap from the host's apt mirror; cached in
# build/cache/) and busybox; works in $BENCH_STORAGE_DIR (/var/tmp/mc-bench-storage, removed
# after: apart from bench/lib.sh's $BENCH_DIR); results in $BENCH_OUT/storage.json.
# Knobs: BENCH_IMPORT_RUNS (5), BENCH_STARTS (30), BENCH_STORAGE_DIR, BENCH_OUT, PY.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
BENCH_DIR=${BENCH_STORAGE_DIR:-/var/tmp/mc-bench-storage}
BENCH_OUT=${BENCH_OUT:-/var/tmp/mc-bench-results}
[ "$(id -u)" = 0 ] || { echo "bench/storage.sh: needs root (containers, chown)" >&2; exit 1; }
mkdir -p "$BENCH_OUT"
cd "$REPO"
"$PY" rootfs-builder/build.py rootfs-builder/recipes/busybox.toml >/dev/null
"$PY" rootfs-builder/build.py rootfs-builder/recipes/debian.toml >/dev/null
exec "$PY" bench/storage.py --tar build/debian-bookworm.tar --busybox build/busybox-latest.tar \
    --work "$BENCH_DIR" -n "${BENCH_IMPORT_RUNS:-5}" --starts "${BENCH_STARTS:-30}" \
    --json "$BENCH_OUT/storage.json"
