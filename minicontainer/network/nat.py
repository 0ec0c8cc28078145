"""Netfilter NAT: let containers out (MASQUERADE) and let connections in (DNAT for -p).

    man 8 nft, man 8 iptables-extensions (MASQUERADE, DNAT)     shell: nft list ruleset

Every packet the host routes passes netfilter hooks, where rules can rewrite addresses:

    from another machine ─▶ prerouting ─▶ (routing) ─▶ forward ─▶ postrouting ─▶ out
    from a host program  ─▶ output ────────────────────────────▶ postrouting ─▶ out

  * MASQUERADE (postrouting): a container's packet leaving by the host's uplink gets the
    host's address as source, so the answer comes back to the host, which un-NATs it.
  * DNAT (prerouting for other machines, output for the host's own programs): a packet to
    HOST_PORT on a host address gets the container's address and port as destination.
    127.0.0.1:HOST_PORT too, which needs two more things: route_localnet=1 on the bridge
    (else the kernel drops a packet from 127.0.0.1 that leaves by a real interface) and a
    MASQUERADE of 127.0.0.0/8 sources towards the bridge (else the container would answer
    to its own 127.0.0.1). docs/networking.md explains why DNAT and not a proxy process.

Two interchangeable backends write the same rules:
  * nft (nftables, Debian ≥ 10's framework): one table per network, `minicontainer-<bridge>`,
    with two maps of published ports — publishing is `nft add element`, removing the whole
    network is `nft delete table`. Nothing of ours is mixed into anyone else's chains.
  * iptables (for hosts without the nft tool): our own chains MC-<bridge>-{DNAT,POST,FWD,IN},
    each jumped to from the built-in chain, and one DNAT rule per published port.
Both are plain command lines, so --explain prints exactly what ran.

Forwarding: with nftables every table's base chain decides on its own and a drop anywhere
is final, so an accept of ours could not override a host firewall's drop — the nft table
has no forward chain. Hosts with Docker set iptables' FORWARD policy to DROP; there only a
rule *in that chain* helps, which is why choose_firewall() then picks iptables, and the
iptables backend inserts ACCEPT rules for the bridge into FORWARD.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import NetworkError
from .ports import PortMapping

FIREWALL_ENV = "MINICONTAINER_FIREWALL"      # force "nft" or "iptables"


class TableMissing(NetworkError):
    """Our table/chains are gone (e.g. `nft flush ruleset`): the caller rebuilds them."""


def choose_firewall(preferred: str | None = None) -> str:
    """Which tool writes our rules: $MINICONTAINER_FIREWALL or `preferred` if given; else
    iptables when the host's iptables FORWARD policy is DROP (Docker sets it: only a rule in
    that same chain can let our traffic through), else nft if installed, else iptables."""
    wanted = preferred or os.environ.get(FIREWALL_ENV) or ""
    if wanted and wanted not in BACKENDS:
        raise NetworkError(f"{FIREWALL_ENV}={wanted}: use 'nft' or 'iptables'")
    if wanted:
        if not shutil.which(wanted):
            raise NetworkError(f"{wanted}: command not found: install it "
                               f"(apt-get install {'nftables' if wanted == 'nft' else 'iptables'})")
        return wanted
    if shutil.which("iptables") and forward_policy_is_drop():
        return "iptables"
    for name in ("nft", "iptables"):
        if shutil.which(name):
            return name
    raise NetworkError("neither nft nor iptables is installed: `apt-get install nftables`")


def forward_policy_is_drop() -> bool:
    """`iptables -S FORWARD` prints '-P FORWARD DROP' on a host with Docker."""
    done = run(["iptables", "-w", "-S", "FORWARD"])
    return done.returncode == 0 and "-P FORWARD DROP" in done.stdout


def get_firewall(name: str) -> "Nftables | Iptables":
    return BACKENDS[name]()


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise NetworkError(f"{argv[0]}: command not found: install it (apt-get install "
                           f"{'nftables' if argv[0] == 'nft' else 'iptables'})") from None


def tell(explain, tool: str, lines: list[tuple[str, str]]) -> None:
    """--explain each (command line, why) pair as `TOOL line`."""
    if explain:
        for line, why in lines:
            explain(f"{tool} {line}", why)


def first_error_line(stderr: str) -> str:
    """The line that says what went wrong (nft prints the offending command after it)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if "rror" in line), lines[0] if lines else "")


# ── nftables ──────────────────────────────────────────────────────────────────────────────

