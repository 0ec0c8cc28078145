"""A veth pair: a virtual Ethernet cable with one end on the host's bridge, one in the container.

    man 4 veth, man 8 ip-link, man 8 ip-address, man 8 ip-route
    shell: ip link add mcXXXX master mc0 up type veth peer name eth0 netns PID
           nsenter -t PID -n ip addr add 10.201.0.2/16 dev eth0
           nsenter -t PID -n ip route add default via 10.201.0.1

What one end sends, the other receives. The host end (mc + 12 hex digits of the container
ID) is plugged into the bridge; the other end is created directly inside the container's
network namespace and named eth0. Its address and default route have to be set from inside
that namespace: netns.py gives us a netlink socket there without leaving the host.
When the container's last process exits its namespace is destroyed, eth0 with it — and
deleting either end of a veth pair deletes both, so the host end disappears as well.
"""
from __future__ import annotations

import re

from ..errors import NetworkError
from .netlink import Netlink, open_socket
from .netns import socket_in_netns

CONTAINER_IFNAME = "eth0"


def host_ifname(container_id: str) -> str:
    """mc + 12 hex digits (ifnames have at most 15 characters): mc3f2a9c81b0d4."""
    digits = container_id
    if not re.fullmatch(r"[0-9a-f]{12,}", container_id):
        import hashlib              # only here: loading OpenSSL costs `run` ~2 ms (performance.md)
        digits = hashlib.sha256(container_id.encode()).hexdigest()
    return "mc" + digits[:12]


def create_veth(nl: Netlink, host_end: str, bridge_index: int, bridge: str,
                netns_fd: int, pid: int, explain=None) -> None:
    """Both ends in one netlink message: host end on the bridge and up, eth0 in the netns."""
    shell = (f"ip link add {host_end} master {bridge} up type veth "
             f"peer name {CONTAINER_IFNAME} netns {pid}")
    if explain:
        explain(shell, "a virtual cable: the host end on the bridge, eth0 inside the container")
    nl.add_veth(host_end, bridge_index, CONTAINER_IFNAME, netns_fd, shell)


def configure_inside(netns_fd: int, pid: int, ip: str, prefixlen: int, gateway: str,
                     explain=None) -> None:
    """From a socket inside the container's namespace: lo up, eth0's address, default route."""
    inside = f"nsenter -t {pid} -n "
    with Netlink(socket_in_netns(netns_fd, open_socket)) as nl:
        steps = [(f"{inside}ip link set lo up", "127.0.0.1 inside the container"),
                 (f"{inside}ip link set {CONTAINER_IFNAME} up",
                  "the peer is created down (up only once the pair exists)"),
                 (f"{inside}ip addr add {ip}/{prefixlen} dev {CONTAINER_IFNAME}",
                  "the container's address, leased by IPAM"),
                 (f"{inside}ip route add default via {gateway}",
                  "everything not on the subnet goes to the bridge (the host)")]
        if explain:
            for shell, why in steps:
                explain(shell, why)
        nl.set_up(1, steps[0][0])                   # lo is always interface 1 in a namespace
        eth0 = nl.link_index(CONTAINER_IFNAME)
        nl.set_up(eth0, steps[1][0])
        nl.add_address(eth0, ip, prefixlen, steps[2][0])
        nl.add_default_route(gateway, eth0, steps[3][0])


def set_hairpin(host_end: str, explain=None) -> None:
    """Let the bridge send a frame back out of the port it came in on. A bridge never does
    that by default — but a pod that calls its own Service's ClusterIP sends a packet whose
    destination, after DNAT, is itself (with br_netfilter, the DNAT happens while the frame
    is still being bridged). kubelet sets the same "hairpin mode" on a pod's veth."""
    shell = f"bridge link set dev {host_end} hairpin on"
    if explain:
        explain(shell, "a pod may reach itself through its Service's address")
    with Netlink() as nl:
        index = nl.link_index(host_end)
        if index is None:
            raise NetworkError(f"{shell}: no link {host_end}")
        nl.set_hairpin(index, shell)


def delete_veth(nl: Netlink, host_end: str, explain=None) -> None:
    """ip link del HOST_END: removes both ends (no-op if the container's exit already did,
    and never deletes a link of that name that is not a veth: it is not ours)."""
    if nl.link_kind(host_end) != "veth":
        return
    if nl.delete_link(host_end) and explain:
        explain(f"ip link del {host_end}", "unplug the container (eth0, its other end, goes too)")


def announce(netns_fd: int, pid: int, ip: str, explain=None) -> None:
    """A gratuitous ARP from eth0: "IP is at MY_MAC", broadcast on the bridge. Whoever still
    caches IP with the MAC of an earlier container (the host, other containers) updates it at
    once, instead of sending into the void until the entry fails (leases.py says when that
    happens). One raw Ethernet frame, sent on a packet socket made inside the namespace."""
    import socket
    import struct
    if explain:
        explain(f"nsenter -t {pid} -n arping -U -c 1 -I {CONTAINER_IFNAME} {ip}",
                "gratuitous ARP: neighbours that cached this address for an earlier container learn the new MAC")
    eth_p_arp = 0x0806
    with socket_in_netns(netns_fd, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                                         socket.htons(eth_p_arp))) as sock:
        sock.bind((CONTAINER_IFNAME, eth_p_arp))
        mac = sock.getsockname()[4]
        address = socket.inet_aton(ip)
        frame = (b"\xff" * 6 + mac + struct.pack("!H", eth_p_arp)               # Ethernet header
                 + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)                     # ARP request, IPv4 over Ethernet
                 + mac + address + b"\x00" * 6 + address)                       # sender = target = IP
        try:
            sock.send(frame)
        except OSError as e:
            raise NetworkError(f"sending a gratuitous ARP for {ip} on {CONTAINER_IFNAME}: "
                               f"{e.strerror}") from None
