"""The device rules on cgroup v2: an eBPF program the kernel runs at each open(2) or mknod(2)
of a device node (cgroup v1 has the devices controller and its devices.allow/deny files instead).

    Documentation/admin-guide/cgroup-v2.rst "Device controller"; bpf(2) via kernel/bpf.py
    shell: `bpftool cgroup attach /sys/fs/cgroup/G device pinned PROG multi` (with a program
    compiled elsewhere)

The rules are the OCI spec's linux.resources.devices, as v1 applies them: in order, each one
overriding the ones before; a rule for every device ("a", any major and minor) resets the list,
as writing "a" to devices.deny does. The program therefore tests the rules from the last to the
first and returns the first match's verdict (1 allow, 0 deny); none matches: the default.

    r1 → struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    r2 = type (low 16 bits: 1 block, 2 char)    r3 = access (high 16 bits: 1 mknod, 2 read, 4 write)
    r4 = major                                  r5 = minor
    for each rule, last first:
        if r2 != TYPE: skip   (not for "a")      if r4 != MAJOR: skip   (not for "*")
        if r5 != MINOR: skip  (not for "*")
        allow: if r3 & ~ACCESS: skip (every access asked for must be allowed)
        deny:  if r3 & ACCESS == 0: skip (any access it names is refused)
        r0 = ALLOW; exit
    r0 = DEFAULT; exit
"""
from __future__ import annotations

import os

from ..kernel.bpf import (AND32_K, BPF_CGROUP_DEVICE, BPF_PROG_TYPE_CGROUP_DEVICE, EXIT, JEQ_K,
                          JNE_K, LDX_MEM_W, MOV32_X, MOV64_K, RSH32_K, insn, prog_attach, prog_load)

DEVICE_TYPES = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}


def compile_rules(rules) -> bytes:
    """(allow, type a|b|c, major -1=*, minor -1=*, access "rwm") in order → the program."""
    default, rules = effective_rules(rules)
    program = [insn(LDX_MEM_W, 2, 1, 0), insn(AND32_K, 2, imm=0xFFFF),   # r2 = type
               insn(LDX_MEM_W, 3, 1, 0), insn(RSH32_K, 3, imm=16),      # r3 = access
               insn(LDX_MEM_W, 4, 1, 4), insn(LDX_MEM_W, 5, 1, 8)]      # r4, r5 = major, minor
    for rule in reversed(rules):
        program += rule_block(*rule)
    program += [insn(MOV64_K, 0, imm=int(default)), insn(EXIT)]
    return b"".join(program)


def effective_rules(rules) -> tuple[bool, list]:
    """The default verdict and the rules that still count: v1's semantics, where a rule for
    all devices with all access resets the list (and nothing said: the parent's allow-all)."""
    default, kept = True, []
    for rule in rules:
        allow, kind, major, minor, access = rule
        if kind == "a" and major < 0 and minor < 0 and set(access) >= set("rwm"):
            default, kept = allow, []
        else:
            kept.append(rule)
    return default, kept


def rule_block(allow: bool, kind: str, major: int, minor: int, access: str) -> list[bytes]:
    """One rule's tests, each a jump past the rest of the block when the rule does not match."""
    mask = sum(ACCESS_BITS[a] for a in access)
    code: list = []                         # an instruction, or (opcode, register, imm): "skip"
    if kind != "a":
        code.append((JNE_K, 2, DEVICE_TYPES[kind]))
    if major >= 0:
        code.append((JNE_K, 4, major))
    if minor >= 0:
        code.append((JNE_K, 5, minor))
    if mask != 7:                           # r6 = access & …
        code += [insn(MOV32_X, 6, 3), insn(AND32_K, 6, imm=(7 & ~mask) if allow else mask),
                 (JNE_K if allow else JEQ_K, 6, 0)]   # allow: none outside; deny: any inside
    code += [insn(MOV64_K, 0, imm=int(allow)), insn(EXIT)]
    n = len(code)                           # a jump at i lands at i + 1 + off: past the block
    return [c if isinstance(c, bytes) else insn(c[0], c[1], off=n - i - 1, imm=c[2])
            for i, c in enumerate(code)]


def attach_device_filter(cgroup_dir: str, rules) -> None:
    """Load the program for `rules` and attach it to the cgroup (it stays until rmdir)."""
    fd = prog_load(compile_rules(rules), BPF_PROG_TYPE_CGROUP_DEVICE, "mc_devices")
    try:
        prog_attach(fd, cgroup_dir, BPF_CGROUP_DEVICE)
    finally:
        os.close(fd)
