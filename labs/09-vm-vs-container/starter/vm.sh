#!/bin/bash
# Usage: bash vm.sh
# Boot a tiny virtual machine with QEMU: a Debian kernel and a busybox initramfs (the ones the
# project's cgroup-v2 test VM uses: tests/vm/). Its init mounts the host's / read-only, runs
# job.sh, and powers off. Print the guest's line and the time it took:
#   hello from the VM: kernel VERSION
#   vm seconds: S
set -uo pipefail
BOOT=${MC_VM_BOOT:-/var/cache/minicontainer-vm/current}     # made by: bash tests/vm/prepare.sh
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
echo 'echo "hello from the VM: kernel $(uname -r)"' > "$RUN/job.sh"

# KVM if the CPU can (vmx/svm and a usable /dev/kvm), else TCG: QEMU translates every guest
# instruction in software — slower, but it works anywhere.
ACCEL=tcg
if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then ACCEL=kvm; fi

# TODO: the four things every boot needs (qemu-system-x86_64(1), "Linux/Multiboot boot"):
KERNEL=TODO       # the kernel image:             $BOOT/vmlinux
INITRD=TODO       # the initial RAM file system:  $BOOT/initramfs.cpio
MEMORY=TODO       # MiB of RAM for the guest:     512
APPEND="TODO"     # the kernel's command line:    console=ttyS0 panic=-1 quiet mc_job=$RUN/job.sh
#   (quiet lets only kernel errors through to $RUN/console.log: drop it once to watch the boot, README step 1)

start=$(date +%s.%N)
timeout 300 qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
    -machine pc -accel "$ACCEL" -smp 1 \
    -m "$MEMORY" -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
    -serial "file:$RUN/console.log" \
    -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -device virtio-serial-pci -chardev "file,id=out,path=$RUN/out.log" \
    -device virtserialport,chardev=out,name=mc.out \
    -device virtio-rng-pci
end=$(date +%s.%N)

grep '^hello from the VM' "$RUN/out.log" 2>/dev/null
echo "vm seconds: $(awk "BEGIN { printf \"%.2f\", $end - $start }")"
