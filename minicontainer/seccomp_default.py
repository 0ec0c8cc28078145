"""Docker's default seccomp profile, as data: the allowlist every container gets.

    man 2 seccomp; Docker: docs/security/seccomp.md, moby/profiles seccomp/default.json
    shell: docker run --security-opt seccomp=docs/seccomp-default.json …  (the same profile)

An allowlist in Docker's own JSON format: whatever system call it does not name fails with
EPERM. Rules may depend on the capabilities the container keeps (`includes: {caps: […]}`),
on the architecture, the kernel version, or one argument's value (`socket` for every address
family but AF_VSOCK). security.py compiles it (kernel/seccomp.py) in the parent, before fork.

docs/seccomp-default.json is default_seccomp_profile_json() written out, byte for byte
(tests/test_seccomp.py keeps the two equal): a student can read it, edit a copy and pass
that with --security-opt seccomp=FILE, to minicontainer or to Docker.
"""
from __future__ import annotations

import errno

# Docker's list (moby/profiles seccomp/default.json, 2025) of calls every container may make.
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect
open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename
renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64
utimes vfork vmsplice wait4 waitid waitpid write writev
""".split()

_NAMESPACE_FLAGS = 0x7E020000     # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def _allow_with(cap: str, *names: str) -> dict:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}


DEFAULT_SECCOMP_PROFILE = {
    "comment": "minicontainer's default: Docker's default profile (moby/profiles, 2025) without "
               "add_key, keyctl and request_key, which Docker allows since 2025 because keyrings "
               "follow user namespaces; minicontainer has none, so the container's root would "
               "share the host root's keyrings. Rules for architectures minicontainer does not "
               "filter (ppc64le, s390x, riscv64) are left out.",
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": errno.EPERM,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "syscalls": [
        {"names": _ALLOWED, "action": "SCMP_ACT_ALLOW"},
        {"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": "SCMP_ACT_ALLOW",
         "includes": {"minKernel": "4.8"},
         "comment": "before 4.8 ptrace could bypass seccomp"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}],
         "comment": "every address family but AF_VSOCK (40): vsock reaches the hypervisor"},
        *({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}
          for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)),   # LINUX, LINUX32, UNAME26, query
        {"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                   "cacheflush", "set_tls"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32", "x86"]}},
        _allow_with("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
        _allow_with("CAP_SYS_ADMIN", "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
                    "fsopen", "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
                    "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
                    "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                    "setns", "syslog", "umount", "umount2", "unshare"),
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": _NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "comment": "fork and threads, but no CLONE_NEW* flag: no new namespaces"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "comment": "clone3 passes its flags in memory, which BPF cannot read: ENOSYS makes "
                    "glibc fall back to clone, whose flags it can check"},
        _allow_with("CAP_SYS_BOOT", "reboot"),
        _allow_with("CAP_SYS_CHROOT", "chroot"),
        _allow_with("CAP_SYS_MODULE", "delete_module", "init_module", "finit_module"),
        _allow_with("CAP_SYS_PACCT", "acct"),
        _allow_with("CAP_SYS_PTRACE", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                    "process_vm_writev", "ptrace"),
        _allow_with("CAP_SYS_RAWIO", "iopl", "ioperm"),
        _allow_with("CAP_SYS_TIME", "settimeofday", "stime", "clock_settime", "clock_settime64"),
        _allow_with("CAP_SYS_TTY_CONFIG", "vhangup"),
        _allow_with("CAP_SYS_NICE", "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
        _allow_with("CAP_SYSLOG", "syslog"),
        _allow_with("CAP_BPF", "bpf"),
        _allow_with("CAP_PERFMON", "perf_event_open"),
    ],
}


def default_seccomp_profile() -> dict:
    """A copy of the default profile, to modify or to save as a starting point."""
    import copy
    return copy.deepcopy(DEFAULT_SECCOMP_PROFILE)


def default_seccomp_profile_json() -> str:
    """The default profile as Docker-format JSON (docs/seccomp-default.json is this text)."""
    import json
    return json.dumps(DEFAULT_SECCOMP_PROFILE, indent=2) + "\n"
