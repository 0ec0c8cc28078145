"""Resource limits: Docker's run flags turned into plain numbers for the kernel.

    docker run -m 64m --memory-swap 128m --pids-limit 20 --cpus 0.5 --cpu-shares 512 --cpuset-cpus 0-1

Every flag is parsed the way Docker parses it, so a student can move a command line between
`docker run` and `minicontainer run` unchanged:

    -m/--memory      bytes with an optional binary unit: 64m = 64 * 1024 * 1024 (b, k, m, g, also t, p;
                     an optional "b" or "ib" after the unit: 64mb, 64MiB). At least 6m, like Docker.
    --memory-swap    memory PLUS swap, same units, or -1 for unlimited swap. Needs --memory and must be
                     at least --memory. Not given: Docker allows as much swap as memory (total = 2 x memory).
    --pids-limit     at most this many processes and threads; 0 or -1 mean unlimited.
    --cpus           a number of CPUs (0.5 = half of one CPU), turned into a CFS quota per 100 ms period.
    --cpu-shares     a relative weight, 2..262144 (default 1024); cgroup v2 calls it cpu.weight (1..10000).
    --cpuset-cpus    which CPUs may run the container: "0-1,3".

Bad values raise minicontainer.errors.ConfigError with one line saying what is wrong and what to use.
Nothing here touches the kernel: see v1.py and v2.py for the files these numbers are written to.
"""
from __future__ import annotations

import os
import re

from minicontainer.errors import ConfigError
from minicontainer.records import asdict, record

# Docker's own bounds (moby daemon/daemon_unix.go): linuxMinMemory, linuxMinCPUShares/MaxCPUShares.
MIN_MEMORY = 6 * 1024 * 1024
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
# The CFS period runc uses for --cpus; the kernel refuses a quota below 1 ms, hence --cpus >= 0.01.
CPU_PERIOD_US = 100_000
NANO = 10**9

# Same grammar as Docker's RAMInBytes (go-units): number, optional space, unit, optional i, optional b.
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_UNIT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_CPU_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")

# What every container may use whatever its rules say (runc's list): mknod of any node (it is
# the rules that decide about opening it), the default devices, ptys, /dev/console, tun.
# (minicontainer-oci after linux.resources.devices; `run --device` after "deny all".)
ALLOWED_DEVICES = ((True, "c", -1, -1, "m"), (True, "b", -1, -1, "m"), (True, "c", 1, 3, "rwm"),
                   (True, "c", 1, 8, "rwm"), (True, "c", 1, 7, "rwm"), (True, "c", 5, 0, "rwm"),
                   (True, "c", 1, 5, "rwm"), (True, "c", 1, 9, "rwm"), (True, "c", 5, 1, "rwm"),
                   (True, "c", 136, -1, "rwm"), (True, "c", 5, 2, "rwm"), (True, "c", 10, 200, "rwm"))


@record(frozen=True)
class Limits:
    """The limits of one container, in kernel units. None means "not set" (no limit)."""

    memory: int | None = None          # bytes
    memory_swap: int | None = None     # bytes of memory + swap, -1 = unlimited swap, None = Docker default
    pids_limit: int | None = None      # processes (tasks)
    nano_cpus: int | None = None       # CPUs x 10^9, as Docker's API stores --cpus
    cpu_shares: int | None = None      # 2..262144
    cpuset_cpus: str | None = None     # "0-1,3"
    # What the OCI runtime spec's linux.resources adds (minicontainer-oci; `run` leaves them None):
    cpu_period: int | None = None      # CFS period in us, with cpu_quota_us instead of nano_cpus
    cpu_quota_us: int | None = None    # CFS quota in us per period (-1: none)
    cpuset_mems: str | None = None     # memory nodes: "0"
    memory_reservation: int | None = None   # a soft limit: reclaimed down to it under pressure
    devices: tuple = ()                # (allow?, type a|c|b, major -1=*, minor -1=*, access "rwm")

    @property
    def empty(self) -> bool:
        return all(v in (None, ()) for v in asdict(self).values())

    def swap_total(self) -> int | None:
        """memory + swap as Docker applies it: unset means twice the memory; -1 means unlimited."""
        if self.memory is None:
            return None
        if self.memory_swap is None:
            return 2 * self.memory
        return self.memory_swap

    def cpu_quota(self) -> tuple[int, int] | None:
        """(quota_us, period_us) for --cpus: 0.5 CPUs = 50000 us of CPU time per 100000 us."""
        if self.cpu_quota_us is not None or self.cpu_period is not None:
            return (self.cpu_quota_us if self.cpu_quota_us is not None else -1,
                    self.cpu_period or CPU_PERIOD_US)
        if self.nano_cpus is None:
            return None
        return self.nano_cpus * CPU_PERIOD_US // NANO, CPU_PERIOD_US

    def cpu_weight(self) -> int | None:
        """--cpu-shares as cgroup v2's cpu.weight: runc's and crun's linear map of 2..262144 to 1..10000."""
        if self.cpu_shares is None:
            return None
        return shares_to_weight(self.cpu_shares)

    def to_dict(self) -> dict:
        """JSON-ready, for config.json; Limits(**d) reads it back."""
        return asdict(self)


