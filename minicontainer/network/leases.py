"""Leases: which container holds which address — recorded per state root, allocated per bridge.

    man 2 flock, man 7 arp (neighbour cache)       shell: flock FILE cmd; ip neigh show dev mc0

Two records, two scopes:

  <root>/networks/NAME/leases.json       the state root's view: container ID → address, names,
                                         ports, hosts file (what gc, inspect and the hosts
                                         files read; changed under the root's network lock)
  /run/minicontainer/bridges/BRIDGE@NETNS.json
                                         the bridge's allocator: address → the lease file and
                                         container that hold it, and when each address was
                                         last given back (changed under its own flock)

Why two: the bridge mc0 and its subnet belong to the host — more exactly, to one network
namespace — while state roots are directories, and any number of them (`--root`, a test's
temporary root, a lab checker's) start containers on the same mc0. Leases kept only per root
handed 10.201.0.2 to a container of each. So every root asks the bridge's one allocator.
An allocator entry counts only while its owner's lease file still lists it: a root that was
deleted, or a lease gc released, frees the address without anybody having to clean up.

No immediate reuse: the host and the other containers cache "10.201.0.2 is at MAC m" (the
neighbour table, `ip neigh`). A new container given the address of one just removed has
another MAC; until the cached entry fails (seconds: DELAY, PROBE, FAILED) packets go to the
old MAC and are lost. So an address given back rests for REUSE_DELAY seconds while other
addresses are free, and veth.announce() sends a gratuitous ARP when eth0 gets an address,
which updates any cache that still holds it.
"""
from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

from ..errors import NetworkError
from . import ipam
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
            ip = alloc.allocate(subnet, leases_path, container_id)
            alloc.give_back(ip, leases_path, container_id)
    Non-root callers that cannot write /run use `fallback_dir` (their state root): rootless
    containers get no bridge anyway."""

    def __init__(self, bridge: str, fallback_dir: Path):
        base = ALLOCATOR_DIR if os.geteuid() == 0 else fallback_dir
        self.path = base / f"{bridge}@{this_netns()}.json"
        self.lock: FileLock | None = None
        self.data: dict = {}

    def __enter__(self) -> "BridgeAllocator":
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock = FileLock(self.path.parent / ".lock").__enter__()    # one for all: files get removed
        if not self.path.exists():                   # a new bridge (or namespace): tidy up first
            prune(self.path.parent)
        self.data = read_json(self.path, {})
        self.data.setdefault("leases", {})
        self.data.setdefault("released", {})
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not exc[0]:
                self.save()
        finally:
            self.lock.__exit__(*exc)

    def save(self) -> None:
        now = time.time()
        self.data["released"] = {ip: t for ip, t in self.data["released"].items() if now - t < REUSE_DELAY}
        if self.data["leases"] or self.data["released"]:
            write_json(self.path, self.data)
        else:                                   # nothing to remember: leave no file behind
            self.path.unlink(missing_ok=True)

    def held(self, files: dict | None = None) -> dict[str, dict]:
        """The entries whose owner still lists them (address → {leases, container}). `files`:
        lease files the caller has read already (path → content), not read again."""
        alive, files = {}, dict(files or {})
        for ip, owner in self.data["leases"].items():
            if owner["leases"] not in files:
                try:
                    files[owner["leases"]] = read_json(Path(owner["leases"]), {})
                except NetworkError:                # unreadable: assume it still holds its addresses
                    files[owner["leases"]] = None
            leases = files[owner["leases"]]
            lease = {"ip": ip} if leases is None else leases.get(owner["container"])
            if lease is not None and lease.get("ip") == ip:
                alive[ip] = owner
        return alive

    def allocate(self, net: ipaddress.IPv4Network, leases_path: Path, container_id: str,
                 also_taken: set[str] = frozenset(), known: dict | None = None) -> str:
        """The lowest free address of `net` that has rested REUSE_DELAY (else the one given back
        longest ago); recorded for (leases_path, container_id) before the caller writes its lease.
        `known`: the content of leases_path, if the caller has read it (under its lock)."""
        self.data["leases"] = held = self.held(None if known is None else {str(leases_path): known})
        taken = set(held) | set(also_taken)
        now = time.time()
        resting = {ip: t for ip, t in self.data["released"].items()
                   if now - t < REUSE_DELAY and ip not in taken and ipaddress.IPv4Address(ip) in net}
        try:
            ip = ipam.allocate(net, taken | set(resting))
        except NetworkError:
            if not resting:
                raise
            ip = min(resting, key=resting.get)
        return self.record(ip, leases_path, container_id)

    def record(self, ip: str, leases_path: Path, container_id: str) -> str:
        self.data["leases"][ip] = {"leases": str(leases_path), "container": container_id}
        self.data["released"].pop(ip, None)
        return ip

    def give_back(self, ip: str, leases_path: Path, container_id: str) -> None:
        """The container's lease is gone: the address rests, then is free again."""
        owner = self.data["leases"].get(ip)
        if owner == {"leases": str(leases_path), "container": container_id}:
            del self.data["leases"][ip]
            self.data["released"][ip] = time.time()



def prune(directory: Path) -> None:
    """Remove allocator files nobody will read again (the caller holds the directory's lock):
    untouched for REUSE_DELAY and no entry whose owner still lists it — their namespace died
    with a test, or their roots were deleted."""
    now = time.time()
    for path in directory.glob("*.json"):
        try:
            if now - path.stat().st_mtime >= REUSE_DELAY:
                stale = BridgeAllocator.__new__(BridgeAllocator)
                stale.data = read_json(path, {"leases": {}})
                if not stale.held():
                    path.unlink(missing_ok=True)
        except (OSError, NetworkError):
            continue                                 # gone meanwhile, or not ours to judge