class Nftables:
    name = "nft"

    @staticmethod
    def table(bridge: str) -> str:
        return f"ip minicontainer-{bridge}"

    def network_rules(self, bridge: str, subnet: str) -> list[tuple[str, str]]:
        """The whole table for one network, written from scratch, with why each line is there."""
        t = self.table(bridge)
        dnat_any = "fib daddr type local dnat ip to meta l4proto . th dport map @ports"
        dnat_ip = "dnat ip to ip daddr . meta l4proto . th dport map @ports_on_ip"
        return [
            (f"add table {t}", "one table per network: `nft delete table` removes all of it"),
            (f"delete table {t}", "(add + delete + add: start from an empty table)"),
            (f"add table {t}", ""),
            (f"add map {t} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}",
             "published ports: tcp . 8080 → container address . 80"),
            (f"add map {t} ports_on_ip {{ type ipv4_addr . inet_proto . inet_service"
             f" : ipv4_addr . inet_service ; }}", "the same for -p HOST_IP:…: 127.0.0.1 . tcp . 8080 → …"),
            (f"add chain {t} prerouting {{ type nat hook prerouting priority dstnat ; }}",
             "packets arriving from other machines (and from containers)"),
            (f"add chain {t} output {{ type nat hook output priority -100 ; }}",
             "packets sent by the host's own programs"),
            (f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; }}",
             "every packet about to leave, after routing"),
            (f"add chain {t} input {{ type filter hook input priority filter ; }}",
             "packets for the host itself"),
            (f"add rule {t} prerouting {dnat_any}",
             "a published port on any host address → the container (DNAT)"),
            (f"add rule {t} prerouting {dnat_ip}", ""),
            (f"add rule {t} output {dnat_any}", "the same for connections from the host itself"),
            (f"add rule {t} output {dnat_ip}", ""),
            (f'add rule {t} postrouting ip saddr {subnet} oifname != "{bridge}" masquerade',
             "containers' packets leave with the host's address, so answers find their way back"),
            (f'add rule {t} postrouting oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade',
             "127.0.0.1:PORT → container: the container must answer the host, not its own lo"),
            (f'add rule {t} postrouting oifname "{bridge}" ip saddr {subnet} ct status dnat masquerade',
             "a container using a published port of another: answers must come back via the host"),
            (f'add rule {t} input iifname "{bridge}" ip daddr 127.0.0.0/8 ct state new drop',
             "route_localnet must not let containers open connections to the host's 127.0.0.1"),
        ]

    def setup_network(self, bridge: str, subnet: str, explain=None) -> None:
        lines = self.network_rules(bridge, subnet)
        tell(explain, "nft", lines)
        self.batch([line for line, _ in lines])

    def teardown_network(self, bridge: str, explain=None) -> None:
        line = f"delete table {self.table(bridge)}"
        tell(explain, "nft", [(line, "the network's rules and port maps go with its table")])
        self.batch([line], missing_ok=True)

    @staticmethod
    def port_key(port: PortMapping) -> str:
        key = f"{port.proto} . {port.host_port}"
        return f"{port.host_ip} . {key}" if port.host_ip else key

    def port_elements(self, bridge: str, ip: str, ports: list[PortMapping], verb: str) -> list[str]:
        t = self.table(bridge)
        lines = []
        for port in ports:
            target = f" : {ip} . {port.container_port}" if verb == "add" else ""
            mapname = "ports_on_ip" if port.host_ip else "ports"
            lines.append(f"{verb} element {t} {mapname} {{ {self.port_key(port)}{target} }}")
        return lines

    def add_ports(self, bridge: str, ip: str, ports: list[PortMapping], explain=None) -> None:
        if not ports:
            return
        lines = self.port_elements(bridge, ip, ports, "add")
        tell(explain, "nft", [(line, f"publish: new connections to this port go to {ip}")
                              for line in lines])
        self.batch(lines)

    def remove_ports(self, bridge: str, ip: str, ports: list[PortMapping], explain=None) -> None:
        lines = self.port_elements(bridge, ip, ports, "delete")
        tell(explain, "nft", [(line, "unpublish") for line in lines])
        if lines and not self.batch(lines, missing_ok=True):
            for line in lines:                       # a batch is all-or-nothing: retry one by one
                self.batch([line], missing_ok=True)

    @staticmethod
    def batch(lines: list[str], missing_ok: bool = False) -> bool:
        """`nft -f -`: all lines in one atomic transaction. False if missing_ok and absent."""
        done = run(["nft", "-f", "-"], "\n".join(lines) + "\n")
        if done.returncode == 0:
            return True
        if "No such file or directory" in done.stderr:
            if missing_ok:
                return False
            raise TableMissing(f"nft: {first_error_line(done.stderr)}")
        if "File exists" in done.stderr:
            raise NetworkError(f"nft: a published port is already taken: "
                               f"{first_error_line(done.stderr)}")
        raise NetworkError(f"nft -f - failed ({first_error_line(done.stderr)}) for: "
                           + "; ".join(lines[:3]) + ("; …" if len(lines) > 3 else ""))


# ── iptables ──────────────────────────────────────────────────────────────────────────────

IPTABLES_MISSING = ("does not exist", "doesn't exist", "No chain/target/match", "Bad rule",
                    "does a matching rule")     # iptables-nft and iptables-legacy wordings


