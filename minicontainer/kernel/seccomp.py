"""seccomp: a small program the kernel runs before every system call the container makes.

    man 2 seccomp, man 2 prctl (PR_SET_SECCOMP), man 7 capabilities, man 7 bpf (classic BPF:
    linux/Documentation/networking/filter.rst)        see it: grep Seccomp /proc/PID/status
    shell: no standard command builds one; `docker run --security-opt seccomp=FILE.json`,
    `bwrap --seccomp FD` (takes a compiled program) and `seccomp-tools dump` are the usual tools.

The program is *classic BPF*: a list of 8-byte instructions with one accumulator register,
forward jumps only, at most 4096 instructions. Its input is `struct seccomp_data`:

    offset 0  nr     the system call number (per architecture: mount is 165 on x86_64)
    offset 4  arch   AUDIT_ARCH_X86_64, …: which numbering `nr` is in
    offset 16 args   six 64-bit arguments (little-endian: low word first)

and its answer is an action: ALLOW, ERRNO(n) (the call fails with errno n and never runs),
KILL_PROCESS, TRAP (SIGSYS) or LOG. Once installed a filter can never be removed, by
anyone, and it is inherited by every child and kept across execve.

This module turns a Docker-format JSON profile into that program, and installs it:

    ld  [arch]   ≠ ours             → KILL   a 32-bit (int 0x80) call uses other numbers
    ld  [nr]     x32 bit (2^30) set → KILL   the x32 ABI, also other numbers
    binary search over nr ranges    → ret    most calls: decided by the number alone
                                      or     a few (clone, personality, socket): compare args
    nr above all the profile names  → ERRNO(ENOSYS), so libc falls back, as runc does

Why generate BPF ourselves instead of using libseccomp? libseccomp's Python binding is a
Cython module shipped with libseccomp's sources and Debian (python3-seccomp), not on PyPI, so
a pip-installed virtual environment cannot have it. And the generator is short enough to
read: which is the point of minicontainer. The cost: only the native architecture is
filtered (x86_64, aarch64; see syscall_table.py); everything else is refused at resolve time.

Supported from Docker's format: defaultAction, defaultErrnoRet, syscalls[].names (or name),
action (SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_THREAD, _KILL_PROCESS, _TRAP, _LOG), errnoRet,
args (index, value, valueTwo, op: SCMP_CMP_EQ/NE/LT/LE/GT/GE/MASKED_EQ), includes and
excludes (caps, arches, minKernel), comment; architectures and archMap are read but only the
native architecture is filtered. Not supported (ConfigError): SCMP_ACT_TRACE and
SCMP_ACT_NOTIFY (they need a tracer or a listener process), flags, listenerPath.
"""
from __future__ import annotations

import ctypes
import json
import os
import struct

from ..errors import ConfigError, SyscallError
from . import syscall_table
from ..records import field, record
from .syscalls import libc

# ── the kernel's constants ────────────────────────────────────────────────────────────────

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
ENOSYS = 38
EPERM = 1

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}    # EM_* | 64-bit | little-endian
X32_SYSCALL_BIT = 0x40000000
DOCKER_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}       # includes/excludes "arches"
BPF_MAXINSNS = 4096

# Classic BPF opcodes (linux/bpf_common.h): class | size | mode  or  class | op | source.
LD_W_ABS = 0x20      # A = *(u32 *)(seccomp_data + k)
ALU_AND_K = 0x54     # A &= k
JMP_JA = 0x05        # pc += k
JMP_JEQ_K = 0x15     # pc += (A == k) ? jt : jf
JMP_JGT_K = 0x25     # pc += (A >  k) ? jt : jf
JMP_JGE_K = 0x35     # pc += (A >= k) ? jt : jf
RET_K = 0x06         # return k
_JUMPS = {JMP_JEQ_K: "jeq", JMP_JGT_K: "jgt", JMP_JGE_K: "jge"}

ACTIONS = {"SCMP_ACT_ALLOW": RET_ALLOW, "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_KILL": RET_KILL_THREAD,
           "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD, "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
           "SCMP_ACT_TRAP": RET_TRAP, "SCMP_ACT_LOG": RET_LOG}