def shares_to_weight(shares: int) -> int:
    """Map v1 cpu.shares [2, 262144] linearly onto v2 cpu.weight [1, 10000] (1024 -> 39)."""
    return 1 + ((shares - 2) * 9999) // 262142


def parse_limits(memory=None, memory_swap=None, pids_limit=None, cpus=None,
                 cpu_shares=None, cpuset_cpus=None, memory_reservation=None, cpu_period=None,
                 cpu_quota=None) -> Limits:
    """Check and convert the run flags; all None gives Limits() with no limits at all."""
    mem = parse_memory(memory)
    if cpus is not None and (cpu_period is not None or cpu_quota is not None):
        raise ConfigError("--cpus and --cpu-period/--cpu-quota conflict: --cpus is a quota per "
                          "100 ms period already; give one or the other")
    return Limits(
        memory=mem,
        memory_swap=parse_memory_swap(memory_swap, mem),
        pids_limit=parse_pids_limit(pids_limit),
        nano_cpus=parse_cpus(cpus),
        cpu_shares=parse_cpu_shares(cpu_shares),
        cpuset_cpus=parse_cpuset_cpus(cpuset_cpus),
        memory_reservation=parse_memory_reservation(memory_reservation, mem),
        cpu_period=parse_micros("--cpu-period", cpu_period, 1000, 1_000_000),
        cpu_quota_us=parse_micros("--cpu-quota", cpu_quota, 1000, None),
    )


def parse_memory_reservation(value, memory: int | None) -> int | None:
    """--memory-reservation: a soft limit (memory.soft_limit_in_bytes / memory.low)."""
    if value is None:
        return None
    size = parse_size("--memory-reservation", value)
    if memory is not None and size > memory:
        raise ConfigError(f"--memory-reservation {value} is above --memory: the soft limit must be "
                          "at most the hard one")
    return size


def parse_micros(flag: str, value, low: int, high: int | None) -> int | None:
    """--cpu-period (1000..1000000 us) and --cpu-quota (>= 1000 us, -1: none), as Docker."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"invalid {flag} {value!r}: microseconds, a whole number") from None
    if flag == "--cpu-quota" and number == -1:
        return -1
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high else f"at least {low} (or -1: no quota)"
        raise ConfigError(f"invalid {flag} {value}: {bound} microseconds")
    return number


def parse_size(flag: str, value) -> int:
    """'64m' -> 67108864, as Docker's RAMInBytes does (binary units, fractions truncated)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ConfigError(f'invalid {flag} "{value}": use a number with an optional unit b, k, m or g '
                          f'(e.g. 64m)')
    unit = match.group(2).lower() if match.group(2) else None
    from decimal import Decimal                     # exact: 0.1g is 107374182 bytes
    return int(Decimal(match.group(1)) * _UNIT[unit])


def format_size(size: int) -> str:
    """67108864 -> '64m': the largest Docker unit that divides the size exactly."""
    for unit in "gmk":
        if size % _UNIT[unit] == 0:
            return f"{size // _UNIT[unit]}{unit}"
    return f"{size}b"


def parse_memory(value) -> int | None:
    if value is None:
        return None
    size = parse_size("--memory", value)
    if size == 0:
        return None  # Docker: 0 means "no limit"
    if size < MIN_MEMORY:
        raise ConfigError(f'invalid --memory "{value}": the minimum is 6m (6291456 bytes), as in Docker')
    return size


