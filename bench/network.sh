#!/usr/bin/env bash
# What a network costs at start (issue 6): ONE hyperfine run, side by side on the same busybox rootfs,
#   mc-bridge        minicontainer run --rm --net bridge busybox true   (veth on mc0, address, route)
#   mc-publish       the same with -p 18080:80 -p 18081:81/udp        (+ one nft run up, one down)
#   mc-none          minicontainer run --rm --net none busybox true     (only lo)
#   podman           podman run --rm … with its DEFAULT network (CNI bridge cni-podman0, 10.88.0.0/16)
#   podman-none      podman run --rm --network=none …
#   api-loop-bridge, api-loop-none   api_loop.py -n N --net bridge|none: N containers via the library;
#   api-bridge, api-none             their per-container medians (no interpreter start-up in them)
# then bench/report.py (ratios, 'mc-bridge <= 0.25 podman') and the bridge's own cost, a difference
# of medians that report.py does not compute: mc-bridge − mc-none and api-bridge − api-none ≤ 30 ms.
#
# Where: the whole script re-executes itself in a new network namespace (`unshare --net`, lo up).
# mc0, cni-podman0, both NAT rule sets, ip_forward and every veth exist only there and vanish with
# it: the machine's own network is never touched. podman reads a private copy of its default
# network's config (--network-config-dir) whose host-local IPAM keeps its leases under $BENCH_DIR;
# libcni's empty /var/lib/cni/results is removed again if it was not there before.
#
# Usage: sudo bench/network.sh      (bench/setup.sh installs the peers; BENCH_* knobs: bench/lib.sh)
source "$(dirname "$0")/netns.sh"          # a private network namespace, lo up
source "$(dirname "$0")/lib.sh"
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
    die "not in a private network namespace: refusing to create bridges on the machine's network"
need_tools

CNI_STATE=/var/lib/cni
CNI_STATE_EXISTED=$([ -e "$CNI_STATE" ] && echo 1 || echo 0)
on_exit() {
    local rc=$?
    if [ "$CNI_STATE_EXISTED" = 0 ]; then          # libcni's cache dir: podman makes it, empty
        rmdir "$CNI_STATE/results" "$CNI_STATE" 2>/dev/null || true
    fi
    (exit $rc)
    cleanup
}
trap on_exit EXIT

prepare_rootfs
prepare_podman
prepare_minicontainer

# podman's default network, privately: the packaged conflist with IPAM state under $BENCH_DIR.
PODMAN_NET=$BENCH_DIR/podman/net
mkdir -p "$PODMAN_NET"
"$SYS_PY" - /etc/cni/net.d/87-podman-bridge.conflist "$PODMAN_NET/87-podman-bridge.conflist" \
          "$BENCH_DIR/podman/cni-ipam" <<'EOF'
import json, sys
src, dst, data_dir = sys.argv[1:]
try:
    conf = json.load(open(src))
except FileNotFoundError:                  # no packaged file: podman's built-in default is the same
    conf = {"cniVersion": "0.4.0", "name": "podman", "plugins": [
        {"type": "bridge", "bridge": "cni-podman0", "isGateway": True, "ipMasq": True,
         "hairpinMode": True, "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                                       "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}, {"type": "firewall"}, {"type": "tuning"}]}
conf["plugins"][0]["ipam"]["dataDir"] = data_dir
json.dump(conf, open(dst, "w"), indent=2)
EOF
PODMAN_NETWORKED=("${PODMAN[@]}" --network-config-dir "$PODMAN_NET")
PODMAN_FLAGS=(run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
"${PODMAN_NETWORKED[@]}" "${PODMAN_FLAGS[@]}" "$PODMAN_IMAGE" true ||
    die "podman cannot run a container on its default network here"

q() { printf '%q ' "$@"; }
cmds=()
add() { cmds+=(-n "$1" "$2"); }
API_BRIDGE=$BENCH_OUT/network-api-bridge.jsonl; API_NONE=$BENCH_OUT/network-api-none.jsonl
: >"$API_BRIDGE"; : >"$API_NONE"
if [ "$MC_OK" = 1 ] || [ "$MC_OK" = cli ]; then
    add mc-bridge "$(q "$MC" run --rm --net bridge busybox true)"
    add mc-publish "$(q "$MC" run --rm --net bridge -p 18080:80 -p 18081:81/udp busybox true)"
    add mc-none "$(q "$MC" run --rm --net none busybox true)"
fi
if [ "$MC_OK" = 1 ]; then
    add api-loop-bridge "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$BENCH_N" --net bridge --json "$API_BRIDGE")"
    add api-loop-none "$(q "$PY" "$BENCH_SRC/api_loop.py" -n "$BENCH_N" --net none --json "$API_NONE")"
fi
[ "$MC_OK" = 1 ] || log "SKIPPING minicontainer rows: $MC_WHY"
add podman "$(q "${PODMAN_NETWORKED[@]}" "${PODMAN_FLAGS[@]}" "$PODMAN_IMAGE" true)"
add podman-none "$(q "${PODMAN_NETWORKED[@]}" "${PODMAN_FLAGS[@]}" --network=none "$PODMAN_IMAGE" true)"

STAMP=$(date +%Y%m%d-%H%M%S)
JSON=$BENCH_OUT/network-$STAMP.json
{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) CPUs; network namespace $(readlink /proc/self/ns/net) (private)"
    echo "tools: $(hyperfine --version), $(podman --version), $(nft --version 2>/dev/null | head -1)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "hyperfine: --warmup $BENCH_WARMUP --runs $BENCH_RUNS -N, under ${PRIORITY[*]}; api_loop N=$BENCH_N"
    for ((i = 0; i < ${#cmds[@]}; i += 3)); do echo "  ${cmds[i+1]}: ${cmds[i+2]}"; done
} | tee "$BENCH_OUT/network-$STAMP.machine.txt" >&2

"${PRIORITY[@]}" hyperfine -N --style basic --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" \
    --export-json "$JSON" "${cmds[@]}" >&2
cp "$JSON" "$BENCH_OUT/network.json"

REPORT_ARGS=(--ref podman --ref mc-none
             --per-container "api-bridge=$API_BRIDGE" --per-container "api-none=$API_NONE"
             --target 'mc-bridge <= 0.25 podman')
echo
{
    "$PY" "$BENCH_SRC/report.py" "$JSON" "${REPORT_ARGS[@]}"
    echo
    # The bridge's own cost: a difference of medians from the same run (report.py does ratios).
    "$PY" - "$JSON" "$API_BRIDGE" "$API_NONE" <<'EOF'
import json, statistics, sys
rows = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}

def per_container(path):
    times = [t for line in open(path) if line.strip() for t in json.loads(line)["times_s"]]
    return statistics.median(times) if times else None

medians = {name: r["median"] for name, r in rows.items()}
medians["api-bridge"], medians["api-none"] = per_container(sys.argv[2]), per_container(sys.argv[3])
for a, b, limit in [("mc-bridge", "mc-none", 30), ("api-bridge", "api-none", 30),
                    ("mc-publish", "mc-none", None), ("podman", "podman-none", None)]:
    if medians.get(a) is None or medians.get(b) is None:
        print(f"{a} - {b}: SKIP (no result)")
        continue
    extra = (medians[a] - medians[b]) * 1000
    verdict = "" if limit is None else f"  {'PASS' if extra <= limit else 'MISS'} (target <= {limit} ms)"
    print(f"{a} - {b}: {extra:+.1f} ms{verdict}")
EOF
} | tee "$BENCH_OUT/network-$STAMP.txt"
log "results: $JSON (+ .txt, .machine.txt) in $BENCH_OUT"
