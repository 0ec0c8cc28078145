"""IPAM (IP address management): hand each container its own address, never twice.

    man 2 flock, man 3 inet (addresses), /proc/net/route     shell: flock FILE cmd

A network is a subnet, e.g. 10.201.0.0/16: .0 names the network, .1 is the gateway (the
bridge's own address), the last address is broadcast, every other one can be leased.
Which address is free is the bridge's allocator's to say (leases.py); two starts asking at
the same time could get the same one, so every read-modify-write happens under flock(2) on
one lock file (an exclusive lock that the kernel drops by itself if the process dies).
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import socket
import struct
from pathlib import Path

from ..errors import ConfigError, NetworkError

DEFAULT_SUBNET = "10.201.0.0/16"        # for the default network "bridge" (see docs/networking.md)
USER_SUBNET_POOL = "10.202.0.0/16"      # user-defined networks get the next free /24 from here


class FileLock:
    """`with FileLock(path):` — flock(LOCK_EX) on path; released on exit or process death."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)                           # closing the fd releases the lock
        self.fd = -1


# ── files ───────────────────────────────────────────────────────────────────────────────

def read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        raise NetworkError(f"cannot read {path}: {e}: fix or remove the file") from None


def write_json(path: Path, data) -> None:
    """Write to a temporary file and rename it over: readers see the old or the new, whole.
    An object is written one key per line (a lease file: one container per line) — readable,
    and each line made by json's C encoder: indent= would switch to the pure-Python one,
    ~25 ms for 1,000 leases at every start and stop."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, dict) and data:
        text = "{\n" + ",\n".join(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}"
                                  for key, value in sorted(data.items())) + "\n}\n"
    else:
        text = json.dumps(data, sort_keys=True) + "\n"
    tmp.write_text(text)
    os.replace(tmp, path)


# ── subnets ─────────────────────────────────────────────────────────────────────────────

def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """'10.201.0.0/16' → IPv4Network; a bad or too small subnet is a ConfigError."""
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise ConfigError(f"--subnet {text}: {e}: give an IPv4 network like 10.203.0.0/24") from None
    if net.prefixlen > 29:
        raise ConfigError(f"--subnet {text} is too small: use /29 or larger (e.g. /24)")
    return net


def gateway_of(net: ipaddress.IPv4Network) -> str:
    """The first usable address (.1) is the bridge's: the containers' default gateway."""
    return str(net.network_address + 1)


def overlapping_route(net: ipaddress.IPv4Network, except_dev: str = "") -> str | None:
    """A host route (from /proc/net/route) that overlaps `net`, as 'DEST/LEN dev IFACE', or None.
    Default routes (/0) do not count: they overlap everything and are meant to."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] == except_dev:
            continue
        # /proc/net/route prints addresses as host-order hex of network-order bytes
        dest = socket.inet_ntoa(struct.pack("=I", int(fields[1], 16)))
        mask = socket.inet_ntoa(struct.pack("=I", int(fields[7], 16)))
        route = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        if route.prefixlen and route.overlaps(net):
            return f"{route} dev {fields[0]}"
    return None


def pick_free_subnet(used: list[str]) -> str:
    """The first /24 of USER_SUBNET_POOL that overlaps neither our networks nor a host route."""
    taken = [ipaddress.IPv4Network(s) for s in used]
    for candidate in ipaddress.IPv4Network(USER_SUBNET_POOL).subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken) and not overlapping_route(candidate):
            return str(candidate)
    raise NetworkError(f"no free /24 left in {USER_SUBNET_POOL}: remove networks or give --subnet")
