"""Published ports: `-p [HOST_IP:][HOST_PORT]:CTR_PORT[/tcp|udp]`, `-P`, parsed and checked.

    man 7 ip, man 7 tcp, man 7 udp (bind, EADDRINUSE)          shell: ss -ltnup

A container on a bridge has a private address (10.201.0.2) that no other machine can
route to. Publishing a port means: a connection to the *host's* address on HOST_PORT is
forwarded to the container's address on CTR_PORT. How the forwarding is done (destination
NAT in netfilter) is nat.py's job; this module only turns the flag into a PortMapping and
checks, before anything is created, that the host port is still free.

`-p 80` (no HOST_PORT) and `-P/--publish-all` (every port the image EXPOSEs, and every
--expose) publish on a host port the kernel picks: host_port 0 here, replaced under the
network's lock by choose_host_port() — bind(2) to port 0 hands out a free one from
/proc/sys/net/ipv4/ip_local_port_range, as Docker's random ports are.
"""
from __future__ import annotations

import errno
import ipaddress
import socket

from ..errors import ConfigError, NetworkError
from ..records import asdict, record

PROTOCOLS = ("tcp", "udp")


@record(frozen=True)
class PortMapping:
    """One -p flag. host_ip "" means every address of the host (like 0.0.0.0)."""
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""

    def __str__(self) -> str:                # the way `docker port` prints it
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.proto}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PortMapping":
        return cls(int(data["host_port"]), int(data["container_port"]),
                   data.get("proto", "tcp"), data.get("host_ip", ""))


def parse_publish(specs: list[str]) -> list[PortMapping]:
    """Parse every -p value; the first bad one raises ConfigError (before anything exists)."""
    ports = [parse_one(spec) for spec in specs]
    seen: dict[tuple, str] = {}
    for spec, port in zip(specs, ports):
        if not port.host_port:                       # a port chosen later: no clash possible
            continue
        key = (port.host_port, port.proto)
        if key in seen:
            raise ConfigError(f"-p {spec}: host port {port.host_port}/{port.proto} is already "
                              f"published by -p {seen[key]}: use a different HOST_PORT")
        seen[key] = spec
    return ports


def parse_one(spec: str) -> PortMapping:
    usage = ("use [HOST_IP:][HOST_PORT:]CTR_PORT[/tcp|udp], e.g. -p 8080:80, -p 127.0.0.1:8053:53/udp "
             "or -p 80 (a random host port)")
    body, _, proto = spec.strip().partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise ConfigError(f"-p {spec}: unknown protocol {proto!r}: {usage}")
    parts = body.split(":")
    if body.startswith("[") or len(parts) > 3:
        raise ConfigError(f"-p {spec}: only IPv4 host addresses are supported: {usage}")
    if len(parts) == 1:                              # -p 80: any free host port
        return PortMapping(0, parse_port(parts[0], spec, usage), proto)
    host_ip = parts[0] if len(parts) == 3 else ""
    if host_ip:
        try:
            host_ip = str(ipaddress.IPv4Address(host_ip))
        except ValueError:
            raise ConfigError(f"-p {spec}: {host_ip!r} is not an IPv4 address: {usage}") from None
        if host_ip == "0.0.0.0":
            host_ip = ""
    host_port = parse_port(parts[-2], spec, usage) if parts[-2] else 0   # 127.0.0.1::80: any
    return PortMapping(host_port, parse_port(parts[-1], spec, usage), proto, host_ip)


def parse_exposed(items, flag: str = "--expose") -> list[str]:
    """--expose PORT[/PROTO] or a range 8000-8010[/PROTO] (and the image's EXPOSE) → 'N/proto'."""
    out = []
    for item in items:
        number, _, proto = str(item).partition("/")
        proto = (proto or "tcp").lower()
        low, dash, high = number.partition("-")
        if proto not in PROTOCOLS or not low.isdigit() or (dash and not high.isdigit()) \
                or not 1 <= int(low) <= int(high or low) <= 65535:
            raise ConfigError(f"invalid {flag} {item!r}: use PORT[/tcp|udp] or FIRST-LAST[/tcp|udp], "
                              "ports 1-65535")
        out += [f"{n}/{proto}" for n in range(int(low), int(high or low) + 1)]
    return list(dict.fromkeys(out))


def publish_all(exposed: list[str], ports: list[PortMapping]) -> list[PortMapping]:
    """-P: each exposed port not published by a -p already, on a host port chosen later."""
    given = {(p.container_port, p.proto) for p in ports}
    more = []
    for item in exposed:
        number, _, proto = item.partition("/")
        if (int(number), proto) not in given:
            more.append(PortMapping(0, int(number), proto))
    return ports + more


def choose_host_port(port: PortMapping, taken: set) -> PortMapping:
    """A port with host_port 0 gets one the kernel calls free (bind(2) to port 0) that no
    other container has published either (taken: {(host_port, proto)}). Under the lock."""
    kind = socket.SOCK_STREAM if port.proto == "tcp" else socket.SOCK_DGRAM
    for _ in range(64):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((port.host_ip or "0.0.0.0", 0))
            number = probe.getsockname()[1]
        if (number, port.proto) not in taken:
            taken.add((number, port.proto))
            return PortMapping(number, port.container_port, port.proto, port.host_ip)
    raise NetworkError(f"no free host port for {port.container_port}/{port.proto}: every port the "
                       "kernel offered is published by another container")


def parse_port(text: str, spec: str, usage: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"-p {spec}: {text!r} is not a port number (1-65535): {usage}")
    return int(text)


def check_port_free(port: PortMapping) -> None:
    """bind(2) a socket to the host port and close it: fails if a program already listens
    there (EADDRINUSE) or if HOST_IP is not an address of this host (EADDRNOTAVAIL).
    DNAT would otherwise silently take that program's traffic away."""
    kind = socket.SOCK_STREAM if port.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:               # TIME_WAIT leftovers do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((port.host_ip or "0.0.0.0", port.host_port))
        except OSError as e:
            where = f"{port.host_ip or '0.0.0.0'}:{port.host_port}/{port.proto}"
            if e.errno == errno.EADDRINUSE:
                raise NetworkError(f"-p {port.host_port}:{port.container_port}: bind({where}): "
                                   "EADDRINUSE: another program uses that port; pick another "
                                   "HOST_PORT (see `ss -ltnup`)") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise NetworkError(f"-p {port.host_ip}:…: bind({where}): EADDRNOTAVAIL: "
                                   f"{port.host_ip} is not an address of this host") from None
            raise NetworkError(f"bind({where}) failed: {errno.errorcode.get(e.errno)} "
                               f"({e.strerror})") from None


def check_ports_unpublished(ports: list[PortMapping], leases_of_every_network: list[dict]) -> None:
    """A host port may be published by one container only, across all networks (their leases)."""
    for leases in leases_of_every_network:
        for cid, lease in leases.items():
            for used in map(PortMapping.from_dict, lease.get("ports", [])):
                for port in ports:
                    if (used.host_port, used.proto) == (port.host_port, port.proto) and \
                            (not used.host_ip or not port.host_ip or used.host_ip == port.host_ip):
                        raise NetworkError(f"-p {port.host_port}:{port.container_port}: host port "
                                           f"{port.host_port}/{port.proto} is already published "
                                           f"by container {cid[:12]}: pick another HOST_PORT")
