"""Putting a container on a network and taking it off: plan → attach → detach.

    man 7 network_namespaces, man 4 veth                     docs/networking.md (the table)

One network (`Network`, from NetworkStore.get) and the three steps the run sequence calls:

    plan(cid, …)          parent, before fork: an address from the bridge's allocator
                          (leases.py), host ports reserved, the lease and the hosts file written
    attach(record, pid)   parent, child waiting in its new netns: bridge + NAT (first time,
                          bridge.py, nat.py), veth (veth.py), eth0's address, the gratuitous
                          ARP, published ports (nat.py), everyone's hosts file (hosts.py)
    detach(record)        when the container is gone: ports, veth, lease (idempotent)

Each step is a few calls to the modules that know their kernel object; every change happens
under the state root's network lock (store.py), and the address under the bridge's (leases.py).
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path

from ..errors import NetworkError
from . import hosts, ipam
from .leases import BridgeAllocator
from .ports import PortMapping, check_port_free, check_ports_unpublished, choose_host_port

SUBNET_ENV = "MINICONTAINER_SUBNET"          # the default network's subnet, read when first defined


class Network:
    """One network: its definition (`.data`) and the container-facing steps."""

    def __init__(self, store, data: dict):
        self.store, self.data = store, data          # store: the NetworkStore it belongs to
        self.name, self.bridge = data.get("name", ""), data.get("bridge", "")
        self.subnet, self.gateway = data.get("subnet", ""), data.get("gateway", "")

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    @property
    def hosts_path(self) -> Path:
        """The network's one hosts file, that its containers' /etc/hosts link to (hosts.py)."""
        return self.store.hosts_path(self.name)

    def leases(self) -> dict:
        """Every lease of this network (O(N): gc, inspect; a start or stop reads only its own)."""
        return self.store.leases(self.name)

    def lease(self, container_id: str) -> dict | None:
        return ipam.read_json(self.store.lease_path(self.name, container_id), None)

    def save_lease(self, lease: dict) -> None:
        path = self.store.lease_path(self.name, lease["container"])
        path.parent.mkdir(exist_ok=True)
        ipam.write_json(path, lease)

    def update_hosts(self, drop: str = "", add: dict | None = None) -> None:
        """The network's hosts file, one line dropped or added, and the own files of its
        containers with --add-host (listed in own-hosts.json: usually none)."""
        text = hosts.update_network_hosts(self.hosts_path, self.name, drop,
                                          add and (add["ip"], add.get("names", [])))
        own_path = self.store.own_hosts_path(self.name)
        own = ipam.read_json(own_path, {})
        if add and not add.get("hosts_shared") and add.get("hosts_path"):
            own[add["container"]] = {"hosts_path": add["hosts_path"], "extra_hosts": add.get("extra_hosts", [])}
            ipam.write_json(own_path, own)
        hosts.write_own_files(text, own)

    def allocator(self) -> BridgeAllocator:
        return BridgeAllocator(self.bridge, self.store.root)

    # ── step 1, in the parent before fork: an address and a record ───────────────────────

    def plan(self, container_id: str, *, name: str = "", hostname: str = "", aliases=(),
             ports: list[PortMapping] = (), hosts_path: Path | str | None = None,
             extra_hosts=()) -> dict:
        """Lease an address and reserve the host ports; return the record to store in
        state.json *before* anything is created. Also writes the container's hosts file.
        Raises NetworkError if the subnet is full or a host port is taken."""
        from .veth import host_ifname
        with self.store.lock(), self.allocator() as allocator:
            if not self.store.definition_path(self.name).exists():
                raise NetworkError(f"network {self.name!r} was removed: choose another with --net")
            planned = self.lease(container_id)
            if planned is not None:                         # planned already: same answer
                return planned
            if ports:                                       # (only then every network's leases)
                everyone = [self.store.leases(n) for n in self.store.names()]
                check_ports_unpublished(ports, everyone)
                taken = {(p["host_port"], p.get("proto", "tcp")) for leases_of in everyone
                         for lease in leases_of.values() for p in lease.get("ports", [])}
                ports = [p if p.host_port else choose_host_port(p, taken) for p in ports]  # -P, -p 80
            for port in ports:
                check_port_free(port)
            ip = allocator.allocate(ipaddress.IPv4Network(self.subnet),
                                    self.store.lease_path(self.name, container_id), container_id)
            shared = not extra_hosts                        # --add-host: a file of its own
            record = {"network": self.name, "container": container_id, "ip": ip,
                      "prefixlen": self.prefixlen, "gateway": self.gateway,
                      "bridge": self.bridge, "veth": host_ifname(container_id), "ifname": "eth0",
                      "names": [n for n in dict.fromkeys([name, hostname, *aliases]) if n],
                      "ports": [p.to_dict() for p in ports],
                      "hosts_path": str(hosts_path) if hosts_path else None,
                      "hosts_shared": shared,                        # a link to the network's
                      "extra_hosts": list(extra_hosts),              # --add-host, kept on rewrites
                      "firewall": self.data.get("firewall")}
            try:                                            # first, so a bad path leases nothing
                if hosts_path:
                    hosts.link_planned(record, self.hosts_path)
                self.update_hosts(add=record)
            except OSError as e:
                with contextlib.suppress(OSError):
                    self.drop_hosts(record)
                raise NetworkError(f"cannot write the hosts file {hosts_path}: "
                                   f"{e.strerror}") from None
            self.save_lease(record)                         # still under the allocator's lock
            return dict(record)

    # ── step 2, in the parent while the child waits in its new netns ─────────────────────

    def attach(self, record: dict, pid: int, explain=None) -> dict:
        """Put the process PID (already in its own network namespace) on this network:
        bridge + NAT (first time only), veth pair, eth0's address and route, published
        ports, hosts files. On failure, undoes its own work and the lease, then raises."""
        from .bridge import enable_forwarding
        from .nat import publish_ports
        from .netlink import Netlink
        from .netns import netns_id, open_netns, same_netns
        from .veth import announce, configure_inside, create_veth

        if same_netns(pid):
            raise NetworkError(f"process {pid} is in the host's network namespace: "
                               "it must unshare(CLONE_NEWNET) before attach()")
        with self.store.lock():
            lease = self.lease(record["container"])         # nobody changes it meanwhile
            if lease is None:
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
                announce(netns_fd, pid, record["ip"], explain)
                ports = [PortMapping.from_dict(p) for p in record.get("ports", [])]
                if ports:
                    publish_ports(self.firewall(), self.bridge, self.subnet, record["ip"], ports,
                                  self.leases, explain)
                enable_forwarding(self.bridge, explain)      # two reads when already set
                record.update(attached=True, firewall=self.data.get("firewall"))
                lease.update(attached=True, netns=record["netns"], firewall=record["firewall"])
                self.save_lease(lease)                      # (its hosts line came with plan)
            except BaseException:
                with contextlib.suppress(NetworkError):     # keep the first error, not cleanup's
                    self.release(dict(record, netns=None))  # the child still holds the netns
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

    # ── step 3, when the container is gone (or never started) ────────────────────────────

    def detach(self, record: dict, explain=None, *, exited: bool = False) -> None:
        """Remove published ports, the host end of the veth and the lease; rewrite the other
        containers' hosts files. Idempotent: safe after a failed or partial attach.
        `exited`: the container's processes are all gone (teardown, gc), see netns_held."""
        with self.store.lock():
            self.release(record, explain, exited=exited)

    def release(self, record: dict, explain=None, *, exited: bool = False) -> None:
        """detach() without taking the lock (the caller holds it)."""
        from .netlink import Netlink
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
        if record.get("netns") and not self.netns_held(record, exited):
            if explain:                               # deleting it ourselves costs ~20 ms
                explain(f"# {record['veth']} and eth0 go away with the container's network "
                        "namespace", "the kernel deletes a dead namespace's interfaces itself")
        else:
            try:
                with Netlink() as nl:
                    delete_veth(nl, record["veth"], explain)
            except NetworkError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        self.drop_lease(record)

    def netns_held(self, record: dict, exited: bool) -> bool:
        """Does any process still hold the container's network namespace (then its veth must be
        deleted by hand; else the kernel deletes it with the namespace)? Once the container's
        own processes are gone (`exited`: teardown removed its cgroup first), only a container
        that joined it (`--net container:X`, a pod's members) can: join_netns noted each in
        the lease, and only then, or for a container still running, is /proc scanned
        (netns_in_use: O(processes), ~30 ms of CPU with 1,000 containers running)."""
        from .netns import netns_in_use
        if exited and not (self.lease(record["container"]) or {}).get("netns_users"):
            return False
        return netns_in_use(record["netns"])

    def join_netns(self, container_id: str, joiner_id: str) -> None:
        """Note that `joiner_id` enters the network namespace of `container_id` (which holds a
        lease here), so that releasing it later still deletes the veth if the joiner lives on."""
        with self.store.lock():
            lease = self.lease(container_id)
            if lease is not None:
                lease.setdefault("netns_users", []).append(joiner_id)
                self.save_lease(lease)

    def drop_lease(self, record: dict) -> None:
        """The lease goes (last: a crash before leaves it for gc), the address back to the bridge."""
        lease = self.lease(record["container"])
        if lease and lease.get("ip") == record.get("ip"):
            lease_file = self.store.lease_path(self.name, record["container"])
            with self.allocator() as allocator:
                lease_file.unlink()
                allocator.give_back(record["ip"], lease_file, record["container"])
            self.drop_hosts(lease)

    def drop_hosts(self, lease: dict) -> None:
        """The container's line out of the network's hosts file (and its own file off the list)."""
        own_path = self.store.own_hosts_path(self.name)
        if not lease.get("hosts_shared") and lease.get("hosts_path"):
            own = ipam.read_json(own_path, {})
            if own.pop(lease["container"], None) is not None and own:
                ipam.write_json(own_path, own)
            elif not own:
                own_path.unlink(missing_ok=True)
        self.update_hosts(drop=lease["ip"])

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
