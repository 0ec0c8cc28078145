#!/usr/bin/env bash
# Install everything minicontainer needs on a Debian/Ubuntu machine, idempotently.
#   system packages (only the missing ones) → a virtual environment in .venv → the project in it.
#   --test: also what the test suite and `minicontainer vm` need (QEMU and the guest kernel for the
#           cgroup-v2 stage and the vm verbs, podman and skopeo to
#           check exported images, mmdebstrap for the Debian base, the VM's kernel).
# Re-running it when everything is there takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
FOR_TESTS=0
[ "${1:-}" = --test ] && FOR_TESTS=1

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: run this as root (sudo make …): containers need root" >&2; exit 1; }; }

# A Python ≥ 3.11 from the system (not a version manager's shim: shims cost time on every start).
find_python() {
    for p in /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 /usr/bin/python3; do
        if [ -x "$p" ] && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$p"; return 0
        fi
    done
    return 1
}

# Debian package names we need, and a command or file that shows each is present.
PKGS=(
    "busybox-static:/bin/busybox"          # the default userland's one binary
    "gcc:/usr/bin/gcc"                     # python-prctl builds from source; --init is compiled
    "libc6-dev:/usr/include/stdio.h"       # static linking of --init and the test helpers
    "libcap-dev:/usr/include/sys/capability.h"
    "iproute2:/usr/sbin/ip"                # tests look at interfaces with `ip`
    "util-linux:/usr/bin/unshare"
    "xz-utils:/usr/bin/xz"
    "hello:/usr/bin/hello"                 # the program in the hello-app example image
    "nftables:/usr/sbin/nft"               # NAT and published ports for --net bridge
    "uidmap:/usr/bin/newuidmap"            # rootless mode: subordinate uid/gid ranges
    "kmod:/usr/bin/lsmod"                  # lsmod, modinfo, modprobe: doctor and lab 08
)
TEST_PKGS=(
    "qemu-system-x86:/usr/bin/qemu-system-x86_64"   # the cgroup-v2 VM test stage and `minicontainer vm`
    "qemu-utils:/usr/bin/qemu-img"         # `vm`: qcow2 disks, backing chains, qemu-img compare
    "e2fsprogs:/sbin/mkfs.ext4"            # `vm create`: the guest's ext4 disk from the image (mkfs.ext4 -d)
    "podman:/usr/bin/podman"               # `podman load` checks exported images
    "skopeo:/usr/bin/skopeo"               # `skopeo inspect` checks exported images
    "mmdebstrap:/usr/bin/mmdebstrap"       # the Debian base image recipe
    "binutils:/usr/bin/readelf"            # app-image tests compare with readelf
    "golang-go:/usr/bin/go"                # builds the OCI validation suite (../shared/oci-validation)
    "runc:/usr/sbin/runc"                  # minicontainer-oci's peers: bench/oci.sh, the lab
    "crun:/usr/bin/crun"
    "conmon:/usr/bin/conmon"               # podman --runtime minicontainer-oci (tests/test_oci_engines.py)
    "containerd:/usr/bin/containerd"       # ctr run --runc-binary minicontainer-oci (same)
    "containernetworking-plugins:/usr/lib/cni/bridge"   # podman's default network
    "hyperfine:/usr/bin/hyperfine"         # bench/oci.sh
    "chromium:/usr/bin/chromium"           # tests/test_dashboard.py: a real browser (headless) …
    "chromium-driver:/usr/bin/chromedriver"   # … driven by selenium through the WebDriver protocol
)
[ "$FOR_TESTS" = 1 ] && PKGS+=("${TEST_PKGS[@]}")

missing=()
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*}; probe=${entry#*:}
    [ -e "$probe" ] || missing+=("$pkg")
done
PY=$(find_python || true)
if [ -z "$PY" ]; then missing+=(python3.11 python3.11-venv python3.11-dev); fi
if [ -n "$PY" ]; then
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    "$PY" -c 'import ensurepip' 2>/dev/null || missing+=("python${ver}-venv")
    [ -e "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || missing+=("python${ver}-dev")
fi

if [ ${#missing[@]} -gt 0 ]; then
    need_root
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    PY=$(find_python)
fi

# The virtual environment, rebuilt only when pyproject.toml changed since the last install.
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    echo "setup: installing minicontainer and its Python dependencies into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip wheel
    # editable: a plain path in a .pth file (pyproject's package-dir makes it so; an import
    # finder would cost every `minicontainer` start about 9 ms).
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    rm -f .venv/.installed-*; touch "$stamp"
fi
# Byte-compile the package (~0.1 s when up to date): with PYTHONDONTWRITEBYTECODE set, or as a
# user who cannot write here, every `minicontainer` call would otherwise compile it from source.
.venv/bin/python -m compileall -q minicontainer >/dev/null
# minicontainer-oci, which podman and containerd start several times per container, as a
# launcher that skips `site` (python -I -S, its paths written in): ~5 ms less on every call.
.venv/bin/python -m minicontainer.oci.launcher .venv/bin/minicontainer-oci

# The cgroup-v2 VM stage's kernel and initramfs (cached; a few ms when already there). It must
# run here, not in pytest: the test session lives in a network namespace without a network.
if [ "$FOR_TESTS" = 1 ] && [ "$(id -u)" = 0 ] && [ "$(uname -m)" = x86_64 ]; then
    tests/vm/prepare.sh
fi
