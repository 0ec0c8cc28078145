"""The networks of a state root: their definitions, and the verbs over them.

    shell: minicontainer network ls|create|rm|inspect

A network is a directory <root>/networks/NAME/ with a JSON definition (network.json: bridge,
subnet, gateway, firewall backend) and its leases (leases/ID.json, one per container: address,
names, published ports, hosts file; leases.py says why addresses come from the bridge).
Kernel objects come later and lazily: the bridge and the NAT rules are made by the first
container that attaches (once), the veth pair per container; `network rm` removes them.
The steps that put one container on a network are attach.py's `Network`.

The runtime's calls, in order (docs/networking.md shows them in context):

    record = net.plan(cid, name=…, hostname=…, ports=…, hosts_path=…)  # lease: before anything exists
    # … store `record` in state.json, fork, the child unshares CLONE_NEWNET …
    record = net.attach(record, child_pid, explain=cb)                # bridge, NAT, veth, eth0, ports
    # … container runs …
    store.detach(record, explain=cb)                                  # ports, veth, lease (idempotent)

Every change to definitions, leases, bridges or rules happens under one flock per state root
(ipam.py), and every address is handed out under its bridge's flock (leases.py), so parallel
starts — from one state root or several — never race for an address, a port or the bridge.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import time
from pathlib import Path

from ..errors import ConfigError, NetworkError
from . import ipam
from .attach import SUBNET_ENV, Network

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "mc0"
RESERVED = {"none", "host", "container", "default"}
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")
BRIDGE_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]{0,14}")


class NetworkStore:
    """All networks under <root>/networks; NetworkStore(root=Path(state_root) / "networks")."""

    def __init__(self, root: Path | str, default_subnet: str | None = None,
                 firewall: str | None = None):
        self.root = Path(root)
        self.default_subnet = default_subnet or os.environ.get(SUBNET_ENV) or ipam.DEFAULT_SUBNET
        self.firewall = firewall                 # force "nft"/"iptables" for new networks

    # ── files ────────────────────────────────────────────────────────────────────────────

    def lock(self) -> ipam.FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return ipam.FileLock(self.root / ".lock")

    def definition_path(self, name: str) -> Path:
        return self.root / name / "network.json"

    def leases_path(self, name: str) -> Path:
        """The directory of a network's leases: one file per container, ID.json (leases.py)."""
        return self.root / name / "leases"

    def lease_path(self, name: str, container_id: str) -> Path:
        return self.leases_path(name) / f"{container_id}.json"

    def leases(self, name: str) -> dict:
        """Every lease of network NAME, container ID → lease: for gc, inspect and `network ls`
        (a start or a stop reads only its own lease)."""
        try:
            files = os.listdir(self.leases_path(name))
        except FileNotFoundError:
            return {}
        found = {}
        for file in files:
            if file.endswith(".json"):
                lease = ipam.read_json(self.leases_path(name) / file, None)
                if lease is not None:                 # removed meanwhile
                    found[file[:-len(".json")]] = lease
        return found

    def hosts_path(self, name: str) -> Path:
        return self.root / name / "hosts"

    def own_hosts_path(self, name: str) -> Path:
        """The containers of network NAME with a hosts file of their own (--add-host)."""
        return self.root / name / "own-hosts.json"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/network.json"))

    # ── definitions ──────────────────────────────────────────────────────────────────────

    def get(self, name: str = DEFAULT_NETWORK) -> "Network":
        """The network called NAME; the default one ("bridge") is defined on first use."""
        data = ipam.read_json(self.definition_path(name), None)
        if data is None and name == DEFAULT_NETWORK:
            with self.lock():
                data = ipam.read_json(self.definition_path(name), None) or self.define_default()
        if data is None:
            raise NetworkError(f"network {name!r} not found: create it with "
                               f"`minicontainer network create {name}` (see `network ls`)")
        return Network(self, data)

    def define_default(self) -> dict:
        subnet = ipam.parse_subnet(self.default_subnet)
        return self.write_definition(DEFAULT_NETWORK, DEFAULT_BRIDGE, subnet, default=True)

    def write_definition(self, name: str, bridge: str, subnet, default: bool = False) -> dict:
        data = {"name": name, "bridge": bridge, "subnet": str(subnet),
                "gateway": ipam.gateway_of(subnet), "default": default,
                "firewall": self.firewall, "created": time.time()}
        self.definition_path(name).parent.mkdir(parents=True, exist_ok=True)
        ipam.write_json(self.definition_path(name), data)
        return data

    def create(self, name: str, subnet: str | None = None, bridge: str | None = None) -> "Network":
        """`network create NAME [--subnet CIDR] [--bridge IFNAME]`: a definition only; the
        bridge appears when the first container attaches."""
        check_name(name)
        self.get(DEFAULT_NETWORK)                 # defined first: its subnet counts as taken
        with self.lock():
            if name == DEFAULT_NETWORK or self.definition_path(name).exists():
                raise ConfigError(f"network {name!r} already exists: pick another name "
                                  "or remove it first (`network rm`)")
            others = [Network(self, ipam.read_json(self.definition_path(n), {})) for n in self.names()]
            if subnet:
                net = ipam.parse_subnet(subnet)
                for other in others:
                    if net.overlaps(ipaddress.IPv4Network(other.subnet)):
                        raise ConfigError(f"--subnet {net} overlaps network {other.name!r} "
                                          f"({other.subnet}): choose another subnet")
                route = ipam.overlapping_route(net)
                if route:
                    raise ConfigError(f"--subnet {net} overlaps the host route {route}: "
                                      "choose another subnet")
            else:
                net = ipaddress.IPv4Network(ipam.pick_free_subnet([o.subnet for o in others]))
            bridge = bridge or bridge_name_for(name)
            if not BRIDGE_RE.fullmatch(bridge):
                raise ConfigError(f"--bridge {bridge!r}: an interface name is 1-15 letters, digits, "
                                  "'-' or '_', starting with a letter")
            if any(o.bridge == bridge for o in others) or bridge == DEFAULT_BRIDGE:
                raise ConfigError(f"--bridge {bridge}: already used by another network")
            return Network(self, self.write_definition(name, bridge, net))

    def remove(self, name: str, explain=None) -> None:
        """`network rm NAME`: its bridge, its NAT rules, its files. Refused while in use."""
        net = self.check_removable(name)
        with self.lock():
            self.check_removable(name)                # again, now that no start can lease
            net.teardown(explain)
            self.definition_path(name).unlink(missing_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.leases_path(name).rmdir()        # empty: check_removable saw no lease
            self.hosts_path(name).unlink(missing_ok=True)
            self.own_hosts_path(name).unlink(missing_ok=True)
            self.definition_path(name).parent.rmdir()

    def check_removable(self, name: str) -> "Network":
        """The network NAME, if `network rm` may remove it: not the default, no lease left."""
        if name == DEFAULT_NETWORK:
            raise ConfigError("the default network 'bridge' cannot be removed "
                              "(its bridge mc0 stays for the next container)")
        net = self.get(name)
        leases = self.leases(name)
        if leases:
            users = sorted((lease.get("names") or [cid[:12]])[0] for cid, lease in leases.items())
            shown = " ".join(users[:5]) + (" …" if len(users) > 5 else "")
            raise NetworkError(f"network {name!r} is in use by {len(users)} container(s): "
                               f"{shown}: remove them first (`minicontainer rm -f {shown}`), "
                               "or run `minicontainer gc` if they crashed")
        return net

    def list(self) -> list[dict]:
        """`network ls`: one dict per network, with how many containers use it."""
        if DEFAULT_NETWORK not in self.names():
            self.get(DEFAULT_NETWORK)
        out = []
        for name in self.names():
            data = ipam.read_json(self.definition_path(name), {})
            data["containers"] = len(self.leases(name))
            out.append(data)
        return out

    def inspect(self, name: str, pids: dict[str, int] | None = None) -> dict:
        """`network inspect NAME`: the definition, its containers (the leases: name, address,
        veth, ports) and what the kernel has, read with pyroute2 (live.py): the bridge with its
        addresses and ports, and eth0 from inside each container whose PID 1 is given in
        `pids` ({container ID: PID})."""
        from .live import bridge_view, container_view
        data = dict(self.get(name).data)
        data["containers"] = self.leases(name)
        data["kernel"] = bridge_view(data["bridge"])
        data["bridge_present"] = data["kernel"]["present"]
        for cid, lease in data["containers"].items():
            lease["veth_on_bridge"] = lease.get("veth") in data["kernel"].get("ports", [])
            if cid in (pids or {}):
                lease["inside"] = container_view(pids[cid], lease.get("ifname", "eth0"))
        return data

    # ── containers ───────────────────────────────────────────────────────────────────────

    def detach(self, record: dict | None, explain=None, *, exited: bool = False) -> None:
        """Undo plan()+attach() for a stored record, whatever part of it was done.
        `exited`: the container's processes are gone (Network.netns_held)."""
        if not record or not record.get("network"):
            return
        data = ipam.read_json(self.definition_path(record["network"]), None)
        if data is None:                          # network gone: only kernel objects can remain
            data = {"name": record["network"], "bridge": record.get("bridge", ""),
                    "subnet": "", "gateway": "", "firewall": record.get("firewall")}
        Network(self, data).detach(record, explain, exited=exited)

    def cleanup_orphans(self, live_container_ids=(), explain=None, *, gone=None,
                        errors: list | None = None) -> list[str]:
        """Release the leases of containers that are gone (for gc); returns their IDs.
        gone(cid) decides, asked per lease under the lock — a start in progress (its record
        is written before plan()) is judged as it is now, not by a list read earlier; without
        it, every container not in `live_container_ids` is gone. With `errors`, a lease that
        cannot be released is noted there and the others still go."""
        if gone is None:
            live = set(live_container_ids)
            gone = lambda cid: cid not in live          # noqa: E731
        released = []
        with self.lock():                               # no plan() or attach() in between
            for name in self.names():
                net = Network(self, ipam.read_json(self.definition_path(name), {}))
                for cid, lease in self.leases(name).items():
                    if not gone(cid):
                        continue
                    try:
                        net.release(lease, explain)     # not exited=True: a stray may live on
                    except NetworkError as e:
                        if errors is None:
                            raise
                        errors.append(f"network lease of {cid[:12]} on {name}: {e}")
                        continue
                    released.append(cid)
        return released


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name or "") or name in RESERVED:
        raise ConfigError(f"network name {name!r}: use letters, digits, '_', '.', '-' "
                          f"(not {', '.join(sorted(RESERVED))})")


def bridge_name_for(name: str) -> str:
    """mc-NAME when it fits in an interface name (15 chars), else mc-<12 hex of its hash>."""
    if re.fullmatch(r"[a-zA-Z0-9_-]{1,12}", name):
        return f"mc-{name}"
    import hashlib                  # only here: loading OpenSSL costs `run` ~2 ms (performance.md)
    return "mc-" + hashlib.sha256(name.encode()).hexdigest()[:12]
