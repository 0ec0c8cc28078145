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

import bisect
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


# ── one network's hosts files, kept current line by line ─────────────────────────────────

def by_address(line: str) -> bytes:
    return socket.inet_aton(line.split("\t", 1)[0])          # 4 bytes: numeric order, cheap


def update_network_hosts(shared: Path, network: str, drop: str = "",
                         add: tuple[str, list[str]] | None = None) -> str:
    """The network's one hosts file with the line of address `drop` removed and/or the line
    (address, names) `add`ed, in address order; returns its new text. It is read from the file
    itself: a start or a stop never reads the other containers' leases."""
    fixed = hosts_text([], network)
    own = set(fixed.splitlines(keepends=True))
    lines = [line for line in read_text(shared).splitlines(keepends=True)
             if line not in own and "\t" in line and line.split("\t", 1)[0] != drop]
    if add and add[1]:
        bisect.insort(lines, hosts_text([add])[len(LOCALHOST):], key=by_address)
    text = fixed + "".join(lines)
    if shared.parent.is_dir():
        write_in_place(shared, text)
    return text


def write_own_files(text: str, own: dict) -> None:
    """The files of the containers with --add-host ({ID: {hosts_path, extra_hosts}}): the
    network's text and their own lines."""
    for entry in own.values():
        if Path(entry["hosts_path"]).parent.is_dir():
            write_in_place(entry["hosts_path"], text + extra_hosts_text(entry.get("extra_hosts", [])))


def link_planned(lease: dict, shared: Path) -> None:
    """A new container's hosts file: a symbolic link to its network's one file — the bind mount
    onto /etc/hosts resolves the link, so every container of the network sees that one inode.
    (With --add-host it is a file of its own: write_own_files.)"""
    path = Path(lease["hosts_path"])
    if path.is_symlink():
        path.unlink()                               # never write through an old link
    if lease.get("hosts_shared"):
        path.symlink_to(shared)
