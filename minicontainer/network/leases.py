"""Leases: which container holds which address — recorded per state root, allocated per bridge.

    man 2 flock, man 7 arp (neighbour cache)       shell: flock FILE cmd; ip neigh show dev mc0

Two records, two scopes, each one small file per lease — a start or a stop reads and writes
its own, never the other containers' (with 1,000 running, a file of all leases cost ~20 µs
per lease at every start and stop):

  <root>/networks/NAME/leases/ID.json    the state root's view of one container: address,
                                         names, ports, hosts file (what gc, inspect and
                                         `network ls` read; changed under the root's lock)
  /run/minicontainer/bridges/BRIDGE@NETNS/
        ADDRESS                          the bridge's allocator: who holds ADDRESS (the lease
                                         file and container); no file, no holder
        resting.json                     addresses given back in the last REUSE_DELAY seconds
        next                             where the next search starts (round robin)
                                         (all changed under the directory's one flock)

Why two: the bridge mc0 and its subnet belong to the host — more exactly, to one network
namespace — while state roots are directories, and any number of them (`--root`, a test's
temporary root, a lab checker's) start containers on the same mc0. Leases kept only per root
handed 10.201.0.2 to a container of each. So every root asks the bridge's one allocator.
An allocator entry counts only while its owner's lease file still names that address: a root
that was deleted, or a lease gc released, frees the address without anybody cleaning up.

No immediate reuse: the host and the other containers cache "10.201.0.2 is at MAC m" (the
neighbour table, `ip neigh`). A new container given the address of one just removed has
another MAC; until the cached entry fails (seconds: DELAY, PROBE, FAILED) packets go to the
old MAC and are lost. So an address given back rests for REUSE_DELAY seconds while other
addresses are free, and veth.announce() sends a gratuitous ARP when eth0 gets an address,
which updates any cache that still holds it.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from pathlib import Path

from ..errors import NetworkError
from .ipam import FileLock, read_json, write_json

ALLOCATOR_DIR = Path("/run/minicontainer/bridges")
SO_NETNS_COOKIE = 71       # asm-generic/socket.h
REUSE_DELAY = 60.0          # s: longer than a neighbour entry stays REACHABLE (base_reachable_time 30 s)


def this_netns() -> str:
    """Our network namespace, by a name never used twice: its cookie (SO_NETNS_COOKIE, Linux
    5.14), unique until reboot — an nsfs inode is reused as soon as a namespace dies. A bridge's
    name is only unique within one namespace."""
    import socket
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            return "c" + str(struct.unpack("=Q", probe.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0])
        except OSError:                                  # older kernel: the inode will do
            return "i" + str(os.stat("/proc/thread-self/ns/net").st_ino)


class BridgeAllocator:
    """The one address allocator of a bridge in this network namespace, for every state root.

        with BridgeAllocator("mc0", fallback_dir) as alloc:
            ip = alloc.allocate(subnet, lease_file, container_id)
            alloc.give_back(ip, lease_file, container_id)
    One file per held address: an allocation looks at the addresses from `next` on until one
    is free — O(1) while the subnet is far from full, whatever the number of containers.
    Non-root callers that cannot write /run use `fallback_dir` (their state root): rootless
    containers get no bridge anyway."""

    def __init__(self, bridge: str, fallback_dir: Path):
        base = ALLOCATOR_DIR if os.geteuid() == 0 else fallback_dir
        self.path = base / f"{bridge}@{this_netns()}"
        self.lock: FileLock | None = None
        self.resting: dict[str, float] = {}
        self.changed = False
        self.made: list[str] = []                   # addresses recorded in this `with`

    def __enter__(self) -> "BridgeAllocator":
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock = FileLock(self.path.parent / ".lock").__enter__()    # one for all: dirs get removed
        if not self.path.is_dir():                   # a new bridge (or namespace): tidy up first
            prune(self.path.parent)
            self.path.mkdir(mode=0o700)
        self.resting = read_json(self.path / "resting.json", {})
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0]:                               # the caller failed: its lease was not written
                for ip in self.made:
                    (self.path / ip).unlink(missing_ok=True)
            if self.changed:
                self.save()
        finally:
            self.lock.__exit__(*exc)

    def save(self) -> None:
        now = time.time()
        self.resting = {ip: t for ip, t in self.resting.items() if now - t < REUSE_DELAY}
        if self.resting:
            write_json(self.path / "resting.json", self.resting)
        else:
            (self.path / "resting.json").unlink(missing_ok=True)
        if not self.resting and not any(name[0].isdigit() for name in os.listdir(self.path)):
            (self.path / "next").unlink(missing_ok=True)     # nothing to remember: no residue
            with contextlib.suppress(OSError):
                self.path.rmdir()

    def holder(self, ip: str) -> dict | None:
        """Who holds `ip` ({lease, container}), if its owner's lease file still names it."""
        owner = read_json(self.path / ip, None)
        if owner is None:
            return None
        try:
            lease = read_json(Path(owner["lease"]), None)
        except NetworkError:                        # unreadable: assume it still holds it
            return owner
        return owner if lease is not None and lease.get("ip") == ip else None

    def allocate(self, net: ipaddress.IPv4Network, lease_file: Path, container_id: str) -> str:
        """The next free address of `net` (round robin from `next`) that has rested REUSE_DELAY,
        else the one given back longest ago; recorded for (lease_file, container_id) before
        the caller writes its lease."""
        first, last = int(net.network_address) + 2, int(net.broadcast_address) - 1   # .1: gateway
        if last < first:
            raise NetworkError(f"network {net} has no address to lease: use a larger --subnet")
        try:
            start = int((self.path / "next").read_text())
        except (OSError, ValueError):
            start = first
        start = start if first <= start <= last else first
        now, resting = time.time(), []
        for k in range(last - first + 1):
            candidate = str(ipaddress.IPv4Address(first + (start - first + k) % (last - first + 1)))
            if self.holder(candidate) is not None:
                continue
            if now - self.resting.get(candidate, 0) < REUSE_DELAY:
                resting.append(candidate)
                continue
            return self.record(candidate, lease_file, container_id)
        if not resting:
            raise NetworkError(f"network {net} has no free address left (every one leased, by "
                               "every state root on its bridge): stop containers or create a "
                               "network with a larger --subnet")
        return self.record(min(resting, key=self.resting.get), lease_file, container_id)

    def record(self, ip: str, lease_file: Path, container_id: str) -> str:
        write_json(self.path / ip, {"lease": str(lease_file), "container": container_id})
        (self.path / "next").write_text(str(int(ipaddress.IPv4Address(ip)) + 1))
        self.resting.pop(ip, None)
        self.changed = True
        self.made.append(ip)
        return ip

    def give_back(self, ip: str, lease_file: Path, container_id: str) -> None:
        """The container's lease is gone: the address rests, then is free again."""
        if read_json(self.path / ip, None) == {"lease": str(lease_file), "container": container_id}:
            (self.path / ip).unlink()
            self.resting[ip] = time.time()
            self.changed = True


def prune(directory: Path) -> None:
    """Remove allocator directories nobody will read again (the caller holds the directory's
    lock): untouched for REUSE_DELAY and no address whose owner still names it — their
    namespace died with a test, or their roots were deleted."""
    import shutil
    now = time.time()
    for path in directory.iterdir():
        try:
            if path.is_dir() and now - path.stat().st_mtime >= REUSE_DELAY:
                stale = BridgeAllocator.__new__(BridgeAllocator)
                stale.path = path
                if not any(stale.holder(ip.name) for ip in path.iterdir() if ip.name[0].isdigit()):
                    shutil.rmtree(path, ignore_errors=True)
            elif path.suffix == ".json" and now - path.stat().st_mtime >= REUSE_DELAY:
                # an older version's one file per bridge: {"leases": {ADDRESS: {"leases":
                # its root's leases.json, "container": ID}}}, gone once no root lists them
                owners = read_json(path, {}).get("leases", {}).values()
                if not any(owner["container"] in read_json(Path(owner["leases"]), {}) for owner in owners):
                    path.unlink()
        except (OSError, NetworkError, KeyError, AttributeError, TypeError):
            continue                                 # gone meanwhile, or not ours to judge