UNSUPPORTED_ACTIONS = {"SCMP_ACT_TRACE": "it hands the call to a ptrace tracer, and minicontainer has none",
                       "SCMP_ACT_NOTIFY": "it hands the call to a listener process, and minicontainer has none"}
OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
       "SCMP_CMP_MASKED_EQ")
_PROFILE_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls", "comment"}
_RULE_KEYS = {"names", "name", "action", "errnoRet", "args", "includes", "excludes", "comment"}
_FILTER_KEYS = {"caps", "arches", "minKernel"}


def native_arch() -> str:
    """'x86_64' or 'aarch64'; any other machine cannot get a filter from us."""
    machine = os.uname().machine
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if machine not in AUDIT_ARCH:
        raise ConfigError(f"seccomp filters are built for x86_64 and aarch64 only, not {machine}: "
                          "use --security-opt seccomp=unconfined on this machine")
    return machine


def action_name(ret: int) -> str:
    """0x00050001 → 'ERRNO(EPERM)', as strace and seccomp-tools print actions."""
    import errno as errno_names
    if ret & 0xFFFF0000 == RET_ERRNO:
        return f"ERRNO({errno_names.errorcode.get(ret & 0xFFFF, ret & 0xFFFF)})"
    names = {RET_ALLOW: "ALLOW", RET_KILL_PROCESS: "KILL_PROCESS", RET_KILL_THREAD: "KILL_THREAD",
             RET_TRAP: "TRAP", RET_LOG: "LOG"}
    return names.get(ret, f"{ret:#x}")


# ── reading a Docker-format profile ───────────────────────────────────────────────────────

@record(frozen=True)
class Condition:
    """One argument test: args[index] <op> value (MASKED_EQ: args[index] & value == value_two)."""
    index: int
    op: str
    value: int
    value_two: int = 0


@record(frozen=True)
class Rule:
    """An action taken when every condition holds (no conditions: always)."""
    action: int
    conditions: tuple[Condition, ...] = ()


def load_profile(path: str) -> dict:
    """Read a Docker-format JSON profile; every problem is a ConfigError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"seccomp profile {path} not found: give the path of a Docker-format "
                          "JSON file, or seccomp=unconfined") from None
    except OSError as e:
        raise ConfigError(f"cannot read seccomp profile {path}: {e.strerror}") from None
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"seccomp profile {path} is not valid JSON: {e.msg} at line {e.lineno} "
                          f"column {e.colno}") from None
    if not isinstance(profile, dict):
        raise ConfigError(f"seccomp profile {path}: expected a JSON object with defaultAction and syscalls")
    return profile


def _parse_action(name, errno_ret, where: str, default_errno: int = EPERM) -> int:
    if name in UNSUPPORTED_ACTIONS:
        raise ConfigError(f"seccomp profile {where}: {name} is not supported: {UNSUPPORTED_ACTIONS[name]}")
    if name not in ACTIONS:
        raise ConfigError(f"seccomp profile {where}: unknown action {name!r}: use one of "
                          + ", ".join(ACTIONS))
    if name != "SCMP_ACT_ERRNO":
        return ACTIONS[name]
    err = default_errno if errno_ret is None else errno_ret
    if not isinstance(err, int) or not 0 <= err <= 4095:
        raise ConfigError(f"seccomp profile {where}: errnoRet {err!r} must be an errno number from 0 to 4095")
    return RET_ERRNO | err


def _parse_args(args, where: str) -> list[tuple[Condition, ...]]:
    """A rule's args as alternatives of AND-ed conditions.

    Docker's runtime (runc) ANDs the conditions of one rule, except when two of them test the
    same argument: then each condition becomes a rule of its own (OR) — kept here as is."""
    if not isinstance(args, list):
        raise ConfigError(f"seccomp profile {where}.args: expected a list")
    conditions = []
    for j, arg in enumerate(args):
        at = f"{where}.args[{j}]"
        if not isinstance(arg, dict) or set(arg) - {"index", "value", "valueTwo", "op"}:
            raise ConfigError(f"seccomp profile {at}: expected {{index, value, valueTwo, op}}")
        index, op = arg.get("index"), arg.get("op")
        value, value_two = arg.get("value", 0), arg.get("valueTwo", 0)
        if not isinstance(index, int) or not 0 <= index <= 5:
            raise ConfigError(f"seccomp profile {at}: index {index!r} must be 0 to 5 (a call has six arguments)")
        if op not in OPS:
            raise ConfigError(f"seccomp profile {at}: unknown op {op!r}: use one of {', '.join(OPS)}")
        for v in (value, value_two):
            if not isinstance(v, int) or not 0 <= v < 2**64:
                raise ConfigError(f"seccomp profile {at}: {v!r} is not an unsigned 64-bit number")
        conditions.append(Condition(index, op, value, value_two))
    indexes = [c.index for c in conditions]
    if len(set(indexes)) != len(indexes):
        return [(c,) for c in conditions]
    return [tuple(conditions)]


def _kernel_version(release: str) -> tuple[int, ...]:
    parts = []
    for piece in release.split("-")[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def _applies(entry: dict, where: str, caps: frozenset, arch: str, kernel: tuple) -> bool:
    """Docker's includes/excludes: all included caps held, no excluded cap held, and so on."""
    for key in ("includes", "excludes"):
        f = entry.get(key) or {}
        if not isinstance(f, dict) or set(f) - _FILTER_KEYS:
            raise ConfigError(f"seccomp profile {where}.{key}: expected an object with caps, arches, minKernel")
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    arch_name = DOCKER_ARCH_NAMES[arch]
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and arch_name not in inc["arches"]:
        return False
    if inc.get("minKernel") and kernel < _kernel_version(inc["minKernel"]):
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("arches") and arch_name in exc["arches"]:
        return False
    if exc.get("minKernel") and kernel >= _kernel_version(exc["minKernel"]):
        return False
    return True


