#!/usr/bin/env bash
# Prepare the cgroup-v2 test VM's boot files, idempotently (called by scripts/setup.sh and by
# tests/test_vm_cgroup2.py when the files are missing or out of date).
#
#   a Debian kernel package, downloaded (apt-get download) and unpacked (dpkg-deb -x), never installed
#   → build_boot_files.py → $MC_VM_CACHE/current/{vmlinux,initramfs.cpio,kernel-version}
#   → minicontainer/vm/bootfiles.py → $MC_VM_CACHE/vm-boot/vm-initramfs.cpio (`minicontainer vm`
#     guests boot from a qcow2 disk; built from the same package, also on first use if missing)
#
# Environment:
#   MC_VM_CACHE       where to keep everything (default /var/cache/minicontainer-vm)
#   MC_VM_KERNEL_PKG  the package to use (default: what linux-image-amd64 depends on now,
#                     e.g. linux-image-6.1.0-56-amd64; the generic flavour: "cloud" lacks 9p)
# A re-run with nothing to do takes a few milliseconds: the kernel is pinned once downloaded, and the
# initramfs is rebuilt only when build_boot_files.py or guest_init.sh changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MC_VM_CACHE:-/var/cache/minicontainer-vm}
current=$cache/current

# The system Python (a version manager's shim would cost seconds); vmrunner passes its own.
python=${PYTHON:-/usr/bin/python3}

inputs_stamp() {
    cat "$here/build_boot_files.py" "$here/guest_init.sh" "$here/../../minicontainer/vm/bootfiles.py" \
        /bin/busybox | sha256sum | cut -c1-16
}

up_to_date() {
    [ -e "$current/ready" ] && [ "$(cat "$current/ready")" = "$(inputs_stamp)" ] &&
        { [ -z "${MC_VM_KERNEL_PKG:-}" ] || [ "$(cat "$current/package")" = "$MC_VM_KERNEL_PKG" ]; }
}
# The `vm` guests' initramfs (idempotent: a few ms when up to date).
vm_initramfs() {
    "$python" -c 'import sys; sys.path.insert(0, sys.argv[1])
from minicontainer.vm.bootfiles import boot_files; boot_files()' "$here/../.."
}
up_to_date && { vm_initramfs; exit 0; }

[ "$(id -u)" = 0 ] || { echo "vm-prepare: run as root (apt-get download into $cache)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "vm-prepare: /bin/busybox is missing: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$cache"
# One builder at a time (two test runs may start together); the second finds the work done.
exec 9>"$cache/.lock"
flock 9
up_to_date && exit 0

debs=$cache/debs
mkdir -p "$debs"

# The generic kernel apt calls current (linux-image-amd64 is a meta package depending on it).
resolve_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}'
}

# Fetch a package into $debs unless it is there; print its path. The .deb stays in the cache, so a
# changed initramfs needs no network. APT::Sandbox::User=root: apt's _apt user cannot write here.
fetch_deb() {
    local deb
    deb=$(ls "$debs/${1}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        echo "vm-prepare: downloading $1" >&2
        (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root -o Acquire::Retries=3 "$1" >&2) || return 1
        deb=$(ls "$debs/${1}_"*.deb | head -n1)
    fi
    echo "$deb"
}

# Which kernel: an explicit choice, else the one pinned by an earlier run (while apt still has it),
# else the current one.
pkg=${MC_VM_KERNEL_PKG:-}
if [ -z "$pkg" ] && [ -e "$current/package" ]; then
    pkg=$(cat "$current/package")
    deb=$(fetch_deb "$pkg") || pkg=""
fi
if [ -z "$pkg" ]; then
    pkg=$(resolve_kernel)
    [ -n "$pkg" ] || { apt-get update -qq; pkg=$(resolve_kernel); }
    [ -n "$pkg" ] || { echo "vm-prepare: apt knows no linux-image-amd64; set MC_VM_KERNEL_PKG" >&2; exit 1; }
fi
deb=$(fetch_deb "$pkg") || { apt-get update -qq; deb=$(fetch_deb "$pkg"); } || {
    echo "vm-prepare: cannot download $pkg (apt-get download failed, see above)" >&2; exit 1; }

unpacked=$(mktemp -d "$cache/unpack.XXXXXX")
trap 'rm -rf "$unpacked" "$cache/next"' EXIT
echo "vm-prepare: unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$unpacked"
rm -rf "$cache/next"
"$python" "$here/build_boot_files.py" "$unpacked" "$cache/next"
echo "$pkg" >"$cache/next/package"
inputs_stamp >"$cache/next/ready"
# Swap the finished directory in, so a half-built one is never "current".
rm -rf "$current.old"
[ -e "$current" ] && mv "$current" "$current.old"
mv "$cache/next" "$current"
rm -rf "$current.old"
# Keep only the pinned kernel's package.
find "$debs" -name '*.deb' ! -name "${pkg}_*" -delete
vm_initramfs
echo "vm-prepare: ready in $current"
