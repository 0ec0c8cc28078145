#!/bin/sh
# /sbin/init of a `minicontainer vm` guest, put on its disk by `vm create` (disks.py).
#
# What it is: PID 1 of a small VM. It mounts the kernel's file systems, starts the counter (one line
# "tick N" a second on the console, the same number written to /var/lib/mc/counter and synced: the
# guest writes to its disk all the time, which is what snapshots and migrations must get right),
# then keeps a shell on the serial console for `minicontainer vm console`.
# The kernel's power button (QMP system_powerdown, `vm stop`) reaches busybox acpid, which powers off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /var/lib/mc && mount -t devpts devpts /dev/pts
[ -s /etc/hostname ] && hostname -F /etc/hostname
echo "mc-vm: $(hostname) up, kernel $(uname -r), $(grep MemTotal /proc/meminfo | tr -s ' ')"

# The power button: ACPI's "button" driver (loaded by the initramfs) reports it as an input event,
# acpid runs /etc/acpi/PWRF/00000080 for it, which powers off.
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho "mc-vm: power button: powering off"\nsync\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
command -v acpid >/dev/null && acpid -c /etc/acpi -l /dev/null -p /run/acpid.pid

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

while :; do
    setsid sh -c 'exec sh -l </dev/ttyS0 >/dev/ttyS0 2>&1'
    sleep 1
done
