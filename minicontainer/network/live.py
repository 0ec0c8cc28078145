"""Reading our networks back from the kernel with pyroute2 — and sweeping what a crash left.

    man 7 rtnetlink, man 8 ip-link, man 8 ip-address, man 8 ip-netns
    shell: ip -d link show master mc0; ip -4 addr show mc0; nsenter -t PID -n ip -4 addr show eth0
           ip -d link show type veth   (link-netnsid: which namespace the other end is in)

netlink.py *writes* with a few hand-built messages, because a container start cannot afford
pyroute2's import (~100–250 ms, against a 30 ms budget for the whole bridge setup). Away from
the start path — `network inspect`, `gc` — pyroute2 is the better tool: IPRoute answers each
question with one call and decodes every attribute, and NetNS opens the same socket inside
another network namespace. Both are imported inside the functions that use them.

What a crash can leave (gc), and how it is told apart from a live container:
  * a veth `mc<12 hex>` on one of our bridges that no lease names. Its other end (eth0) sits
    in some namespace — the kernel says which by a number, IFLA_LINK_NETNSID. If no process
    is in that namespace any more (RTM_GETNSID asked for every PID), nobody can be using it;
    if one is, it may be another --root's container, and it is left alone.
  * a bridge named mc0 or mc-… that we made (its MAC is bridge.bridge_mac(name)) and that
    no network of this --root defines, with no port left: removed with its NAT rules. A network that still wants it
    simply makes it again on its next start (Network.ensure). One made in the last seconds
    is kept: another --root may be between `ip link add` and plugging in its first veth.
"""
from __future__ import annotations

import errno
import os
import re
import socket
import time

from ..records import record

VETH_RE = re.compile(r"mc[0-9a-f]{12}")          # veth.host_ifname()
NO_NSID = 0xFFFFFFFF                              # RTM_GETNSID: "no id in this namespace"
BRIDGE_MIN_AGE = 10.0                             # seconds: a younger bridge may be a start in progress


# ── reading (network inspect) ─────────────────────────────────────────────────────────────

def link_kind(link) -> str:
    info = link.get_attr("IFLA_LINKINFO")
    return (info.get_attr("IFLA_INFO_KIND") or "") if info else ""


def ipv4_addresses(ipr, index: int) -> list[str]:
    """`ip -4 addr show dev INDEX` → ['10.201.0.1/16']."""
    return [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ipr.get_addr(family=socket.AF_INET, index=index)]


def bridge_view(name: str) -> dict:
    """The bridge as the kernel has it: present, state, MAC, addresses, ports (IPRoute)."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return {"present": False}
        (link,) = ipr.get_links(found[0])
        ports = [l.get_attr("IFLA_IFNAME") for l in ipr.get_links()
                 if l.get_attr("IFLA_MASTER") == found[0]]
        return {"present": True, "index": found[0], "kind": link_kind(link),
                "state": link.get_attr("IFLA_OPERSTATE"), "mac": link.get_attr("IFLA_ADDRESS"),
                "addresses": ipv4_addresses(ipr, found[0]), "ports": sorted(ports)}


def container_view(pid: int, ifname: str = "eth0") -> dict:
    """eth0 seen from inside the container's network namespace (NetNS on /proc/PID/ns/net)."""
    from pyroute2 import NetNS
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        return {"error": f"open /proc/{pid}/ns/net: {e.strerror}"}
    try:
        with NetNS(fd, flags=0) as ns:               # flags=0: never create a namespace
            found = ns.link_lookup(ifname=ifname)
            if not found:
                return {"interface": ifname, "present": False}
            (link,) = ns.get_links(found[0])
            return {"interface": ifname, "present": True, "mac": link.get_attr("IFLA_ADDRESS"),
                    "state": link.get_attr("IFLA_OPERSTATE"),
                    "addresses": ipv4_addresses(ns, found[0])}
    finally:
        os.close(fd)


# ── sweeping (gc) ─────────────────────────────────────────────────────────────────────────

@record
class Leftover:
    kind: str            # "veth" or "bridge"
    name: str
    why: str
    removable: bool      # False: reported as skipped, with `why`

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.why})"


def suspects(defined_bridges: set[str], leased_veths: set[str]) -> set[str]:
    """Interface names that look like ours but that this --root does not account for.
    Cheap (if_nameindex(3), no pyroute2): gc imports pyroute2 only when this is not empty."""
    names = {name for _, name in socket.if_nameindex()}
    veths = {n for n in names if VETH_RE.fullmatch(n) and n not in leased_veths}
    bridges = {n for n in names if (n == "mc0" or n.startswith("mc-")) and n not in defined_bridges}
    return veths | bridges


