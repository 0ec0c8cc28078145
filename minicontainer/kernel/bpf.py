"""bpf(2): load an eBPF program into the kernel and attach it to a cgroup — just what cgroup v2's
device filter needs (cgroups/device_filter.py writes the program).

    bpf(2), Documentation/bpf/instruction-set.rst, Documentation/admin-guide/cgroup-v2.rst "Device
    controller"; the shell has no direct equivalent: `bpftool prog load F /sys/fs/bpf/P type
    cgroup/dev` then `bpftool cgroup attach /sys/fs/cgroup/G device pinned /sys/fs/bpf/P multi`

An eBPF instruction is 8 bytes: opcode, dst and src register (4 bits each), a 16-bit jump
offset, a 32-bit immediate. Registers r0 (the return value) … r10; r1 holds the program's context
(for a device program: struct bpf_cgroup_dev_ctx). The kernel's verifier checks the program
(no loops, every path ends in exit, only valid reads) before BPF_PROG_LOAD returns a file
descriptor; BPF_PROG_ATTACH hangs it on a cgroup directory, where it stays after the fd is
closed, until the cgroup is removed.
"""
from __future__ import annotations

import ctypes
import os
import struct

from .syscalls import libc, syscall_number
from ..errors import SyscallError

# bpf(2) commands, program and attach types (include/uapi/linux/bpf.h)
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2                 # ancestors' programs keep running too (systemd's, say)

# Opcodes: instruction class | operation | source (K: the immediate, X: a register)
LDX_MEM_W = 0x61                      # dst = *(u32 *)(src + off)
MOV32_X, MOV64_K = 0xbc, 0xb7         # dst = src (32 bit); dst = imm
AND32_K, RSH32_K = 0x54, 0x74         # dst &= imm; dst >>= imm (32 bit)
JEQ_K, JNE_K = 0x15, 0x55             # if dst == / != imm: skip `off` instructions
EXIT = 0x95                           # return r0


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One instruction, as struct bpf_insn lays it out (little-endian on x86-64 and arm64)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


class ProgLoadAttr(ctypes.Structure):
    """union bpf_attr for BPF_PROG_LOAD (the fields up to expected_attach_type)."""
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32)]


class ProgAttachAttr(ctypes.Structure):
    """union bpf_attr for BPF_PROG_ATTACH."""
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    ret = libc.syscall(syscall_number("bpf"), ctypes.c_int(cmd), ctypes.byref(attr),
                       ctypes.c_uint(ctypes.sizeof(attr)))
    return ret if ret >= 0 else -ctypes.get_errno()


def prog_load(program: bytes, prog_type: int, name: str) -> int:
    """BPF_PROG_LOAD: the verifier checks `program`. If it refuses, load again with its log on
    (a log too small for a long, accepted program would fail the load: ENOSPC) to say why."""
    code = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"MIT")
    log = ctypes.create_string_buffer(65536)
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(program) // 8,
                        insns=ctypes.addressof(code), license=ctypes.addressof(license),
                        prog_name=name.encode()[:15])
    fd = bpf(BPF_PROG_LOAD, attr)
    if fd < 0:
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        bpf(BPF_PROG_LOAD, attr)
        verifier = log.value.decode(errors="replace").strip().splitlines()
        raise SyscallError("bpf", ("BPF_PROG_LOAD", name), -fd,
                           verifier[-1] if verifier else "the kernel refused the eBPF program")
    return fd


def prog_attach(prog_fd: int, cgroup_dir: str, attach_type: int, flags: int = BPF_F_ALLOW_MULTI) -> None:
    """BPF_PROG_ATTACH: from now on the program runs for every process in the cgroup."""
    target = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        err = bpf(BPF_PROG_ATTACH, ProgAttachAttr(target_fd=target, attach_bpf_fd=prog_fd,
                                                  attach_type=attach_type, attach_flags=flags))
    finally:
        os.close(target)
    if err < 0:
        raise SyscallError("bpf", ("BPF_PROG_ATTACH", cgroup_dir), -err)
