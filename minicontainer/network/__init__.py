"""Container networking: --net none|host|bridge|NETWORK|container:NAME and -p.

    man 7 network_namespaces, man 4 veth, man 8 ip, man 8 nft       docs/networking.md

  none            the container's own network namespace with only lo (the runtime brings it up)
  host            no network namespace: the host's interfaces, addresses and ports
  bridge | NAME   own namespace + eth0 on a bridge: the default network "bridge" (mc0,
                  10.201.0.0/16) or one made with `network create NAME`
  container:NAME  join NAME's network namespace (setns): same eth0, same ports — a "pod"

One module per kernel idea:
  netlink.py  talking to the kernel (rtnetlink messages)   netns.py  reaching into a namespace
  bridge.py   the virtual switch + sysctls                 veth.py   the cable into the container
  ipam.py     subnets, the lock, the JSON files             nat.py    MASQUERADE and DNAT (nft/iptables)
  leases.py   one address allocator per bridge (all roots)  hosts.py  /etc/hosts, /etc/resolv.conf
  ports.py    -p parsing and checks                         store.py  a root's networks: ls/create/rm/inspect
  attach.py   one container: plan → attach → detach         steps.py  the run sequence's network steps

This file imports only light modules: no netlink socket, no subprocess until a call needs one.
"""
from __future__ import annotations

from ..errors import ConfigError
from .hosts import resolv_conf_text, write_hosts, write_resolv_conf
from .netns import enter_netns, open_netns
from .ports import PortMapping, parse_publish
from ..records import record
from .attach import Network
from .store import DEFAULT_NETWORK, NetworkStore

@record(frozen=True)
class NetworkMode:
    """What --net asked for: kind is none|host|bridge|container; name is the network
    (for bridge) or the container (for container:NAME)."""
    kind: str
    name: str = ""


def parse_network_mode(value: str | None) -> NetworkMode:
    """'bridge' (default) | 'none' | 'host' | 'container:NAME' | a user network's name."""
    value = (value or DEFAULT_NETWORK).strip()
    if value in ("none", "host"):
        return NetworkMode(value)
    if value.startswith("container:"):
        target = value.split(":", 1)[1]
        if not target:
            raise ConfigError("--net container:NAME needs the name or ID of a running container")
        return NetworkMode("container", target)
    if ":" in value or not value:
        raise ConfigError(f"--net {value}: use none, host, bridge, container:NAME "
                          "or the name of a network (`minicontainer network ls`)")
    return NetworkMode("bridge", value)


def join_container_netns(pid: int) -> int:
    """For --net container:NAME: open NAME's PID 1's namespace in the parent (fails early if
    it is gone); the setup child then calls enter_netns(fd) instead of unsharing CLONE_NEWNET."""
    return open_netns(pid)


__all__ = [
    "NetworkStore", "Network", "NetworkMode", "PortMapping", "DEFAULT_NETWORK",
    "parse_publish", "parse_network_mode", "join_container_netns", "open_netns", "enter_netns",
    "write_hosts", "write_resolv_conf", "resolv_conf_text",
]
