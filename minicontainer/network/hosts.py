"""Names: /etc/hosts (containers find each other by name) and /etc/resolv.conf (the host's DNS).

    man 5 hosts, man 5 resolv.conf, man 5 nsswitch.conf          shell: getent hosts web

The C library looks a name up in /etc/hosts before asking DNS ("hosts: files dns" in
nsswitch.conf). So a hosts file listing every container of a network, name → address, is
all it takes for `ping web` to work — no DNS server needed. It must be *kept current*:
when a container starts or stops, the hosts file of every container on that network is
rewritten.

That is why the hosts file lives on the host and is bind-mounted onto /etc/hosts: the host
can update it at any time. It is rewritten in place (same inode): a bind mount pins the
inode, so a renamed-over file would never be seen inside. (Docker's user-defined networks
run a DNS server at 127.0.0.11 instead.)

One file per network, not one per container: <root>/networks/NAME/hosts, and each
container's <root>/containers/<id>/hosts is a symbolic link to it. A start or a stop then
writes one file, not every container's — with a thousand containers that was a thousand
files of a thousand lines each, at every start and every stop. The shared file is bound
read-only (spec.run_mounts): a container must not rewrite its neighbours' names. Only a
container with --add-host keeps a file of its own, rewritten with the others.
"""
from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

LOCALHOST = ("127.0.0.1\tlocalhost\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n")
HOST_RESOLV = Path("/etc/resolv.conf")
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")   # systemd-resolved's real servers


def hosts_text(entries: list[tuple[str, list[str]]], network: str = "") -> str:
    """localhost lines, then one 'ADDRESS\tNAME ALIAS…' line per container."""
    head = f"# written by minicontainer for network {network}; kept current\n" if network else ""
    lines = [f"{ip}\t{' '.join(dict.fromkeys(names))}\n" for ip, names in entries if names]
    return head + LOCALHOST + "".join(lines)


def write_in_place(path: Path | str, text: str) -> None:
    """open(O_WRONLY|O_TRUNC) keeps the inode, so a bind mount of this file sees the update."""
    with open(path, "w") as f:
        f.write(text)


def write_hosts(path: Path | str, hostname: str = "", ip: str = "") -> None:
    """The hosts file for --net none/container: localhost, plus 'IP HOSTNAME' when given.
    For --net host, bind-mount or copy the host's own /etc/hosts instead."""
    write_in_place(path, hosts_text([(ip, [hostname])] if ip and hostname else []))


def split_host(item: str) -> tuple[str, str]:
    """--add-host NAME:IP (or NAME=IP); an IPv6 address keeps its colons."""
    name, _, ip = item.partition("=" if "=" in item else ":")
    return name, ip.strip("[]")


def extra_hosts_text(extra: list[str]) -> str:
    """--add-host NAME:IP → 'IP\tNAME' lines, after the network's own (as Docker appends them)."""
    return "".join(f"{ip}\t{name}\n" for name, ip in map(split_host, extra))


def dns_overrides(text: str, dns=(), search=()) -> str:
    """--dns replaces the nameserver lines, --dns-search the search line; the rest is kept."""
    lines = text.splitlines(keepends=True)
    if dns:
        lines = [line for line in lines if line.split()[:1] != ["nameserver"]]
        lines += [f"nameserver {server}\n" for server in dns]
    if search:
        lines = [line for line in lines if line.split()[:1] not in (["search"], ["domain"])]
        lines.insert(0, f"search {' '.join(search)}\n")
    return "".join(lines)


def resolv_conf_text(mode: str = "bridge") -> str:
    """The host's resolv.conf for a container. With its own network namespace a container
    cannot reach the host's 127.0.0.x, so loopback nameservers (systemd-resolved's
    127.0.0.53, dnsmasq…) are replaced by the upstream servers, as Docker does."""
    text = read_text(HOST_RESOLV)
    if mode == "host" or not loopback_nameservers(text):
        return text
    upstream = read_text(RESOLVED_UPSTREAM)
    if upstream and not loopback_nameservers(upstream):
        return upstream
    kept = [line for line in text.splitlines(keepends=True)
            if not (line.split()[:1] == ["nameserver"] and is_loopback(line.split()[1:2]))]
    return "".join(kept)


def write_resolv_conf(path: Path | str, mode: str = "bridge", dns=(), search=()) -> None:
    write_in_place(path, dns_overrides(resolv_conf_text(mode), dns, search))


def loopback_nameservers(text: str) -> bool:
    return any(line.split()[:1] == ["nameserver"] and is_loopback(line.split()[1:2])
               for line in text.splitlines())


def is_loopback(field: list[str]) -> bool:
    try:
        return bool(field) and ipaddress.ip_address(field[0].split("%")[0]).is_loopback
    except ValueError:
        return False


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# ── one network's hosts files, from its leases ───────────────────────────────────────────

def hosts_entries(leases: dict) -> list[tuple[str, list[str]]]:
    """[(ip, [name, hostname, …])] for every container of a network (its leases), by address."""
    return sorted(((lease["ip"], lease.get("names", [])) for lease in leases.values()),
                  key=lambda e: socket.inet_aton(e[0]))     # 4 bytes: numeric order, cheap


def network_hosts_text(leases: dict, network: str) -> str:
    return hosts_text(hosts_entries(leases), network)


def write_planned(leases: dict, network: str, lease: dict, shared: Path) -> None:
    """A new container's hosts file: a symbolic link to its network's one file, brought up to
    date — the bind mount onto /etc/hosts resolves the link, so every container of the
    network sees that one inode. With --add-host, a file of its own."""
    text, path = network_hosts_text(leases, network), Path(lease["hosts_path"])
    if path.is_symlink():
        path.unlink()                               # never write through an old link
    if lease.get("hosts_shared"):
        write_in_place(shared, text)
        path.symlink_to(shared)
    else:
        write_in_place(path, text + extra_hosts_text(lease.get("extra_hosts", [])))


def rewrite_hosts_files(leases: dict, network: str, shared: Path) -> None:
    """Bring the network's hosts file up to date (in place, see above): one write, whatever
    the number of containers — and the own file of each container with --add-host."""
    text = network_hosts_text(leases, network)
    if shared.parent.is_dir():
        write_in_place(shared, text)
    for lease in leases.values():
        path = lease.get("hosts_path")
        if path and not lease.get("hosts_shared") and Path(path).parent.is_dir():
            write_in_place(path, text + extra_hosts_text(lease.get("extra_hosts", [])))