class Iptables:
    name = "iptables"

    @staticmethod
    def chains(bridge: str) -> dict[str, tuple[str, str, str]]:
        """our chain → (table, built-in chain that jumps to it, match on the jump)"""
        return {f"MC-{bridge}-DNAT": ("nat", "PREROUTING", "-m addrtype --dst-type LOCAL"),
                f"MC-{bridge}-OUT": ("nat", "OUTPUT", "-m addrtype --dst-type LOCAL"),
                f"MC-{bridge}-POST": ("nat", "POSTROUTING", ""),
                f"MC-{bridge}-FWD": ("filter", "FORWARD", ""),
                f"MC-{bridge}-IN": ("filter", "INPUT", "")}

    def network_rules(self, bridge: str, subnet: str) -> list[tuple[str, str]]:
        p = f"MC-{bridge}"
        lines = []
        for chain, (table, builtin, match) in self.chains(bridge).items():
            lines.append((f"-t {table} -N {chain}", "our own chain: removing the network empties it"))
            lines.append((f"-t {table} -I {builtin} {match + ' ' if match else ''}-j {chain}",
                          f"{builtin} jumps to it first"))
        return lines + [
            (f"-t nat -A {p}-OUT -j {p}-DNAT", "the host's own programs get the same port rules"),
            (f"-t nat -A {p}-POST -s {subnet} ! -o {bridge} -j MASQUERADE",
             "containers' packets leave with the host's address, so answers find their way back"),
            (f"-t nat -A {p}-POST -s 127.0.0.0/8 -o {bridge} -j MASQUERADE",
             "127.0.0.1:PORT → container: the container must answer the host, not its own lo"),
            (f"-t nat -A {p}-POST -s {subnet} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE",
             "a container using a published port of another: answers must come back via the host"),
            (f"-t filter -A {p}-FWD -i {bridge} -j ACCEPT",
             "let containers' traffic through even if FORWARD's policy is DROP (Docker's is)"),
            (f"-t filter -A {p}-FWD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT "
             "-j ACCEPT", "answers, and connections to published ports"),
            (f"-t filter -A {p}-IN -i {bridge} -d 127.0.0.0/8 -m conntrack --ctstate NEW -j DROP",
             "route_localnet must not let containers open connections to the host's 127.0.0.1"),
        ]

    def setup_network(self, bridge: str, subnet: str, explain=None) -> None:
        self.teardown_network(bridge)                # start clean (no duplicate jumps)
        lines = self.network_rules(bridge, subnet)
        tell(explain, "iptables", lines)
        for line, _ in lines:
            self.iptables(line)

    def teardown_network(self, bridge: str, explain=None) -> None:
        lines = []
        for chain, (table, builtin, match) in self.chains(bridge).items():
            lines.append(f"-t {table} -D {builtin} {match + ' ' if match else ''}-j {chain}")
        ours = self.chains(bridge).items()
        lines += [f"-t {table} -F {chain}" for chain, (table, _, _) in ours]   # empty all first:
        lines += [f"-t {table} -X {chain}" for chain, (table, _, _) in ours]   # -OUT jumps to -DNAT
        tell(explain, "iptables", [(line, "") for line in lines])
        for line in lines:
            self.iptables(line, missing_ok=True)

    @staticmethod
    def port_rule(bridge: str, ip: str, port: PortMapping, verb: str) -> str:
        dest = f"-d {port.host_ip}/32 " if port.host_ip else ""
        return (f"-t nat {verb} MC-{bridge}-DNAT {dest}-p {port.proto} -m {port.proto} "
                f"--dport {port.host_port} -j DNAT --to-destination {ip}:{port.container_port}")

    def add_ports(self, bridge: str, ip: str, ports: list[PortMapping], explain=None) -> None:
        lines = [self.port_rule(bridge, ip, port, "-A") for port in ports]
        tell(explain, "iptables", [(line, f"publish: new connections to this port go to {ip}")
                                   for line in lines])
        for line in lines:
            self.iptables(line)

    def remove_ports(self, bridge: str, ip: str, ports: list[PortMapping], explain=None) -> None:
        lines = [self.port_rule(bridge, ip, port, "-D") for port in ports]
        tell(explain, "iptables", [(line, "unpublish") for line in lines])
        for line in lines:
            self.iptables(line, missing_ok=True)

    @staticmethod
    def iptables(line: str, missing_ok: bool = False) -> bool:
        done = run(["iptables", "-w", *line.split()])
        if done.returncode == 0:
            return True
        missing = any(words in done.stderr for words in IPTABLES_MISSING)
        if missing and missing_ok:
            return False
        if missing:
            raise TableMissing(f"iptables {line}: {first_error_line(done.stderr)}")
        raise NetworkError(f"iptables {line} failed: {first_error_line(done.stderr)}")


BACKENDS = {"nft": Nftables, "iptables": Iptables}


def publish_ports(fw, bridge: str, subnet: str, ip: str, ports: list[PortMapping],
                  leases, explain=None) -> None:
    """DNAT `ports` to the container at `ip`. If someone flushed the ruleset meanwhile
    (TableMissing), the network's rules are written again first, with the ports of every
    other attached container of `leases()` (read only then)."""
    if not ports:
        return
    try:
        fw.add_ports(bridge, ip, ports, explain)
    except TableMissing:
        fw.setup_network(bridge, subnet, explain)
        for lease in leases().values():
            if lease.get("attached"):
                fw.add_ports(bridge, lease["ip"], [PortMapping.from_dict(p) for p in lease.get("ports", [])], explain)
        fw.add_ports(bridge, ip, ports, explain)
