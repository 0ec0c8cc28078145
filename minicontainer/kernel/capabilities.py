"""Capabilities: the power of root, cut into ~41 pieces that can be kept or dropped one by one.

    man 7 capabilities, man 2 capset, man 2 prctl (PR_CAPBSET_DROP, PR_SET_KEEPCAPS, PR_CAP_AMBIENT)
    shell: grep Cap /proc/self/status; capsh --decode=00000000a80425fb;
           setpriv --bounding-set=-all,+chown,+kill --inh-caps=-all --ambient-caps=-all CMD

The kernel never asks "is this process root?" — it asks "does it have CAP_NET_ADMIN?",
"CAP_SYS_ADMIN?" and so on. Each thread carries five sets, each a 64-bit mask (bit N = the
capability numbered N), shown in hex in /proc/PID/status:

    CapBnd  bounding     the ceiling: no execve can ever grant a capability outside it again;
                         drop-only, and dropping needs CAP_SETPCAP in the effective set
    CapPrm  permitted    what the thread may switch on
    CapEff  effective    what the kernel checks right now
    CapInh  inheritable  what may survive execve into a program whose *file* has those
                         inheritable bits (almost none do); Docker ≥ 20.10.14 leaves it empty
    CapAmb  ambient      what survives execve of ordinary programs for a non-root user;
                         Docker leaves it empty too

What execve does (simplified, no file capabilities): for uid 0 the program's file counts as
having every capability, so the new permitted set is the *bounding set* (| inheritable);
for any other uid it is only the ambient set. Hence a container's root gets exactly its
bounding set, and a container's non-root user gets nothing — unless ambient caps are raised.

setuid(0 → N) clears permitted and effective, unless PR_SET_KEEPCAPS is on: that is why a
runtime sets keepcaps, switches user, then sets the sets it wants (runc's order).

python-prctl does the work where it has the call (bounding set, keepcaps, capset through
libcap); release 1.8.1 has no PR_CAP_AMBIENT and knows capabilities only up to number 40, so
those two go through libc's prctl with ctypes.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import functools

import prctl

from ..errors import ConfigError, SyscallError
from .syscalls import libc

# Capability numbers: include/uapi/linux/capability.h (Linux 5.9 added 38–40).
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
NAMES: dict[int, str] = {number: name for name, number in CAPABILITIES.items()}

SETS = ("inheritable", "permitted", "effective", "bounding", "ambient")
_STATUS_FIELDS = {"CapInh": "inheritable", "CapPrm": "permitted", "CapEff": "effective",
                  "CapBnd": "bounding", "CapAmb": "ambient"}

PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_CAPBSET_DROP = 24


# ── names and masks ───────────────────────────────────────────────────────────────────────

def parse(name: str) -> str:
    """'net_raw', 'CAP_NET_RAW', 'Net_Raw' → 'CAP_NET_RAW' (Docker accepts all three)."""
    canonical = name.strip().upper()
    if not canonical.startswith("CAP_"):
        canonical = "CAP_" + canonical
    if canonical not in CAPABILITIES:
        raise ConfigError(f"unknown capability {name.strip()}: see `man 7 capabilities` "
                          "for the names (CAP_ prefix optional, any case)")
    return canonical


def to_mask(names) -> int:
    """{'CAP_CHOWN', 'CAP_KILL'} → 0x21: the form /proc/PID/status and capset(2) use."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def from_mask(mask: int) -> list[str]:
    """0x21 → ['CAP_CHOWN', 'CAP_KILL'] (unknown bits as 'cap_41', as capsh prints them)."""
    return [NAMES.get(bit, f"cap_{bit}") for bit in range(64) if mask >> bit & 1]


@functools.cache                                  # a property of the running kernel
def last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(NAMES)


def read_sets(pid: int | str = "self") -> dict[str, int]:
    """The five sets of a process, from /proc/PID/status: {'effective': 0xa80425fb, …}."""
    sets = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in _STATUS_FIELDS:
                sets[_STATUS_FIELDS[key]] = int(value, 16)
    return sets


# ── changing this thread's sets ───────────────────────────────────────────────────────────

def _libc_prctl(option: int, *args: int) -> int:
    args = (list(args) + [0, 0, 0, 0])[:4]
    if libc.prctl(option, *args) == -1:
        return ctypes.get_errno()
    return 0


def drop_bounding(keep_mask: int) -> None:
    """PR_CAPBSET_DROP every capability not in keep_mask. Needs CAP_SETPCAP: do it first."""
    for number in range(last_cap() + 1):
        if keep_mask >> number & 1:
            continue
        try:
            if number <= prctl.CAP_LAST_CAP:
                prctl.capbset_drop(number)
            elif err := _libc_prctl(PR_CAPBSET_DROP, number):
                raise OSError(err, "")
        except OSError as e:
            raise SyscallError("prctl", ("PR_CAPBSET_DROP", NAMES.get(number, f"cap_{number}")), e.errno,
                               "dropping from the bounding set needs CAP_SETPCAP in the effective set: "
                               "drop the bounding set before the other sets") from None


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across setuid() from root to another user."""
    try:
        prctl.set_keepcaps(bool(on))
    except OSError as e:
        raise SyscallError("prctl", ("PR_SET_KEEPCAPS", int(on)), e.errno) from None


def set_sets(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) through libcap: exactly these three masks (ambient is separate)."""
    known = [n for n in range(min(last_cap(), prctl.CAP_LAST_CAP) + 1)]
    pick = lambda mask, on: [n for n in known if bool(mask >> n & 1) == on]   # noqa: E731
    try:
        prctl.set_caps((pick(effective, True), prctl.CAP_EFFECTIVE, True),
                       (pick(effective, False), prctl.CAP_EFFECTIVE, False),
                       (pick(permitted, True), prctl.CAP_PERMITTED, True),
                       (pick(permitted, False), prctl.CAP_PERMITTED, False),
                       (pick(inheritable, True), prctl.CAP_INHERITABLE, True),
                       (pick(inheritable, False), prctl.CAP_INHERITABLE, False))
    except OSError as e:
        have = read_sets().get("permitted", 0)
        missing = from_mask(permitted & ~have)
        hint = (f"a process cannot add to its permitted set; missing: {', '.join(missing)}"
                 if missing else "")
        raise SyscallError("capset", (f"eff={effective:#x}", f"prm={permitted:#x}",
                                      f"inh={inheritable:#x}"), e.errno or _errno.EPERM, hint) from None


def clear_ambient() -> None:
    """PR_CAP_AMBIENT_CLEAR_ALL (Linux ≥ 4.3; older kernels have no ambient set to clear)."""
    err = _libc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if err and err != _errno.EINVAL:
        raise SyscallError("prctl", ("PR_CAP_AMBIENT", "PR_CAP_AMBIENT_CLEAR_ALL"), err)


def raise_ambient(mask: int) -> None:
    """PR_CAP_AMBIENT_RAISE each capability; each must already be permitted and inheritable."""
    for number in range(64):
        if mask >> number & 1:
            err = _libc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number)
            if err:
                raise SyscallError("prctl", ("PR_CAP_AMBIENT_RAISE", NAMES.get(number, number)), err,
                                   "an ambient capability must be in the permitted and inheritable sets")
