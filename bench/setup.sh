#!/usr/bin/env bash
# Install the peer tools the start-time benchmark compares against, idempotently.
#   hyperfine (the timer), runc and crun (OCI runtimes), podman (a whole engine), and podman's
#   rootful helpers. Only `make bench` needs these: the test suite never calls this script.
# Re-running it when everything is there costs one `command -v` per tool.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "bench/setup.sh: run as root (containers and apt-get need root)" >&2; exit 1; }

# Debian package : a file that shows it is installed.
PKGS=(
    "hyperfine:/usr/bin/hyperfine"
    "runc:/usr/sbin/runc"
    "crun:/usr/bin/crun"
    "podman:/usr/bin/podman"
    "conmon:/usr/bin/conmon"              # podman's per-container monitor process
    "catatonit:/usr/bin/catatonit"        # podman's pause/init helper
    "containernetworking-plugins:/usr/lib/cni/bridge"   # podman 4.3's network backend (CNI)
    "busybox-static:/bin/busybox"         # the one binary of the benchmark's rootfs
    "util-linux:/usr/bin/unshare"
    "python3:/usr/bin/python3"
)

missing=()
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*}; probe=${entry#*:}
    [ -e "$probe" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: podman's recommends pull in buildah, slirp4netns, fuse-overlayfs,
    # uidmap … which a rootful `podman run --network=none` on a vfs/overlay store does not use.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in hyperfine runc crun podman; do
    command -v "$tool" >/dev/null || { echo "bench/setup.sh: $tool still missing after apt-get install" >&2; exit 1; }
done
