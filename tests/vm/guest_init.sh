#!/bin/sh
# /init of the cgroup-v2 test VM (busybox ash, PID 1). Built into the initramfs by build_boot_files.py.
#
# What it is: the smallest boot that gives the project's tests a pure cgroup v2 machine:
#   stage 1 (in the initramfs): load modules, mount the host's / read-only over virtio-9p, put a
#            tmpfs-backed overlayfs on top of it so the guest can write, switch_root into it;
#   stage 2 (in the new root):  mount cgroup2 with every controller enabled, tmpfs for $TMPDIR and the
#            state root, run the job script the host wrote (pytest from the same checkout path), send
#            its output and exit status to the host over virtio-serial, power off.
# See: man 7 cgroups ("Cgroups version 2"), man 8 switch_root, Documentation/filesystems/9p.rst,
#      Documentation/filesystems/overlayfs.rst, Documentation/admin-guide/cgroup-v2.rst.
# The kernel hands unknown "key=value" boot parameters to init as environment variables:
#   mc_job=PATH      the host's job script (read through 9p before anything covers it)
#   mc_9pcache=MODE  9p cache mode (default loose: the host tree does not change during the run)
#   mc_msize=BYTES   9p message size
#   mc_modules=DIR   the host's DIR/lib/modules/VERSION (build_boot_files.py): linked to /lib/modules
#                    so that modinfo, modprobe and modprobe -r work in the guest (lab 08)
PATH=/bin:/usr/bin:/sbin:/usr/sbin
export PATH
BB=/bin/busybox     # in stage 2 the host's tools come first in PATH; busybox is called by path

# Messages for whoever reads the kernel console log (qemu -serial file:console.log).
say() { echo "mc-vm: $*" >/dev/console; }

# Stop the machine; qemu runs with -no-reboot, so even a kernel panic ends it instead of looping.
# (The host's poweroff may be systemctl, which needs systemd: use busybox's, which calls reboot(2).)
halt_machine() { $BB sync; $BB poweroff -f; $BB sleep 5; echo o >/proc/sysrq-trigger; }

fail() {
    say "FAILED: $*"
    [ -n "$OUT" ] && echo "MC-VM-EXIT 125 guest setup failed: $*" >"$OUT"
    halt_machine
}

# The virtio-serial port the host named "mc.out" (-device virtserialport,name=mc.out); no udev here,
# so look the name up in sysfs instead of /dev/virtio-ports/.
find_output_port() {
    for port in /sys/class/virtio-ports/*; do
        [ "$(cat "$port/name" 2>/dev/null)" = mc.out ] && { echo "/dev/${port##*/}"; return 0; }
    done
    return 1
}

stage1() {
    /bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
    /bin/busybox --install -s
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    for module in /modules/*.ko; do
        insmod "$module" || fail "insmod $module"
    done
    OUT=$(find_output_port) || fail "no virtio-serial port named mc.out"

    # The host's root, read-only: the checkout, its venv and the system Python at the host's paths.
    mount -t 9p -o "ro,trans=virtio,version=9p2000.L,msize=${mc_msize:-512000},cache=${mc_9pcache:-loose}" \
        hostroot /lower || fail "mount 9p hostroot"
    # overlayfs refuses an overlay as upper layer, so upper and work live on a plain tmpfs.
    mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs /rw"
    mkdir -p /rw/upper /rw/work
    mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
        || fail "mount overlay on 9p"

    # What stage 2 needs, copied where it survives switch_root (the overlay's tmpfs upper layer).
    mkdir -p /newroot/run/mc
    cp /bin/busybox /init /newroot/run/mc/ || fail "copy busybox and init"
    [ -f "/lower$mc_job" ] || fail "no job script $mc_job on the host"
    cp "/lower$mc_job" /newroot/run/mc/job.sh || fail "copy job $mc_job"
    echo "$OUT" >/newroot/run/mc/out-port

    for fs in proc sys dev; do
        mount --move "/$fs" "/newroot/$fs" || fail "move /$fs"
    done
    exec switch_root /newroot /run/mc/busybox sh /run/mc/init stage2
}

# Mount cgroup2 and hand every controller down from the root, one at a time so one refusal
# does not hide the others (writing "+cpu +memory" fails as a whole if any is refused).
setup_cgroup2() {
    mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2 /sys/fs/cgroup"
    for controller in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$controller" >/sys/fs/cgroup/cgroup.subtree_control \
            || say "could not enable $controller in the root cgroup"
    done
}

stage2() {
    BB=/run/mc/busybox
    bb=$BB
    OUT=$($bb cat /run/mc/out-port)
    $bb mkdir -p /run/mc/bin
    $bb --install -s /run/mc/bin
    # The host's tools first (the tests call ip, unshare, ...), busybox for what the host lacks.
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/mc/bin
    export PATH

    setup_cgroup2
    # Temporary files (pytest's tmp_path holds overlay upper dirs) on a tmpfs of their own. Not
    # over /tmp itself: the checkout may live there (CI clones anywhere), and /tmp must show it.
    mkdir -p /run/mc/tmp
    mount -t tmpfs -o mode=1777 tmpfs /run/mc/tmp || fail "mount tmpfs /run/mc/tmp"
    TMPDIR=/run/mc/tmp
    export TMPDIR
    mkdir -p /dev/pts /dev/shm
    mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    # The state root: containers put overlay upper dirs there, and an overlay cannot be their upper.
    MINICONTAINER_ROOT=/run/mc/state
    mkdir -p "$MINICONTAINER_ROOT"
    mount -t tmpfs -o mode=0700 tmpfs "$MINICONTAINER_ROOT" || fail "mount tmpfs $MINICONTAINER_ROOT"
    hostname mc-vm
    # This kernel's modules, where modinfo and modprobe look (the host's /lib/modules holds the
    # host kernel's, if any). The kernel itself calls /sbin/modprobe — the host's kmod — to load
    # a module on first use.
    release=$(uname -r)
    if [ -n "${mc_modules:-}" ] && [ -d "$mc_modules/lib/modules/$release" ]; then
        mkdir -p /lib/modules && rm -rf "/lib/modules/$release" &&
            ln -s "$mc_modules/lib/modules/$release" "/lib/modules/$release" || say "no /lib/modules/$release"
    fi
    ip link set lo up 2>/dev/null || $bb ip link set lo up

    export MINICONTAINER_ROOT HOME=/root LANG=C.UTF-8 MC_IN_VM=1
    {
        echo "MC-VM-BEGIN kernel $(uname -r), $(nproc) cpu(s), $(grep MemTotal /proc/meminfo | tr -s ' ')"
        echo "MC-VM-CGROUP $(grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f3) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
        echo "MC-VM-SUBTREE $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    } >"$OUT"
    # Run the job in the background and wait: while PID 1 waits it also reaps orphaned processes.
    sh /run/mc/job.sh </dev/null >"$OUT" 2>&1 &
    wait $!
    status=$?
    echo "MC-VM-EXIT $status" >"$OUT"
    halt_machine
}

case "$1" in
    stage2) stage2 ;;
    *) stage1 ;;
esac
