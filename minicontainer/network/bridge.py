"""A Linux bridge: a virtual switch on the host that all of a network's containers plug into.

    man 8 ip-link (type bridge), man 8 bridge, man 7 netdevice     shell: ip link add mc0 type bridge

The bridge forwards Ethernet frames between its ports (one veth end per container), so
containers on one network talk to each other directly. Giving the bridge an address in the
subnet (10.201.0.1/16) makes the host a member too: it is the containers' default gateway,
and routing + NAT (nat.py) take their traffic further.

Three host settings go with it (sysctl, i.e. files under /proc/sys/net):
  * net.ipv4.ip_forward=1 — without it the host drops packets that are not for itself;
  * net.ipv4.conf.<bridge>.route_localnet=1 — lets 127.0.0.1:PORT be DNATed to a container;
  * the bridge gets a fixed MAC address: a bridge otherwise takes the lowest MAC of its
    ports, which changes as containers come and go and leaves stale ARP entries behind.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import NetworkError
from .netlink import Netlink


def bridge_mac(name: str) -> bytes:
    """A stable, locally administered unicast MAC (02:…) derived from the bridge's name."""
    import hashlib                  # only here: loading OpenSSL costs `run` ~2 ms (performance.md)
    return b"\x02" + hashlib.sha256(name.encode()).digest()[:5]


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ensure_bridge(nl: Netlink, name: str, gateway: str, prefixlen: int, explain=None) -> tuple[int, bool]:
    """Create the bridge with its gateway address and bring it up, unless it exists.
    Returns (interface index, created?)."""
    index = nl.link_index(name)
    created = index is None
    if created:
        mac = bridge_mac(name)
        if explain:
            explain(f"ip link add {name} address {format_mac(mac)} type bridge",
                    "the network's virtual switch")
        nl.add_bridge(name, mac)
        index = nl.link_index(name)
    shell = f"ip addr add {gateway}/{prefixlen} dev {name}"
    if nl.add_address(index, gateway, prefixlen, shell) and explain:
        explain(shell, "the host's address on the network: the containers' gateway")
    shell = f"ip link set {name} up"
    if created and explain:
        explain(shell, "a new link starts down")
    nl.set_up(index, shell)
    return index, created


def delete_bridge(nl: Netlink, name: str, explain=None) -> None:
    """ip link del NAME (its ports are detached; containers' veths are removed separately)."""
    if nl.delete_link(name) and explain:
        explain(f"ip link del {name}", "remove the network's switch")


def write_sysctl(key: str, value: str, explain=None, why: str = "") -> None:
    """sysctl -w KEY=VALUE is a write to /proc/sys/KEY (dots become slashes)."""
    path = Path("/proc/sys") / key.replace(".", "/")
    try:
        if path.read_text().strip() == value:
            return
        if explain:
            explain(f"sysctl -w {key}={value}", why)
        path.write_text(value)
    except OSError as e:
        raise NetworkError(f"cannot write {path}: {e.strerror}: run as root "
                           "(in a user namespace /proc/sys/net may be read-only)") from None


def enable_forwarding(bridge: str, explain=None) -> None:
    write_sysctl("net.ipv4.ip_forward", "1", explain,
                 "route packets between the bridge and the host's other interfaces")
    write_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1", explain,
                 "allow 127.0.0.1:HOST_PORT to be forwarded to a container (see nat.py)")
