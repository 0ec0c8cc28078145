"""The thin syscall layer: one module per kernel interface, each named after its man page.

    syscalls.py     libc through ctypes; turns -1/errno into SyscallError(call, args, errno)
    namespaces.py   unshare(2), setns(2), namespaces(7): what each namespace hides
    mount.py        mount(2), umount2(2) and the MS_* flags
    pivot_root.py   pivot_root(2) and chroot(2): changing what "/" means
    openat2.py      openat2(2) RESOLVE_IN_ROOT: a path inside the rootfs, never onto the host
    netdev.py       bringing `lo` up with an ioctl, as `ip link set lo up` does (netdevice(7))
    capabilities.py, seccomp.py   least privilege (capabilities(7), seccomp(2))

Python 3.11 has no os.unshare/os.setns, so these call libc directly; where the os module has
the call (chroot, sethostname via socket, mknod), we use it.
"""
