# Shared setup for the bench/ scripts: sourced, never run. Builds, once per run, everything the
# benchmarks compare on the *same* busybox rootfs:
#   $BUSYBOX_TAR   the 2 MB busybox rootfs (rootfs-builder's build/busybox-latest.tar if built,
#                  else a minimal one: bin/busybox and two links)
#   $BIG_TAR       the same rootfs plus ~200 MB in 20 000 files (start time vs image size)
#   $BUNDLE        an OCI bundle (runc spec, edited) on the extracted rootfs, for runc and crun
#   podman         the same tar imported into a private podman store under $BENCH_DIR
#   minicontainer  both tars imported into a private state root, $MC_ROOT
# and tears it all down again on exit (results stay in $BENCH_OUT).
#
# Knobs (environment): BENCH_DIR (/var/tmp/mc-bench), BENCH_OUT (/var/tmp/mc-bench-results),
# BENCH_RUNS (30), BENCH_WARMUP (3), BENCH_N (20 containers per api_loop run), BENCH_KEEP=1 keeps
# $BENCH_DIR for a faster re-run, BENCH_NICE (-10: hyperfine's nice value), MC (the minicontainer
# CLI), PY (the venv's python).
set -euo pipefail

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_SRC/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/mc-bench}
BENCH_OUT=${BENCH_OUT:-/var/tmp/mc-bench-results}
BENCH_RUNS=${BENCH_RUNS:-30}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_N=${BENCH_N:-20}
PY=${PY:-$REPO/.venv/bin/python}
MC=${MC:-$REPO/.venv/bin/minicontainer}
SYS_PY=/usr/bin/python3                        # the interpreter the venv is made from, no shims
# hyperfine and everything it starts run at a higher CPU and I/O priority than the rest of the
# machine (all commands alike), so a test suite running beside the benchmark disturbs it less.
BENCH_NICE=${BENCH_NICE:--10}
PRIORITY=(nice -n "$BENCH_NICE" ionice -c 2 -n 0)
MC_ROOT=$BENCH_DIR/mc-root                     # minicontainer state root, never the real one
BUNDLE=$BENCH_DIR/bundle
PODMAN_IMAGE=localhost/mc-bench-busybox:latest
PODMAN=(podman --root "$BENCH_DIR/podman/storage" --runroot "$BENCH_DIR/podman/run"
        --tmpdir "$BENCH_DIR/podman/tmp")