def find_leftovers(defined_bridges: set[str], leased_veths: set[str],
                   min_age: float = BRIDGE_MIN_AGE) -> list[Leftover]:
    """Leftover veths and bridges (see the module docstring); removable or not, with why.
    A bridge younger than min_age seconds is kept: another --root's start may have made it
    and not plugged its first veth in yet (its lock is not ours to take)."""
    candidates = suspects(defined_bridges, leased_veths)
    if not candidates:
        return []
    from pyroute2 import IPRoute
    from .bridge import bridge_mac, format_mac
    found: list[Leftover] = []
    with IPRoute() as ipr:
        links = {l.get_attr("IFLA_IFNAME"): l for l in ipr.get_links()}
        by_index = {l["index"]: name for name, l in links.items()}
        ours = {name for name, l in links.items() if link_kind(l) == "bridge"
                and l.get_attr("IFLA_ADDRESS") == format_mac(bridge_mac(name))}
        bridges = ours | (defined_bridges & set(links))
        live_nsids = None                            # asked for only if a veth needs it
        for name in sorted(candidates & set(links)):     # veths first: bridges count ports
            link = links[name]
            if not (VETH_RE.fullmatch(name) and link_kind(link) == "veth"):
                continue
            master = by_index.get(link.get_attr("IFLA_MASTER"))
            nsid = link.get_attr("IFLA_LINK_NETNSID")
            if master not in bridges or nsid is None:
                continue                             # not on our bridge, or both ends here
            if live_nsids is None:
                live_nsids = nsids_with_processes(ipr)
            if nsid in live_nsids:
                found.append(Leftover("veth", name, f"on {master}, no lease here, but its "
                                      "container side still has processes (another "
                                      "--root's container?)", False))
            else:
                found.append(Leftover("veth", name, f"on {master}: no lease, no process "
                                      "left in its container's network namespace", True))
        going = {f.name for f in found if f.removable}
        for name in sorted(candidates & ours):
            ports = {p for p, l in links.items() if l.get_attr("IFLA_MASTER") == links[name]["index"]}
            if ports - going:
                found.append(Leftover("bridge", name, "made by minicontainer, no network of this "
                                      f"--root defines it, but {len(ports - going)} port(s) are "
                                      "plugged in", False))
            elif (age := address_age(ipr, links[name]["index"])) is not None and age < min_age:
                found.append(Leftover("bridge", name, f"made by minicontainer {age:.0f} s ago, no "
                                      "port yet: another --root may be starting a container on "
                                      "it", False))
            else:
                found.append(Leftover("bridge", name, "made by minicontainer, no network of "
                                      "this --root defines it, no port", True))
    return found


def address_age(ipr, index: int) -> float | None:
    """Seconds since the bridge got its IPv4 address — ensure_bridge adds it right after
    `ip link add`, so about the bridge's age; None without one. Netlink keeps no link's age,
    but it stamps each address when it is added: IFA_CACHEINFO.cstamp, in 1/100 s since boot
    (the jiffies clock, which like CLOCK_MONOTONIC does not count suspend)."""
    stamps = [a.get_attr("IFA_CACHEINFO")["cstamp"] for a in
              ipr.get_addr(family=socket.AF_INET, index=index) if a.get_attr("IFA_CACHEINFO")]
    return time.monotonic() - min(stamps) / 100 if stamps else None


def nsids_with_processes(ipr) -> set[int]:
    """The ids (as this namespace numbers them) of every network namespace a process is in:
    RTM_GETNSID with NETNSA_PID, once per PID (`ip netns identify` does the same by inode)."""
    ids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            nsid = ipr.get_netnsid(pid=int(pid))["nsid"]
        except Exception:                            # gone meanwhile, or a kernel thread
            continue
        if nsid is not None and nsid != NO_NSID:
            ids.add(nsid)
    return ids


def remove_leftovers(leftovers: list[Leftover], explain=None) -> list[str]:
    """Delete the removable ones (veths first, then bridges and their NAT rules); returns
    the errors as lines (a leftover that vanished meanwhile is not an error)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    errors = []
    with IPRoute() as ipr:
        for item in sorted((l for l in leftovers if l.removable), key=lambda l: l.kind != "veth"):
            if explain:
                explain(f"ip link del {item.name}", item.why)
            try:
                ipr.link("del", ifname=item.name)
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    errors.append(f"ip link del {item.name}: {errno.errorcode.get(e.code, e.code)}")
                    continue
            if item.kind == "bridge":
                errors += remove_nat_rules(item.name, explain)
    return errors


def remove_nat_rules(bridge: str, explain=None) -> list[str]:
    """The bridge's table (nft) or chains (iptables), whichever exists."""
    import shutil
    from ..errors import NetworkError
    from .nat import get_firewall, run
    errors = []
    probes = {"nft": ["nft", "list", "table", "ip", f"minicontainer-{bridge}"],
              "iptables": ["iptables", "-w", "-t", "nat", "-S", f"MC-{bridge}-POST"]}
    for tool, probe in probes.items():
        if shutil.which(tool) and run(probe).returncode == 0:
            try:
                get_firewall(tool).teardown_network(bridge, explain)
            except NetworkError as e:
                errors.append(str(e))
    return errors