def profile_rules(profile: dict, caps, arch: str, kernel: tuple | None = None
                  ) -> tuple[int, dict[int, list[Rule]], list[str], int]:
    """(default action, {nr: [rules in profile order]}, names this architecture lacks,
    the highest number the profile names at all)."""
    if set(profile) - _PROFILE_KEYS:
        extra = sorted(set(profile) - _PROFILE_KEYS)
        raise ConfigError(f"seccomp profile: {', '.join(extra)} not supported: minicontainer reads "
                          + ", ".join(sorted(_PROFILE_KEYS)))
    if "defaultAction" not in profile:
        raise ConfigError("seccomp profile: defaultAction is missing (e.g. \"SCMP_ACT_ERRNO\")")
    default_errno = profile.get("defaultErrnoRet", EPERM)
    default = _parse_action(profile["defaultAction"], default_errno, "defaultAction")
    kernel = kernel or _kernel_version(os.uname().release)
    caps, table = frozenset(caps), syscall_table.BY_ARCH[arch]
    rules: dict[int, list[Rule]] = {}
    unknown: list[str] = []
    highest = -1
    entries = profile.get("syscalls") or []
    if not isinstance(entries, list):
        raise ConfigError("seccomp profile: syscalls must be a list")
    for i, entry in enumerate(entries):
        where = f"syscalls[{i}]"
        if not isinstance(entry, dict) or set(entry) - _RULE_KEYS:
            extra = sorted(set(entry) - _RULE_KEYS) if isinstance(entry, dict) else ["(not an object)"]
            raise ConfigError(f"seccomp profile {where}: {', '.join(extra)} not supported: "
                              f"use {', '.join(sorted(_RULE_KEYS))}")
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        if not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"seccomp profile {where}: names must be a non-empty list of system call names")
        action = _parse_action(entry.get("action"), entry.get("errnoRet"), where, default_errno)
        alternatives = _parse_args(entry.get("args") or [], where)
        highest = max([highest] + [table[n] for n in names if n in table])
        if not _applies(entry, where, caps, arch, kernel):
            continue
        for name in names:
            if name not in table:
                unknown.append(name)           # e.g. chown32: other architectures' calls
                continue
            rules.setdefault(table[name], []).extend(Rule(action, conds) for conds in alternatives)
    return default, rules, unknown, highest


# ── from rules to a decision per system call number ───────────────────────────────────────

@record(frozen=True)
class Leaf:
    """What happens to one syscall number: `fallback`, unless a conditional rule matches first."""
    fallback: int
    rules: tuple[Rule, ...] = ()