def parse_memory_swap(value, memory: int | None) -> int | None:
    if value is None or str(value).strip() == "0":
        return None  # Docker: 0 is the same as not given
    if str(value).strip() == "-1":
        total = -1
    else:
        total = parse_size("--memory-swap", value)
    if memory is None:
        raise ConfigError("--memory-swap needs --memory: set -m/--memory too "
                          "(e.g. -m 64m --memory-swap 128m)")
    if total != -1 and total < memory:
        raise ConfigError(f'invalid --memory-swap "{value}": it counts memory plus swap, so it must be '
                          f'at least --memory ({format_size(memory)}), or -1 for unlimited swap')
    return total


def parse_pids_limit(value) -> int | None:
    if value is None:
        return None
    try:
        limit = int(str(value).strip())
    except ValueError:
        raise ConfigError(f'invalid --pids-limit "{value}": use a whole number of processes '
                          f'(e.g. 100), or -1 for unlimited') from None
    if limit in (0, -1):
        return None  # Docker: 0 and -1 both mean unlimited
    if limit < 0:
        raise ConfigError(f'invalid --pids-limit "{value}": use a positive number, or -1 for unlimited')
    return limit


def parse_cpus(value) -> int | None:
    """'0.5' -> 500000000 nano-CPUs; range 0.01 .. the CPUs this process may use, like Docker."""
    if value is None:
        return None
    from decimal import Decimal, InvalidOperation      # exact decimals: no float rounding
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ConfigError(f'invalid --cpus "{value}": use a number of CPUs such as 0.5 or 2')
    if amount == 0:
        return None  # Docker: 0 means "no limit"
    nano = amount * NANO
    if nano != nano.to_integral_value():
        raise ConfigError(f'invalid --cpus "{value}": too precise, use at most 9 decimals')
    ncpu = count_cpus()
    if amount < Decimal("0.01") or amount > ncpu:
        raise ConfigError(f'invalid --cpus "{value}": the range is 0.01 to {ncpu} '
                          f'(this machine has {ncpu} CPUs)')
    return int(nano)


def parse_cpu_shares(value) -> int | None:
    if value is None:
        return None
    try:
        shares = int(str(value).strip())
    except ValueError:
        shares = None
    if shares == 0:
        return None  # Docker: 0 means the default (1024)
    if shares is None or not MIN_CPU_SHARES <= shares <= MAX_CPU_SHARES:
        raise ConfigError(f'invalid --cpu-shares "{value}": use a whole number from 2 to 262144 '
                          f'(the default weight is 1024)')
    return shares


def parse_cpuset_cpus(value) -> str | None:
    """'0-1,3' -> '0-1,3' after checking the syntax and that every CPU exists."""
    if value is None:
        return None
    text = str(value).strip().replace(" ", "")
    if not _CPU_LIST.match(text):
        raise ConfigError(f'invalid --cpuset-cpus "{value}": use CPU numbers and ranges like 0-1,3')
    wanted = expand_cpu_list(text)
    if not wanted:
        raise ConfigError(f'invalid --cpuset-cpus "{value}": a range runs low to high, like 0-1')
    online = online_cpus()
    missing = sorted(wanted - online)
    if missing:
        raise ConfigError(f'invalid --cpuset-cpus "{value}": CPU {missing[0]} is not available; '
                          f'this machine has CPUs {format_cpu_list(online)}')
    return text


def expand_cpu_list(text: str) -> set[int]:
    """'0-2,5' -> {0, 1, 2, 5}, the kernel's "cpu list" format (see cpuset(7))."""
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def format_cpu_list(cpus: set[int]) -> str:
    """{0, 1, 2, 5} -> '0-2,5'."""
    runs, ordered = [], sorted(cpus)
    for cpu in ordered:
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def online_cpus() -> set[int]:
    """The CPUs the kernel has online (/sys/devices/system/cpu/online)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return expand_cpu_list(f.read().strip())
    except OSError:
        return set(range(os.cpu_count() or 1))


def count_cpus() -> int:
    """How many CPUs this process may run on, as Docker's NCPU (sched_getaffinity(2))."""
    return len(os.sched_getaffinity(0))
