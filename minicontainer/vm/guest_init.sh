#!/bin/sh
# /sbin/init of a `minicontainer vm` guest, put on its disk by `vm create` (disks.py).
#
# What it is: PID 1 of a small VM. It mounts the kernel's file systems, starts the counter (one line
# "tick N" a second on the console, the same number written to /var/lib/mc/counter and synced: the
# guest writes to its disk all the time, which is what snapshots and migrations must get right),
# then keeps a shell on the serial console for `minicontainer vm console`.
# `vm stop` presses Ctrl-Alt-Del (QMP send-key): with ctrl-alt-del set to 0 the kernel sends SIGINT to
# PID 1 instead of rebooting at once, and the trap below syncs the disk, then reboots; QEMU runs
# with -no-reboot, so the reboot ends it. (acpi=off: no ACPI power button, see minicontainer/vm/qemu.py.)
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /var/lib/mc && mount -t devpts devpts /dev/pts
[ -s /etc/hostname ] && hostname -F /etc/hostname
for word in $(cat /proc/cmdline); do          # the VM's name: mc.hostname=NAME (qemu.py)
    case "$word" in mc.hostname=?*) hostname "${word#mc.hostname=}" ;; esac
done
echo "mc-vm: $(hostname) up, kernel $(uname -r), $(grep MemTotal /proc/meminfo | tr -s ' ')"

echo 0 >/proc/sys/kernel/ctrl-alt-del
trap 'echo "mc-vm: ctrl-alt-del: syncing, then off"; sync; reboot -f' INT

counter() {
    i=$(cat /var/lib/mc/counter 2>/dev/null || echo 0)
    while :; do
        i=$((i + 1))
        echo "tick $i"
        echo "$i" >/var/lib/mc/counter.new && mv /var/lib/mc/counter.new /var/lib/mc/counter && sync
        sleep 1
    done
}
counter >/dev/console 2>&1 &

console() {
    while :; do
        setsid sh -c 'exec sh -l </dev/ttyS0 >/dev/ttyS0 2>&1'
        sleep 1
    done
}
console &
# PID 1 waits in `wait`, which a trapped signal interrupts (a foreground command would delay the trap).
while :; do
    wait
    sleep 1
done