# podman here: crun refuses a hybrid cgroup host and the host's RLIMIT_NOFILE/NPROC hard limits are
# below podman's defaults (runc then fails with "error setting rlimit type 7"), hence these flags.
PODMAN_RUN_FLAGS=(run --rm --network=none --runtime runc
                  --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
export MINICONTAINER_ROOT=$MC_ROOT
# Compiled bytecode is part of a normal install: without it every start recompiles minicontainer.
unset PYTHONDONTWRITEBYTECODE

# The host's network state before the first bench script started (inherited by the scripts
# run.sh starts): `minicontainer run` without --net none makes the default network's bridge
# (mc0), its NAT table and net.ipv4.ip_forward=1 in the host's network namespace; cleanup removes
# what was not there before.
: "${BENCH_LINKS_BEFORE:= $(ls /sys/class/net | tr '\n' ' ')}"
: "${BENCH_FORWARD_BEFORE:=$(cat /proc/sys/net/ipv4/ip_forward)}"
export BENCH_LINKS_BEFORE BENCH_FORWARD_BEFORE

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

need_tools() {
    [ "$(id -u)" = 0 ] || die "run as root: runc, crun, podman and minicontainer all need root"
    local t; for t in hyperfine runc crun podman unshare nsenter; do
        command -v "$t" >/dev/null || die "$t not found: run bench/setup.sh first (installs the peers)"
    done
}

# --- the busybox rootfs ---------------------------------------------------------------------------
# A minimal rootfs when rootfs-builder has not built one: the static busybox and two applet links.
make_minimal_tar() {  # $1: tar to write
    local r=$BENCH_DIR/minimal-rootfs
    rm -rf "$r"; mkdir -p "$r"/{bin,proc,sys,dev,etc,tmp,root}
    cp /bin/busybox "$r/bin/busybox"
    ln -s busybox "$r/bin/sh"; ln -s busybox "$r/bin/true"
    tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$1" .
    rm -rf "$r"
}

prepare_rootfs() {
    mkdir -p "$BENCH_DIR" "$BENCH_OUT"
    BUSYBOX_TAR=$BENCH_DIR/busybox.tar
    BIG_TAR=$BENCH_DIR/busybox-big.tar
    local built
    for built in "$REPO/build/busybox-latest.tar" "$REPO/rootfs-builder/build/busybox-latest.tar"; do
        [ -f "$built" ] && break
    done
    if [ -f "$built" ]; then                  # made by `rootfs-builder/build.py recipes/busybox.toml`
        cp "$built" "$BUSYBOX_TAR"
        ROOTFS_SOURCE="rootfs-builder's ${built#"$REPO"/}"
    elif [ ! -f "$BUSYBOX_TAR" ]; then
        make_minimal_tar "$BUSYBOX_TAR"; ROOTFS_SOURCE="minimal (bin/busybox + sh, true links)"
    else
        ROOTFS_SOURCE="minimal (bin/busybox + sh, true links)"
    fi
    # The unpacked rootfs runc and crun use (they bind it, read-only, as the container's /).
    if [ ! -x "$BENCH_DIR/rootfs/bin/busybox" ]; then
        rm -rf "$BENCH_DIR/rootfs"; mkdir -p "$BENCH_DIR/rootfs"
        tar -C "$BENCH_DIR/rootfs" -xf "$BUSYBOX_TAR"
    fi
    log "rootfs: $ROOTFS_SOURCE ($(du -h "$BUSYBOX_TAR" | cut -f1))"
}

prepare_big_tar() {
    # The large image: 20 000 files of 10 KiB random bytes (~200 MB). Many files rather than one
    # big one, so a start that walks or copies the tree would show up, not only one that reads it.
    if [ ! -f "$BIG_TAR" ]; then
        log "making the ~200 MB image (20 000 files) …"
        local big=$BENCH_DIR/big-rootfs
        rm -rf "$big"; mkdir -p "$big"
        tar -C "$big" -xf "$BUSYBOX_TAR"
        "$SYS_PY" - "$big/opt/payload" <<'EOF'
import os, sys
top = sys.argv[1]
for d in range(50):
    os.makedirs(f"{top}/{d:02d}")
    for f in range(400):
        with open(f"{top}/{d:02d}/{f:03d}.bin", "wb") as out:
            out.write(os.urandom(10240))
EOF
        tar -C "$big" --numeric-owner -cf "$BIG_TAR" .
        rm -rf "$big"
    fi
    log "big image: $(du -h "$BIG_TAR" | cut -f1), $(tar -tf "$BIG_TAR" | wc -l) entries"
}

# --- OCI bundle for runc and crun -----------------------------------------------------------------
# `runc spec` writes the default config (pid, net, ipc, uts, mount namespaces; the net namespace has
# only lo). We change what runs and point root.path at the shared rootfs. $1: optional JSON merged
# into linux.resources (the limits benchmark), $2: bundle dir.
make_bundle() {
    local resources=${1:-} dir=${2:-$BUNDLE}
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && runc spec)
    "$SYS_PY" - "$dir/config.json" "$BENCH_DIR/rootfs" "$resources" <<'EOF'
import json, sys
path, rootfs, resources = sys.argv[1:]
c = json.load(open(path))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["root"] = {"path": rootfs, "readonly": True}
if resources:
    c["linux"].setdefault("resources", {}).update(json.loads(resources))
json.dump(c, open(path, "w"), indent=2)
EOF
}

# crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"): on such a host it runs in a private mount namespace without
# /sys/fs/cgroup/unified. One sleeping process holds that namespace for the whole run and each
# timed crun enters it with nsenter (one setns + exec), so crun's figure is not charged a shell,
# a mount(8) and an umount(8) per start. On a pure cgroup v2 host crun runs directly.
CRUN_NS_PID=
start_crun_namespace() {
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec sleep infinity' &
        CRUN_NS_PID=$!
        local i; for i in $(seq 50); do
            [ "$(readlink /proc/$CRUN_NS_PID/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
                ! grep -q ' /sys/fs/cgroup/unified ' "/proc/$CRUN_NS_PID/mountinfo" && break
            sleep 0.05
        done
        CRUN=(nsenter -t "$CRUN_NS_PID" -m crun)
        CRUN_NOTE="nsenter into a private mount namespace without /sys/fs/cgroup/unified (hybrid host)"
    else
        CRUN=(crun); CRUN_NOTE="direct"
    fi
}

# --- podman ---------------------------------------------------------------------------------------
prepare_podman() {
    mkdir -p "$BENCH_DIR/podman"
    if ! "${PODMAN[@]}" image exists "$PODMAN_IMAGE" 2>/dev/null; then
        "${PODMAN[@]}" import -q "$BUSYBOX_TAR" "$PODMAN_IMAGE" >/dev/null
    fi
    "${PODMAN[@]}" "${PODMAN_RUN_FLAGS[@]}" "$PODMAN_IMAGE" true ||
        die "podman cannot run a container here: ${PODMAN[*]} ${PODMAN_RUN_FLAGS[*]} $PODMAN_IMAGE true"
}

# --- minicontainer --------------------------------------------------------------------------------
# Imports busybox (and $@, e.g. busybox-big) into $MC_ROOT. Sets MC_OK=1 when the CLI and the API
# run a container, MC_OK=cli when only the CLI does; else MC_OK=0 and MC_WHY says why (the peers still run).
prepare_minicontainer() {
    MC_OK=0; MC_WHY=
    if [ ! -x "$MC" ]; then MC_WHY="no minicontainer CLI at $MC (run scripts/setup.sh)"; return; fi
    local err=$BENCH_DIR/mc-prepare.err
    : >"$err"
    mkdir -p "$MC_ROOT"
    local ref tar
    for ref in busybox "$@"; do           # busybox, and busybox-big when asked for
        tar=$BUSYBOX_TAR; [ "$ref" = busybox-big ] && tar=$BIG_TAR
        if ! "$MC" image inspect "$ref" >/dev/null 2>&1; then
            "$MC" image import "$tar" "$ref:latest" >/dev/null 2>>"$err" ||
                { MC_WHY="'minicontainer image import $tar $ref:latest' failed: $(tail -1 "$err")"; return; }
        fi
    done
    "$MC" run --rm busybox true 2>>"$err" ||
        { MC_WHY="'minicontainer run --rm busybox true' failed: $(tail -1 "$err")"; return; }
    "$PY" "$BENCH_SRC/api_loop.py" -n 2 --warmup 0 >/dev/null 2>>"$err" ||
        { MC_WHY="api_loop.py failed: $(tail -1 "$err")"; MC_OK=cli; return; }
    MC_OK=1
}

# --- teardown -------------------------------------------------------------------------------------
# The networks defined in the bench's state root whose bridge the bench created: down() removes
# the bridge and the NAT rules (through minicontainer's own API, which knows nft from iptables).
# A bridge that was there before belongs to someone else and is left alone.
teardown_bench_networks() {
    [ -d "$MC_ROOT/networks" ] || return 0
    "$PY" - "$MC_ROOT/networks" "$BENCH_LINKS_BEFORE" <<'EOF' || log "could not take the bench's networks down (see above)"
import sys
from minicontainer.network.store import NetworkStore
store, before = NetworkStore(sys.argv[1]), sys.argv[2].split()
for name in store.names():
    net = store.get(name)
    if net.bridge in before:
        print(f"bench: left bridge {net.bridge} up: it was there before the benchmark", file=sys.stderr)
    elif net.bridge:
        net.down()
        print(f"bench: took the bench's network {name} down (bridge {net.bridge}, NAT rules)", file=sys.stderr)
EOF
    if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$BENCH_FORWARD_BEFORE" ]; then
        echo "$BENCH_FORWARD_BEFORE" >/proc/sys/net/ipv4/ip_forward
        log "net.ipv4.ip_forward set back to $BENCH_FORWARD_BEFORE"
    fi
}

cleanup() {
    local rc=$?
    set +e                                     # tear down everything, whatever fails
    if [ -n "${CRUN_NS_PID:-}" ]; then kill "$CRUN_NS_PID" 2>/dev/null; wait "$CRUN_NS_PID" 2>/dev/null; fi
    runc delete -f mcb-runc >/dev/null 2>&1 || true
    crun delete -f mcb-crun >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-0}" != 1 ] && [ -d "$BENCH_DIR" ]; then
        teardown_bench_networks
        if [ -d "$BENCH_DIR/podman" ]; then
            "${PODMAN[@]}" system reset --force >/dev/null 2>&1 || true
        fi
        # Never rm -rf through a mount: something left mounted under $BENCH_DIR is a bug to see.
        if grep -q " $BENCH_DIR/" /proc/self/mountinfo; then
            log "left $BENCH_DIR in place: still mounted there: $(grep -o " $BENCH_DIR/[^ ]*" /proc/self/mountinfo | head -3 | tr '\n' ' ')"
        else
            rm -rf "$BENCH_DIR" || { sleep 1; rm -rf "$BENCH_DIR"; }
        fi
    fi
    return $rc
}
