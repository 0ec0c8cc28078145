"""Networks and their containers: the definitions, the leases, and the steps that join them.

    shell: minicontainer network ls|create|rm|inspect

A network is a directory <root>/networks/NAME/ with a JSON definition (network.json: bridge,
subnet, gateway, firewall backend) and a lease file (leases.json: container ID → address,
names, published ports, hosts file).
Kernel objects come later and lazily: the bridge and the NAT rules are made by the first
container that attaches (once), the veth pair per container; `network rm` removes them.

The runtime's calls, in order (docs/networking.md shows them in context):

    record = net.plan(cid, name=…, hostname=…, ports=…, hosts_path=…)  # lease: before anything exists
    # … store `record` in state.json, fork, the child unshares CLONE_NEWNET …
    record = net.attach(record, child_pid, explain=cb)                # bridge, NAT, veth, eth0, ports
    # … container runs …
    store.detach(record, explain=cb)                                  # ports, veth, lease (idempotent)

Every change to definitions, leases, bridges or rules happens under one flock (ipam.py), so
parallel starts never race for an address, a port or the creation of the bridge.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import time
from pathlib import Path

from ..errors import ConfigError, NetworkError
from . import hosts, ipam
from .ports import PortMapping, check_port_free

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "mc0"
SUBNET_ENV = "MINICONTAINER_SUBNET"          # the default network's subnet, read when first defined
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
        return self.root / name / "leases.json"

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
            self.leases_path(name).unlink(missing_ok=True)
            self.definition_path(name).parent.rmdir()

    def check_removable(self, name: str) -> "Network":
        """The network NAME, if `network rm` may remove it: not the default, no lease left."""
        if name == DEFAULT_NETWORK:
            raise ConfigError("the default network 'bridge' cannot be removed "
                              "(its bridge mc0 stays for the next container)")
        net = self.get(name)
        leases = ipam.read_json(self.leases_path(name), {})
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
            data["containers"] = len(ipam.read_json(self.leases_path(name), {}))
            out.append(data)
        return out

    def inspect(self, name: str, pids: dict[str, int] | None = None) -> dict:
        """`network inspect NAME`: the definition, its containers (the leases: name, address,
        veth, ports) and what the kernel has, read with pyroute2 (live.py): the bridge with its
        addresses and ports, and eth0 from inside each container whose PID 1 is given in
        `pids` ({container ID: PID})."""
        from .live import bridge_view, container_view
        data = dict(self.get(name).data)
        data["containers"] = ipam.read_json(self.leases_path(name), {})
        data["kernel"] = bridge_view(data["bridge"])
        data["bridge_present"] = data["kernel"]["present"]
        for cid, lease in data["containers"].items():
            lease["veth_on_bridge"] = lease.get("veth") in data["kernel"].get("ports", [])
            if cid in (pids or {}):
                lease["inside"] = container_view(pids[cid], lease.get("ifname", "eth0"))
        return data

    # ── containers ───────────────────────────────────────────────────────────────────────

    def detach(self, record: dict | None, explain=None) -> None:
        """Undo plan()+attach() for a stored record, whatever part of it was done."""
        if not record or not record.get("network"):
            return
        data = ipam.read_json(self.definition_path(record["network"]), None)
        if data is None:                          # network gone: only kernel objects can remain
            data = {"name": record["network"], "bridge": record.get("bridge", ""),
                    "subnet": "", "gateway": "", "firewall": record.get("firewall")}
        Network(self, data).detach(record, explain)

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
                for cid, lease in ipam.read_json(self.leases_path(name), {}).items():
                    if not gone(cid):
                        continue
                    try:
                        net.release(lease, explain)
                    except NetworkError as e:
                        if errors is None:
                            raise
                        errors.append(f"network lease of {cid[:12]} on {name}: {e}")
                        continue
                    released.append(cid)
        return released


class Network:
    """One network: its definition (`.data`) and the container-facing steps."""

    def __init__(self, store: NetworkStore, data: dict):
        self.store, self.data = store, data
        self.name, self.bridge = data.get("name", ""), data.get("bridge", "")
        self.subnet, self.gateway = data.get("subnet", ""), data.get("gateway", "")

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def leases(self) -> dict:
        return ipam.read_json(self.store.leases_path(self.name), {})

    def save_leases(self, leases: dict) -> None:
        ipam.write_json(self.store.leases_path(self.name), leases)

    # ── step 1, in the parent before fork: an address and a record ───────────────────────

    def plan(self, container_id: str, *, name: str = "", hostname: str = "", aliases=(),
             ports: list[PortMapping] = (), hosts_path: Path | str | None = None) -> dict:
        """Lease an address and reserve the host ports; return the record to store in
        state.json *before* anything is created. Also writes the container's hosts file.
        Raises NetworkError if the subnet is full or a host port is taken."""
        from .veth import host_ifname
        with self.store.lock():
            if not self.store.definition_path(self.name).exists():
                raise NetworkError(f"network {self.name!r} was removed: choose another with --net")
            leases = self.leases()
            if container_id in leases:                      # planned already: same answer
                return leases[container_id]
            self.check_ports_unused(ports)
            for port in ports:
                check_port_free(port)
            ip = ipam.allocate(ipaddress.IPv4Network(self.subnet),
                               {lease["ip"] for lease in leases.values()})
            record = {"network": self.name, "container": container_id, "ip": ip,
                      "prefixlen": self.prefixlen, "gateway": self.gateway,
                      "bridge": self.bridge, "veth": host_ifname(container_id), "ifname": "eth0",
                      "names": [n for n in dict.fromkeys([name, hostname, *aliases]) if n],
                      "ports": [p.to_dict() for p in ports],
                      "hosts_path": str(hosts_path) if hosts_path else None,
                      "firewall": self.data.get("firewall")}
            leases[container_id] = record
            if hosts_path:                                  # first, so a bad path leases nothing
                try:
                    hosts.write_in_place(hosts_path, self.hosts_content(leases))
                except OSError as e:
                    raise NetworkError(f"cannot write the hosts file {hosts_path}: "
                                       f"{e.strerror}") from None
            self.save_leases(leases)
            return dict(record)

    def check_ports_unused(self, ports) -> None:
        """A host port may be published by one container only, across all networks."""
        for other in self.store.names():
            for cid, lease in ipam.read_json(self.store.leases_path(other), {}).items():
                for used in map(PortMapping.from_dict, lease.get("ports", [])):
                    for port in ports:
                        if (used.host_port, used.proto) == (port.host_port, port.proto) and \
                                (not used.host_ip or not port.host_ip or used.host_ip == port.host_ip):
                            raise NetworkError(f"-p {port.host_port}:{port.container_port}: host port "
                                               f"{port.host_port}/{port.proto} is already published "
                                               f"by container {cid[:12]}: pick another HOST_PORT")

    # ── step 2, in the parent while the child waits in its new netns ─────────────────────

    def attach(self, record: dict, pid: int, explain=None) -> dict:
        """Put the process PID (already in its own network namespace) on this network:
        bridge + NAT (first time only), veth pair, eth0's address and route, published
        ports, hosts files. On failure, undoes its own work and the lease, then raises."""
        from .bridge import enable_forwarding
        from .netlink import Netlink
        from .netns import netns_id, open_netns, same_netns
        from .veth import configure_inside, create_veth

        if same_netns(pid):
            raise NetworkError(f"process {pid} is in the host's network namespace: "
                               "it must unshare(CLONE_NEWNET) before attach()")
        with self.store.lock():
            if record["container"] not in self.leases():
                raise NetworkError(f"container {record['container'][:12]} has no lease on "
                                   f"network {self.name!r}: call plan() first")
            netns_fd = open_netns(pid)
            record["netns"] = netns_id(netns_fd)           # lets detach() skip a dead one
            try:
                with Netlink() as nl:
                    bridge_index = self.ensure(nl, explain)
                    create_veth(nl, record["veth"], bridge_index, self.bridge, netns_fd, pid, explain)
                configure_inside(netns_fd, pid, record["ip"], record["prefixlen"],
                                 record["gateway"], explain)
                self.publish(record, explain)
                enable_forwarding(self.bridge, explain)      # two reads when already set
                leases = self.leases()
                record.update(attached=True, firewall=self.data.get("firewall"))
                leases[record["container"]].update(attached=True, netns=record["netns"],
                                                   firewall=record["firewall"])
                self.save_leases(leases)
                self.rewrite_hosts_files(leases)
            except BaseException:
                with contextlib.suppress(NetworkError):     # keep the first error, not cleanup's
                    self.release(record)
                raise
            finally:
                os.close(netns_fd)
        return record

    def ensure(self, nl, explain=None) -> int:
        """The bridge (with its gateway address, up) and the NAT rules: made once, by the
        first container; later calls find the bridge and only check its address."""
        from .bridge import enable_forwarding, ensure_bridge
        if nl.link_index(self.bridge) is None:               # first container (or after reboot)
            route = ipam.overlapping_route(ipaddress.IPv4Network(self.subnet), self.bridge)
            if route:
                raise NetworkError(f"network {self.name!r} ({self.subnet}) overlaps the host route "
                                   f"{route}: set another subnet ({SUBNET_ENV} for the default "
                                   "network, or `network create --subnet`)")
            self.firewall().setup_network(self.bridge, self.subnet, explain)
            index, _ = ensure_bridge(nl, self.bridge, self.gateway, self.prefixlen, explain)
            enable_forwarding(self.bridge, explain)
            return index
        index, _ = ensure_bridge(nl, self.bridge, self.gateway, self.prefixlen, explain)
        return index

    def firewall(self):
        """The backend this network's rules are written with, chosen once and remembered."""
        from .nat import choose_firewall, get_firewall
        if not self.data.get("firewall"):
            self.data["firewall"] = choose_firewall(self.store.firewall)
            ipam.write_json(self.store.definition_path(self.name), self.data)
        return get_firewall(self.data["firewall"])

    def publish(self, record: dict, explain=None) -> None:
        ports = [PortMapping.from_dict(p) for p in record.get("ports", [])]
        if not ports:
            return
        from .nat import TableMissing
        fw = self.firewall()
        try:
            fw.add_ports(self.bridge, record["ip"], ports, explain)
        except TableMissing:                                 # someone flushed the ruleset
            self.rebuild_firewall(explain)
            fw.add_ports(self.bridge, record["ip"], ports, explain)

    def rebuild_firewall(self, explain=None) -> None:
        """Write the network's rules again, with the ports of every other container."""
        fw = self.firewall()
        fw.setup_network(self.bridge, self.subnet, explain)
        for lease in self.leases().values():
            if lease.get("attached"):
                fw.add_ports(self.bridge, lease["ip"],
                             [PortMapping.from_dict(p) for p in lease.get("ports", [])], explain)

    # ── step 3, when the container is gone (or never started) ────────────────────────────

    def detach(self, record: dict, explain=None) -> None:
        """Remove published ports, the host end of the veth and the lease; rewrite the other
        containers' hosts files. Idempotent: safe after a failed or partial attach."""
        with self.store.lock():
            self.release(record, explain)

    def release(self, record: dict, explain=None) -> None:
        """detach() without taking the lock (the caller holds it)."""
        from .netlink import Netlink
        from .netns import netns_in_use
        from .veth import delete_veth
        errors = []
        ports = [PortMapping.from_dict(p) for p in record.get("ports", [])]
        fw_name = self.data.get("firewall") or record.get("firewall")
        if ports and fw_name:
            from .nat import get_firewall
            try:
                get_firewall(fw_name).remove_ports(self.bridge, record["ip"], ports, explain)
            except NetworkError as e:
                errors.append(e)
        if record.get("netns") and not netns_in_use(record["netns"]):
            if explain:                               # deleting it ourselves costs ~20 ms
                explain(f"# {record['veth']} and eth0 go away with the container's network "
                        "namespace", "the kernel deletes a dead namespace's interfaces itself")
        else:
            try:
                with Netlink() as nl:
                    delete_veth(nl, record["veth"], explain)
            except NetworkError as e:
                errors.append(e)
        leases = self.leases()
        lease = leases.get(record["container"])
        if lease and lease.get("ip") == record.get("ip") and not errors:
            del leases[record["container"]]
            self.save_leases(leases)
            self.rewrite_hosts_files(leases)
        if errors:
            raise errors[0]

    # ── names ────────────────────────────────────────────────────────────────────────────

    def hosts_entries(self, leases: dict | None = None) -> list[tuple[str, list[str]]]:
        """[(ip, [name, hostname, …])] for every container on the network, by address."""
        leases = self.leases() if leases is None else leases
        return sorted(((lease["ip"], lease.get("names", [])) for lease in leases.values()),
                      key=lambda e: ipaddress.IPv4Address(e[0]))

    def hosts_content(self, leases: dict | None = None) -> str:
        return hosts.hosts_text(self.hosts_entries(leases), self.name)

    def rewrite_hosts_files(self, leases: dict | None = None) -> None:
        """Every container on the network gets the current list (in place: see hosts.py)."""
        leases = self.leases() if leases is None else leases
        text = self.hosts_content(leases)
        for lease in leases.values():
            path = lease.get("hosts_path")
            if path and Path(path).parent.is_dir():
                hosts.write_in_place(path, text)

    # ── the network itself ───────────────────────────────────────────────────────────────

    def teardown(self, explain=None) -> None:
        """Remove the bridge and the NAT rules (the caller holds the lock, no leases left)."""
        from .bridge import delete_bridge
        from .nat import get_firewall
        from .netlink import Netlink
        if self.data.get("firewall"):
            get_firewall(self.data["firewall"]).teardown_network(self.bridge, explain)
        with Netlink() as nl:
            delete_bridge(nl, self.bridge, explain)

    def down(self, explain=None) -> None:
        """Remove the kernel objects of an unused network but keep its definition
        (e.g. for the default network, or before uninstalling)."""
        with self.store.lock():
            if self.leases():
                raise NetworkError(f"network {self.name!r} is in use: stop its containers first")
            self.teardown(explain)


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
