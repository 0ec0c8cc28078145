"""Virtual machines with QEMU: the hypervisor half of the course, beside the containers.

    machine.py     a VM's record and life: create, start, stop, kill, ls, inspect, rm, console
    qemu.py        the QEMU command line, built from the record (qemu-system-x86_64(1))
    qmp.py         the QEMU Machine Protocol, through the official qemu.qmp library
    accel.py       KVM or TCG, and why
    disks.py       the qcow2 disk: built from a rootfs-builder image, backing chains (qemu-img(1))
    snapshots.py   internal snapshots with RAM + CPU state (snapshot-save/-load) and external,
                   disk-only ones (a qcow2 overlay backed by the old disk)
    migration.py   live migration to a QEMU started with -incoming, and storage migration
                   (drive-mirror, block-job-complete)
    bootfiles.py   the guest kernel and initramfs (shared with the cgroup-v2 test stage)
    nodes.py       a VM on a cluster node: QEMU in the node's network namespace (migration.py
                   sends the RAM across the cluster network to another node's)
    ha.py          HA: the control plane cold-boots a failed node's VMs on a survivor

The CLI reaches all of this through minicontainer.api (vm_* functions). docs/vms.md teaches it.
Nothing is imported here: `minicontainer run` never pays for QEMU.
"""
