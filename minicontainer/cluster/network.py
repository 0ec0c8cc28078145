"""A cluster's networks: each node's own network namespace, and the underlay between them.

    man 8 ip-netns, man 4 veth, man 8 bridge (ip link … type bridge), man 8 ip-route

    host (or the test's) netns                 node1's netns "mcXXXX-node1"
      mcXXXX-ul  bridge 10.250.0.254/24  ───veth───  eth0 10.250.0.1/24
                 route 10.244.1.0/24 via 10.250.0.1     route 10.244.2.0/24 via 10.250.0.2 …
                 route 10.244.2.0/24 via 10.250.0.2     default via 10.250.0.254
                                                        mc0 bridge 10.244.1.1/24 — the pods
                                                        (made by the first pod, as on a host)

The underlay bridge is a real cluster's switch, eth0 each node's NIC; the routes between the
pod subnets are what a real cluster's network plugin (flannel host-gw, Calico) installs. The
host itself is on the underlay too: `curl` from the host reaches pods, and the Services'
nftables DNAT (orchestration/services.py) sends ClusterIP traffic across it.
Every change is one `ip -batch` call per namespace; `ip -n NS` enters a namespace for one call
(setns), without `ip netns exec`'s new mount namespace.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import subprocess
from pathlib import Path

from ..errors import NetworkError

UNDERLAY = ipaddress.ip_network("10.250.0.0/24")
HOST_IP = "10.250.0.254"
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")        # Kubernetes' (flannel's) cluster CIDR
NETNS_DIR = Path("/run/netns")


def cluster_id(root: Path) -> str:
    """4 hex digits from the state root: interface and namespace names stay unique per root."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:4]


def names(cid: str, node: str, index: int) -> dict:
    return {"netns": f"mc{cid}-{node}", "veth": f"mc{cid}-n{index}", "underlay": f"mc{cid}-ul",
            "ip": str(UNDERLAY.network_address + index), "subnet": str(pod_subnet(index))}


def pod_subnet(index: int) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"10.244.{index}.0/24")


def ip_batch(lines: list[str], netns: str | None = None, check: bool = True) -> str:
    """`ip [-n NETNS] -force -batch -`: many changes for the cost of one process."""
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-force", "-batch", "-"]
    proc = subprocess.run(argv, input="\n".join(lines) + "\n", text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {'-n ' + netns + ' ' if netns else ''}-batch: "
                           f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return proc.stderr


def create_underlay(cid: str) -> None:
    """The cluster's switch, with the host's own address on it; the host forwards (pods reach
    Services through it)."""
    bridge = f"mc{cid}-ul"
    ip_batch([f"link add {bridge} type bridge", f"addr add {HOST_IP}/{UNDERLAY.prefixlen} dev {bridge}",
              f"link set {bridge} up"])
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")


def remove_underlay(cid: str) -> None:
    ip_batch([f"link del mc{cid}-ul"], check=False)


def plumb_node(n: dict, peers: list[dict]) -> None:
    """A node's namespace and its cable to the underlay; routes to and from every peer."""
    subprocess.run(["ip", "netns", "del", n["netns"]], capture_output=True)   # a stale one (same root)
    proc = subprocess.run(["ip", "netns", "add", n["netns"]], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetworkError(f"ip netns add {n['netns']}: {proc.stderr.strip()}")
    try:
        ip_batch([f"link add {n['veth']} type veth peer name eth0 address {node_mac(n)} netns {n['netns']}",
                  f"link set {n['veth']} master {n['underlay']} up",
                  f"route replace {n['subnet']} via {n['ip']}"])
        ip_batch(["link set lo up", f"addr add {n['ip']}/{UNDERLAY.prefixlen} dev eth0",
                  "link set eth0 up", f"route add default via {HOST_IP}"]
                 + [f"route replace {p['subnet']} via {p['ip']}" for p in peers], n["netns"])
        for p in peers:
            ip_batch([f"route replace {n['subnet']} via {n['ip']}"], p["netns"], check=False)
    except BaseException:
        unplumb_node(n, peers)
        raise


def node_mac(n: dict) -> str:
    """eth0's MAC, the same after every recover: the host and the other nodes cache "10.250.0.N
    is at MAC m" (ip neigh) — a new random MAC would leave them sending into the void for
    seconds after a node comes back."""
    return f"02:4d:43:{n['netns'][2:4]}:{n['netns'][4:6]}:{n['index']:02x}"


def unplumb_node(n: dict, peers: list[dict]) -> None:
    """The namespace goes, and with it eth0 and its veth peer; the routes to it go too."""
    ip_batch([f"route del {n['subnet']}"], check=False)
    for p in peers:
        ip_batch([f"route del {n['subnet']}"], p["netns"], check=False)
    subprocess.run(["ip", "netns", "del", n["netns"]], capture_output=True)
    ip_batch([f"link del {n['veth']}"], check=False)


def set_links(n: dict, up: bool) -> None:
    """Pull (or plug) the node's cable: both ends of its veth."""
    state = "up" if up else "down"
    ip_batch([f"link set {n['veth']} {state}"], check=False)
    ip_batch([f"link set eth0 {state}"], n["netns"], check=False)
    if up:
        ip_batch([f"route add default via {HOST_IP}"], n["netns"], check=False)


def netns_inode(n: dict) -> int | None:
    try:
        return os.stat(NETNS_DIR / n["netns"]).st_ino
    except OSError:
        return None


def service_bridge(root) -> str | None:
    """The underlay bridge of the cluster of this state root, if there is one (the Services'
    route points at it: ClusterIP traffic goes to the nodes' pods)."""
    from .members import cluster_record
    cluster_id = cluster_record(root).get("id")
    return f"mc{cluster_id}-ul" if cluster_id else None
