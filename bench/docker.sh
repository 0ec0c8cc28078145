#!/usr/bin/env bash
# Docker-verb benchmarks (issue 15), as root:  sudo bench/docker.sh
#   1. a 6-step build with a warm cache                         (target <= 1 s)
#   2. a cold build (--no-cache) vs `podman build --no-cache` (vfs) of the same file  (<= 1.0x)
#   3. `ps -a` with 200 containers                              (target <= 200 ms)
# Works in $BENCH_DOCKER_DIR (/var/tmp/mc-bench-docker, removed after); hyperfine's JSON in
# $BENCH_OUT/docker-*.json. Knobs: BENCH_RUNS (10), BENCH_PS_N (200), PY.
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
DIR=${BENCH_DOCKER_DIR:-/var/tmp/mc-bench-docker}
BENCH_OUT=${BENCH_OUT:-/var/tmp/mc-bench-results}
RUNS=${BENCH_RUNS:-10}
N=${BENCH_PS_N:-200}
[ "$(id -u)" = 0 ] || { echo "bench/docker.sh: needs root (containers, mounts)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/docker.sh: needs hyperfine (bench/setup.sh)" >&2; exit 1; }
rm -rf "$DIR"; mkdir -p "$DIR/ctx" "$BENCH_OUT"
runroot=$(mktemp -d /tmp/mcbd-XXXX)                 # podman: a short runroot path
trap 'umount -R "$DIR/pm" 2>/dev/null || true; rm -rf "$DIR" "$runroot"' EXIT
MC=("$PY" -m minicontainer --root "$DIR/mc")
PODMAN=(podman --root "$DIR/pm" --runroot "$runroot" --storage-driver vfs --events-backend file
        --cgroup-manager cgroupfs)
cd "$REPO"
"$PY" rootfs-builder/build.py rootfs-builder/recipes/busybox.toml >/dev/null
"${MC[@]}" image import build/busybox-latest.tar busybox >/dev/null
"${MC[@]}" image export --format oci busybox -o "$DIR/busybox.oci.tar"
"${PODMAN[@]}" load -i "$DIR/busybox.oci.tar" >/dev/null

# the same six steps for both
printf 'hello\n' > "$DIR/ctx/greeting.txt"
cat > "$DIR/ctx/Containerfile" <<'EOF'
FROM localhost/busybox
ENV GREETING=hello
WORKDIR /app
COPY greeting.txt .
RUN cat greeting.txt > copy.txt && echo built >> copy.txt
CMD ["cat", "/app/copy.txt"]
EOF
"${MC[@]}" image tag busybox localhost/busybox >/dev/null

echo "== 1. warm build (6 steps, all cached)"
"${MC[@]}" build -t bench/app --network none "$DIR/ctx" >/dev/null
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$BENCH_OUT/docker-warm-build.json" \
    -n "minicontainer build (warm)" "${MC[*]} build -t bench/app --network none $DIR/ctx"

echo "== 2. cold build vs podman build (vfs)"
PM_FLAGS="--network none --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$BENCH_OUT/docker-cold-build.json" \
    -n "minicontainer build --no-cache" "${MC[*]} build --no-cache -t bench/app --network none $DIR/ctx" \
    -n "podman build --no-cache" "${PODMAN[*]} build --no-cache $PM_FLAGS -t bench/app $DIR/ctx"

echo "== 3. ps -a with $N containers"
"$PY" -c "
import sys
from minicontainer.api import Container
for _ in range(int(sys.argv[2])):
    Container('busybox', ['true'], root=sys.argv[1], net='none').create()" "$DIR/mc" "$N"
hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$BENCH_OUT/docker-ps.json" \
    -n "minicontainer ps -a ($N)" "${MC[*]} ps -a"

"$PY" - "$BENCH_OUT" "$N" <<'EOF'
import json, sys
out = sys.argv[1]
def mean(name, i=0):
    return json.load(open(f"{out}/docker-{name}.json"))["results"][i]["mean"]
warm, cold, pm, ps = mean("warm-build"), mean("cold-build"), mean("cold-build", 1), mean("ps")
print(f"warm 6-step build: {warm * 1000:.0f} ms (target <= 1000 ms)")
print(f"cold build: minicontainer {cold:.2f} s, podman {pm:.2f} s: {cold / pm:.2f}x (target <= 1.0x)")
print(f"ps -a with {sys.argv[2]} containers: {ps * 1000:.0f} ms (target <= 200 ms)")
EOF