def plan_syscall(name: str, rules: list[Rule], default: int, first_wins: bool = False) -> Leaf:
    """An unconditional rule sets the fallback; conditional rules are tried first, in order.
    Two unconditional rules with different actions contradict each other: an error for a
    profile a user wrote; for an OCI config (podman writes such pairs, e.g. setns allowed, then
    denied without CAP_SYS_ADMIN) the first one stands, as with runc and crun (libseccomp)."""
    plain = [r.action for r in rules if not r.conditions]
    if len(set(plain)) > 1 and not first_wins:
        raise ConfigError(f"seccomp profile: {name} has conflicting actions "
                          f"{', '.join(sorted(action_name(a) for a in set(plain)))}: keep one rule for it")
    fallback = plain[0] if plain else default
    conditional = tuple(r for r in rules if r.conditions and r.action != fallback)
    return Leaf(fallback, conditional)


@record
class Filter:
    """A compiled filter for one architecture: the program and what it decides per call."""
    arch: str
    program: bytes
    leaves: dict[str, Leaf] = field(repr=False)
    unknown_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.program) // 8

    def describe(self, name: str) -> str:
        """'ALLOW', 'ERRNO(EPERM)', or 'ALLOW if arg0 & 0x7e020000 == 0x0; else ERRNO(EPERM)'."""
        leaf = self.leaves[name]
        if not leaf.rules:
            return action_name(leaf.fallback)
        parts = [f"{action_name(r.action)} if " + " and ".join(_condition_text(c) for c in r.conditions)
                 for r in leaf.rules]
        return "; ".join(parts) + f"; else {action_name(leaf.fallback)}"


def _condition_text(c: Condition) -> str:
    if c.op == "SCMP_CMP_MASKED_EQ":
        return f"arg{c.index} & {c.value:#x} == {c.value_two:#x}"
    symbol = {"SCMP_CMP_NE": "!=", "SCMP_CMP_LT": "<", "SCMP_CMP_LE": "<=", "SCMP_CMP_EQ": "==",
              "SCMP_CMP_GE": ">=", "SCMP_CMP_GT": ">"}[c.op]
    return f"arg{c.index} {symbol} {c.value:#x}"


def compile_profile(profile: dict, caps, arch: str | None = None, kernel: tuple | None = None,
                    first_wins: bool = False) -> Filter:
    """A Docker-format profile, for a container holding `caps`, as a BPF program for `arch`.
    first_wins: an OCI config's profile (see plan_syscall)."""
    arch = arch or native_arch()
    default, rules, unknown, highest = profile_rules(profile, caps, arch, kernel)
    table = syscall_table.BY_ARCH[arch]
    # Calls newer than any the profile names get ENOSYS, not the default EPERM: "this kernel
    # has no such call" makes libc fall back to an older one (runc does the same). A profile
    # that allows by default keeps allowing them.
    beyond = Leaf(default if default == RET_ALLOW else RET_ERRNO | ENOSYS)
    leaves = {name: plan_syscall(name, rules.get(nr, []), default, first_wins) if nr <= highest else beyond
              for name, nr in table.items()}
    by_number = {table[name]: leaf for name, leaf in leaves.items()}
    ranges = _ranges(by_number, Leaf(default), highest, beyond)
    program = _assemble(arch, ranges)
    if len(program) // 8 > BPF_MAXINSNS:
        raise ConfigError(f"seccomp profile too large: {len(program) // 8} BPF instructions, "
                          f"the kernel takes at most {BPF_MAXINSNS}: use fewer argument rules")
    return Filter(arch, program, leaves, tuple(dict.fromkeys(unknown)))


def _ranges(by_number: dict[int, Leaf], default: Leaf, highest: int, beyond: Leaf) -> list[tuple[int, Leaf]]:
    """[(first number, leaf), …]: runs of consecutive numbers with the same plain decision
    merge into one range, so the search below stays short (≈ 8 comparisons)."""
    ranges: list[tuple[int, Leaf]] = []
    for nr in range(highest + 1):
        leaf = by_number.get(nr, default)
        if ranges and not leaf.rules and ranges[-1][1] == leaf:
            continue
        ranges.append((nr, leaf))
    if not ranges or ranges[-1][1] != beyond:
        ranges.append((highest + 1, beyond))
    return ranges


# ── the assembler: classic BPF with labels ────────────────────────────────────────────────

class Assembler:
    """Instructions with symbolic jump targets. Conditional jumps only ever skip one
    instruction (jt/jf are 8-bit); far targets are reached by the `ja` after them (32-bit)."""

    def __init__(self):
        self.code: list[list] = []                 # [opcode, jt, jf, k or label]
        self.labels: dict[str, int] = {}
        self.count = 0

    def label(self) -> str:
        self.count += 1
        return f"L{self.count}"

    def bind(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def load(self, offset: int) -> None:
        self.code.append([LD_W_ABS, 0, 0, offset])

    def and_(self, k: int) -> None:
        self.code.append([ALU_AND_K, 0, 0, k])

    def ret(self, k: int) -> None:
        self.code.append([RET_K, 0, 0, k])

    def goto(self, target: str) -> None:
        self.code.append([JMP_JA, 0, 0, target])

    def goto_if(self, jump: int, k: int, target: str) -> None:
        """if (A <jump> k) goto target"""
        self.code.append([jump, 0, 1, k])      # true: fall onto the ja; false: skip it
        self.goto(target)

    def goto_unless(self, jump: int, k: int, target: str) -> None:
        """if !(A <jump> k) goto target"""
        self.code.append([jump, 1, 0, k])
        self.goto(target)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (op, jt, jf, k) in enumerate(self.code):
            if isinstance(k, str):
                k = self.labels[k] - (pc + 1)           # ja: relative to the next instruction
                assert k >= 0, "classic BPF jumps forward only"
            out += struct.pack("<HBBI", op, jt, jf, k)
        return bytes(out)


def _arg_offsets(index: int) -> tuple[int, int]:
    """(low word, high word) offsets of args[index] in seccomp_data (little-endian)."""
    return 16 + 8 * index, 20 + 8 * index


def _emit_condition(asm: Assembler, c: Condition, fail: str) -> None:
    """Fall through when the 64-bit comparison holds; jump to `fail` when it does not.
    BPF compares 32 bits at a time: the high words decide unless they are equal."""
    lo, hi = _arg_offsets(c.index)
    v_hi, v_lo = c.value >> 32, c.value & 0xFFFFFFFF
    ok = asm.label()
    if c.op == "SCMP_CMP_EQ":
        asm.load(hi), asm.goto_unless(JMP_JEQ_K, v_hi, fail)
        asm.load(lo), asm.goto_unless(JMP_JEQ_K, v_lo, fail)
    elif c.op == "SCMP_CMP_NE":
        asm.load(hi), asm.goto_unless(JMP_JEQ_K, v_hi, ok)
        asm.load(lo), asm.goto_if(JMP_JEQ_K, v_lo, fail)
    elif c.op == "SCMP_CMP_MASKED_EQ":
        w_hi, w_lo = c.value_two >> 32, c.value_two & 0xFFFFFFFF
        if v_hi or w_hi:                    # (hi & 0) == 0 always holds: skip that half
            asm.load(hi), asm.and_(v_hi), asm.goto_unless(JMP_JEQ_K, w_hi, fail)
        asm.load(lo), asm.and_(v_lo), asm.goto_unless(JMP_JEQ_K, w_lo, fail)
    elif c.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        asm.load(hi), asm.goto_if(JMP_JGT_K, v_hi, ok), asm.goto_unless(JMP_JEQ_K, v_hi, fail)
        asm.load(lo), asm.goto_unless(JMP_JGT_K if c.op == "SCMP_CMP_GT" else JMP_JGE_K, v_lo, fail)
    else:                                                   # LT, LE: the negations of GE, GT
        asm.load(hi), asm.goto_if(JMP_JGT_K, v_hi, fail), asm.goto_unless(JMP_JEQ_K, v_hi, ok)
        asm.load(lo), asm.goto_if(JMP_JGE_K if c.op == "SCMP_CMP_LT" else JMP_JGT_K, v_lo, fail)
    asm.bind(ok)


def _emit_leaf(asm: Assembler, leaf: Leaf) -> None:
    for rule in leaf.rules:
        next_rule = asm.label()
        for condition in rule.conditions:
            _emit_condition(asm, condition, next_rule)
        asm.ret(rule.action)
        asm.bind(next_rule)
    asm.ret(leaf.fallback)


def _emit_search(asm: Assembler, ranges: list[tuple[int, Leaf]]) -> None:
    """Binary search on A (= nr): `nr >= first of the middle range ?` right half : left half."""
    if len(ranges) == 1:
        _emit_leaf(asm, ranges[0][1])
        return
    mid = len(ranges) // 2
    right = asm.label()
    asm.goto_if(JMP_JGE_K, ranges[mid][0], right)
    _emit_search(asm, ranges[:mid])
    asm.bind(right)                    # reached only by that jump: A still holds nr
    _emit_search(asm, ranges[mid:])


def _assemble(arch: str, ranges: list[tuple[int, Leaf]]) -> bytes:
    asm = Assembler()
    kill = asm.label()
    asm.load(4)                                             # seccomp_data.arch
    asm.goto_unless(JMP_JEQ_K, AUDIT_ARCH[arch], kill)
    asm.load(0)                                             # seccomp_data.nr
    if arch == "x86_64":
        search = asm.label()
        asm.goto_if(JMP_JEQ_K, 0xFFFFFFFF, search)          # nr -1: "no call" (ptrace), not x32
        asm.goto_if(JMP_JGE_K, X32_SYSCALL_BIT, kill)
        asm.bind(search)
    _emit_search(asm, ranges)
    asm.bind(kill)
    asm.ret(RET_KILL_PROCESS)
    return asm.assemble()


# ── reading a program back: the kernel's view, for students and tests ──────────────────────

def instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]


def disassemble(program: bytes) -> str:
    """One line per instruction, in the notation of the kernel's bpf_dbg and seccomp-tools."""
    fields = {0: "nr", 4: "arch"}
    lines = []
    for pc, (op, jt, jf, k) in enumerate(instructions(program)):
        if op == LD_W_ABS:
            what = fields.get(k) or f"args[{(k - 16) // 8}].{'hi' if (k - 16) % 8 else 'lo'}"
            text = f"ld   [{k}]  ; {what}"
        elif op == ALU_AND_K:
            text = f"and  #{k:#x}"
        elif op == JMP_JA:
            text = f"ja   {pc + 1 + k}"
        elif op in _JUMPS:
            text = f"{_JUMPS[op]}  #{k:#x}  jt {pc + 1 + jt}  jf {pc + 1 + jf}"
        else:
            text = f"ret  {action_name(k)}"
        lines.append(f"{pc:4d}: {text}")
    return "\n".join(lines)


def evaluate(program: bytes, nr: int, args=(), arch: str | int = "x86_64") -> int:
    """Run the program on one seccomp_data, exactly as the kernel would; returns the action.
    Lets a student ask "what happens to mount(…) on aarch64?" without making the call."""
    arch_value = AUDIT_ARCH[arch] if isinstance(arch, str) else arch
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, arch_value, 0, *(list(args) + [0] * 6)[:6])
    code, a, pc = instructions(program), 0, 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == LD_W_ABS:
            a = struct.unpack_from("<I", data, k)[0]
        elif op == ALU_AND_K:
            a &= k
        elif op == JMP_JA:
            pc += k
        elif op in _JUMPS:
            taken = {JMP_JEQ_K: a == k, JMP_JGT_K: a > k, JMP_JGE_K: a >= k}[op]
            pc += jt if taken else jf
        elif op == RET_K:
            return k


# ── installing it ─────────────────────────────────────────────────────────────────────────

class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog): from now on, for this thread and
    everything it executes. Needs no_new_privs, or CAP_SYS_ADMIN (EACCES otherwise)."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    ret = libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                     ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if ret == -1:
        err = ctypes.get_errno()
        hint = ("installing a filter needs no_new_privs or CAP_SYS_ADMIN: set no_new_privs first, "
                "or install the filter before dropping capabilities") if err == 13 else ""
        raise SyscallError("prctl", ("PR_SET_SECCOMP", "SECCOMP_MODE_FILTER", f"{len(program) // 8} instructions"),
                           err, hint)
