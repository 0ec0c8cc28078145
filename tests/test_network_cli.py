"""Networking end to end (issue 6), through the real CLI and real containers.

Where the traffic goes: the whole pytest session runs in a network namespace of its own
(conftest.py), which is the "host" here — its mc0, NAT table and veths never touch the
machine's network. "Another machine" is one more namespace joined to that host by a veth
pair (192.0.2.0/24, TEST-NET-1). Traffic only goes to loopback or to addresses inside them.

tests/test_network.py tests the library with fake containers (and both firewall backends);
tests/test_gc.py covers gc after a crash at every step, with the default network's leases
and veths in its before/after snapshot. Here: what a user types.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_network import another_machine, fetch as fetch_until, sh

from test_lifecycle import record, until

pytestmark = pytest.mark.root

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
VETH = re.compile(r"mc[0-9a-f]{12}")
HTTPD = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


# ── what the host has ─────────────────────────────────────────────────────────────────────

def links() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def veths() -> list[str]:
    return [name for name in links() if VETH.fullmatch(name)]


def addresses() -> list[str]:
    """`ip -o -4 addr`: interface and address, one per line."""
    return sorted(" ".join(line.split()[1:4]) for line in sh("ip", "-o", "-4", "addr").stdout.splitlines())


def ruleset() -> str:
    return sh("nft", "list", "ruleset").stdout if shutil.which("nft") else ""


def leases(mc_root) -> dict:
    from minicontainer.network import NetworkStore
    nets = NetworkStore(mc_root / "networks")
    return {n: nets.leases(n) for n in nets.names()}


def host_state(mc_root) -> dict:
    """What a container may leave behind on the host's network."""
    return {"links": links(), "addresses": addresses(), "ruleset": ruleset(), "leases": leases(mc_root),
            "listening": listening_ports()}


def listening_ports() -> list[int]:
    """TCP ports something listens on (/proc/net/tcp, state 0A): a proxy process would show."""
    ports = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports.append(int(fields[1].split(":")[1], 16))
    return sorted(ports)


def settled(mc_root, expected: dict, timeout: float = 10.0) -> dict:
    """host_state(), once it equals `expected` (or after `timeout`): the kernel deletes a
    stopped container's veth a moment after its namespace's last process is gone."""
    deadline = time.monotonic() + timeout
    while (state := host_state(mc_root)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


def baseline(mc_root, timeout: float = 10.0) -> dict:
    """host_state() once the veths of containers that are gone have gone too: the kernel
    deletes them a moment after the namespace's last process (e.g. the `warm` run's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leased = {lease.get("veth") for net in leases(mc_root).values() for lease in net.values()}
        if set(veths()) <= leased:
            break
        time.sleep(0.05)
    return host_state(mc_root)


def fetch(url: str, timeout: float = 10.0) -> str:
    """GET url, retrying until the server in the container listens (test_network's helper)."""
    return fetch_until(url, timeout)


def ip_of(mc, name: str) -> str:
    return mc("inspect", "-f", "{{.NetworkSettings.ip}}", name, check=True).stdout.strip()


@pytest.fixture
def on_bridge(detached):
    """on_bridge(name, *run_args) → ID: `run -d --net bridge` (the detached fixture removes it)."""
    def start(name, *args, net="bridge"):
        return detached("--net", net, *args, name=name)
    return start


@pytest.fixture
def warm(mc):
    """The default network's bridge and NAT table exist (made by the first container, kept)."""
    mc("run", "--rm", "busybox", "true", check=True)


@pytest.fixture
def other_machine():
    """test_network.another_machine, joined to the session's own "host" namespace."""
    with another_machine("uplink-t") as run:
        yield run
    until(lambda: "uplink-t" not in links(), what="the other machine's cable gone")


# ── the modes ─────────────────────────────────────────────────────────────────────────────

def test_bridge_is_the_default_and_containers_ping_each_other_by_name(mc, mc_root, on_bridge):
    on_bridge("net-a", "busybox", "sleep", "60")
    on_bridge("net-b", "busybox", "sleep", "60")
    a, b = ip_of(mc, "net-a"), ip_of(mc, "net-b")
    assert a != b and {a, b} <= set(map(str, ipaddress.ip_network("10.201.0.0/16")))
    assert mc("exec", "net-a", "ping", "-c1", "-W3", "net-b", check=True).returncode == 0
    assert mc("exec", "net-b", "ping", "-c1", "-W3", "net-a", check=True).returncode == 0
    hosts = mc("exec", "net-a", "cat", "/etc/hosts", check=True).stdout     # a started first: kept current
    assert f"{a}\tnet-a" in hosts and f"{b}\tnet-b" in hosts
    # one hosts file for the network (a start writes one file, not N), bound read-only:
    # a container cannot rewrite its neighbours' names
    ids = [mc("inspect", "--format", "{{.Id}}", n, check=True).stdout.strip() for n in ("net-a", "net-b")]
    assert {os.path.realpath(mc_root / "containers" / i / "hosts") for i in ids} \
        == {str(mc_root / "networks" / "bridge" / "hosts")}
    p = mc("exec", "net-a", "sh", "-c", "echo 6.6.6.6 net-b >> /etc/hosts")
    assert p.returncode != 0 and "Read-only" in p.stderr, p.stderr
    inside = mc("exec", "net-a", "ip", "-o", "-4", "addr", "show", "eth0", check=True).stdout
    assert f"inet {a}/16" in inside
    assert "default via 10.201.0.1 dev eth0" in mc("exec", "net-a", "ip", "route", check=True).stdout
    from minicontainer.network.hosts import resolv_conf_text
    assert mc("exec", "net-a", "cat", "/etc/resolv.conf", check=True).stdout == resolv_conf_text()
    # without --net: bridge too (Docker's default)
    out = mc("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0", check=True).stdout
    assert "inet 10.201." in out
    # b goes: a's /etc/hosts forgets it (rewritten in place, seen through the bind mount)
    mc("rm", "-f", "net-b", check=True)
    until(lambda: "net-b" not in mc("exec", "net-a", "cat", "/etc/hosts", check=True).stdout,
          what="net-b gone from net-a's /etc/hosts")


def test_net_none_has_only_lo(mc):
    out = mc("run", "--rm", "--net", "none", "busybox", "ip", "-o", "link", check=True).stdout
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    assert "state UNKNOWN" in out or "UP" in out                       # and it is up


def test_net_host_sees_the_hosts_interfaces(mc, warm):
    out = mc("run", "--rm", "--net", "host", "busybox", "ip", "-o", "link", check=True).stdout
    assert "mc0" in out


def test_net_container_shares_the_interface(mc, mc_root, on_bridge):
    on_bridge("net-pod", "busybox", "sh", "-c", "echo from-pod | nc -l -p 7000; sleep 60")
    ip = ip_of(mc, "net-pod")
    before = leases(mc_root)
    outside = mc("exec", "net-pod", "ip", "-o", "link", "show", "eth0", check=True).stdout
    joined = mc("run", "--rm", "--net", "container:net-pod", "busybox", "sh", "-c",
                "ip -o link show eth0; ip -o -4 addr show eth0; nc 127.0.0.1 7000", check=True).stdout
    link_line, addr_line, answer = joined.splitlines()[:3]
    assert link_line.split()[:2] == outside.split()[:2]                  # same ifindex, same eth0
    assert outside.split("link/ether")[1].split()[0] in link_line        # same MAC
    assert f"inet {ip}/16" in addr_line and answer == "from-pod"         # same address, same lo
    assert {n: list(held) for n, held in leases(mc_root).items()} == \
        {n: list(held) for n, held in before.items()}                    # no lease of its own
    # A joiner outlives net-pod: rm -f net-pod must delete its veth itself (the kernel would
    # only with the namespace, which the joiner keeps alive) — the lease noted the joiners.
    (veth,) = [lease["veth"] for lease in leases(mc_root)["bridge"].values() if lease["ip"] == ip]
    on_bridge("net-joiner", "busybox", "sleep", "60", net="container:net-pod")
    mc("rm", "-f", "net-pod", check=True)
    until(lambda: veth not in veths(), what="net-pod's veth deleted while net-joiner holds its netns")


def test_published_port_answers_the_host_and_another_machine(mc, mc_root, on_bridge, other_machine):
    on_bridge("net-web", "-p", "18080:80", "-p", "127.0.0.1:18081:80", "busybox", "sh", "-c", HTTPD)
    assert fetch("http://127.0.0.1:18080/").startswith("hello from")         # the host itself
    assert fetch("http://127.0.0.1:18081/").startswith("hello from")         # HOST_IP form
    got = other_machine("timeout", "5", BUSYBOX, "wget", "-qO-", "http://192.0.2.1:18080/").stdout
    assert got.startswith("hello from")                                      # another machine
    refused = other_machine("timeout", "3", BUSYBOX, "wget", "-qO-", "http://192.0.2.1:18081/", check=False)
    assert refused.returncode != 0                                           # 127.0.0.1 only
    # going out: the other machine has no route back to 10.201/16, MASQUERADE makes it work
    mc("exec", "net-web", "ping", "-c1", "-W3", "192.0.2.2", check=True)
    assert 18080 not in listening_ports()                                    # DNAT, no proxy


def test_publish_all_maps_exposed_ports_to_random_host_ports(mc, mc_root, on_bridge, tmp_path):
    """-P publishes the image's EXPOSE and every --expose on ports the kernel picks; `-p 80`
    does so for one port; `port` and `ps` show them, and the traffic really arrives."""
    (tmp_path / "Containerfile").write_text("FROM busybox\nEXPOSE 80\n")
    mc("build", "-t", "net-exposing", str(tmp_path), check=True)
    try:
        on_bridge("net-pall", "-P", "--expose", "7000-7001/udp", "-p", "127.0.0.1::81",
                  "net-exposing", "sh", "-c", HTTPD)
        lines = mc("port", "net-pall", check=True).stdout.splitlines()
        ports = dict(line.split(" -> ") for line in lines)
        assert sorted(ports) == ["7000/udp", "7001/udp", "80/tcp", "81/tcp"]
        assert ports["81/tcp"].startswith("127.0.0.1:") and ports["80/tcp"].startswith("0.0.0.0:")
        numbers = {int(v.rsplit(":", 1)[1]) for v in ports.values()}
        assert len(numbers) == 4 and all(1024 < n < 65536 for n in numbers)
        http = ports["80/tcp"].rsplit(":", 1)[1]
        assert fetch(f"http://127.0.0.1:{http}/").startswith("hello from")
        row = mc("ps", "--format", "{{.Ports}}", "--filter", "name=^net-pall$", check=True).stdout
        assert f"0.0.0.0:{http}->80/tcp" in row
        config = json.loads(mc("inspect", "net-pall", check=True).stdout)[0]["Config"]
        assert config["expose"] == ["80/tcp", "7000-7001/udp"] and config["publish_all"]
    finally:
        mc("rm", "-f", "net-pall")
        mc("image", "rm", "net-exposing")


def test_user_network(mc, mc_root, on_bridge, warm):
    assert mc("network", "create", "net-u", "--subnet", "10.203.0.0/24", check=True).stdout == "net-u\n"
    on_bridge("net-u1", "busybox", "sleep", "60", net="net-u")
    on_bridge("net-u2", "busybox", "sleep", "60", net="net-u")
    on_bridge("net-other", "busybox", "sleep", "60")                          # on the default one
    u1, u2 = ip_of(mc, "net-u1"), ip_of(mc, "net-u2")
    assert {u1, u2} == {"10.203.0.2", "10.203.0.3"}
    mc("exec", "net-u1", "ping", "-c1", "-W3", "net-u2", check=True)
    hosts = mc("exec", "net-u1", "cat", "/etc/hosts", check=True).stdout
    assert "net-other" not in hosts                                          # one network's names
    assert "mc-net-u" in links()
    table = mc("network", "ls", check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS"]
    assert next(l for l in table if l.startswith("net-u ")).split() == \
        ["net-u", "mc-net-u", "10.203.0.0/24", "10.203.0.1", "2"]
    (info,) = json.loads(mc("network", "inspect", "net-u", check=True).stdout)
    assert info["kernel"]["present"] and info["kernel"]["addresses"] == ["10.203.0.1/24"]
    by_name = {c["names"][0]: c for c in info["containers"].values()}
    assert {n: c["ip"] for n, c in by_name.items()} == {"net-u1": u1, "net-u2": u2}
    assert sorted(info["kernel"]["ports"]) == sorted(c["veth"] for c in by_name.values())
    assert by_name["net-u1"]["inside"]["addresses"] == [f"{u1}/24"]       # eth0, read in its netns
    p = mc("network", "rm", "net-u")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1
    assert "in use by 2 container(s): net-u1 net-u2" in p.stderr
    mc("rm", "-f", "net-u1", "net-u2", check=True)
    assert mc("network", "rm", "net-u", check=True).stdout == "net-u\n"
    assert "mc-net-u" not in links() and "minicontainer-mc-net-u" not in ruleset()
    assert "net-u" not in mc("network", "ls", "-q", check=True).stdout.split()


@pytest.mark.parametrize("args, words", [
    (["network", "create", "bridge"], "already exists"),
    (["network", "create", "none"], "network name 'none'"),
    (["network", "create", "net-bad", "--subnet", "10.0.0.1/24"], "host bits"),
    (["network", "create", "net-bad", "--subnet", "10.201.7.0/24"], "overlaps network 'bridge'"),
    (["network", "rm", "bridge"], "cannot be removed"),
    (["network", "rm", "net-nosuch"], "not found"),
    (["network", "inspect", "net-nosuch"], "not found"),
    (["network", "ls", "--format", "xml"], "table or json"),
])
def test_network_verbs_refuse_bad_input(mc, mc_root, args, words):
    before = sorted(os.listdir(mc_root / "networks")) if (mc_root / "networks").exists() else []
    p = mc(*args)
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(mc_root / "networks")) == before


# ── nothing left ──────────────────────────────────────────────────────────────────────────

def test_nothing_left_after_stop_and_rm(mc, mc_root, warm):
    before = baseline(mc_root)
    mc("run", "-d", "--name", "net-gone", "-p", "18082:80", "-p", "127.0.0.1:18083:53/udp",
       "busybox", "sleep", "60", check=True)
    during = host_state(mc_root)
    veth = record(mc_root, "net-gone").network["veth"]
    assert veth in during["links"] and "18082" in during["ruleset"] and during["leases"]["bridge"]
    mc("stop", "-t", "1", "net-gone", check=True)
    mc("rm", "net-gone", check=True)
    assert settled(mc_root, before) == before
    # --rm, in the foreground, with a port
    mc("run", "--rm", "-p", "18084:80", "busybox", "true", check=True)
    assert settled(mc_root, before) == before


@pytest.mark.parametrize("args, words", [
    (["-p", "80:"], "is not a port number"),
    (["-P", "--expose", "80-70"], "invalid --expose"),
    (["-p", "18085:80/sctp"], "unknown protocol"),
    (["-p", "192.0.2.77:18085:80"], "EADDRNOTAVAIL"),
    (["-p", "18085:80", "-p", "18085:81"], "already published"),
    (["--net", "none", "-p", "18085:80"], "-p needs a bridge network"),
    (["--net", "foo:bar"], "--net foo:bar"),
    (["--net", "net-nosuch"], "network 'net-nosuch' not found"),
    (["--net", "container:"], "needs the name"),
    (["--net", "container:net-nosuch"], "no such container"),
])
def test_bad_publish_and_net_values(mc, mc_root, warm, args, words):
    before = baseline(mc_root)
    before_ids = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "--rm", *args, "busybox", "true")
    assert p.returncode == 125 and words in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(mc_root / "containers")) == before_ids
    assert host_state(mc_root) == before


def test_port_in_use_on_the_host_is_refused(mc, mc_root, warm):
    before = baseline(mc_root)
    with socket.socket() as listener:                    # a host program owns the port
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 18086))
        listener.listen()
        p = mc("run", "--rm", "-p", "18086:80", "busybox", "true")
    assert p.returncode == 125 and "EADDRINUSE" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert host_state(mc_root) == before


def test_twenty_parallel_starts_get_twenty_addresses(mc, mc_root, warm):
    names = [f"net-par{i}" for i in range(20)]
    before = baseline(mc_root)
    try:
        with ThreadPoolExecutor(20) as pool:
            runs = list(pool.map(lambda n: mc("run", "-d", "--name", n, "busybox", "sleep", "60",
                                              timeout=120), names))
        assert [p.returncode for p in runs] == [0] * 20, [p.stderr for p in runs if p.returncode]
        (info,) = json.loads(mc("network", "inspect", "bridge", check=True).stdout)
        ours = {c["names"][0]: c for c in info["containers"].values() if c["names"][0] in names}
        assert len(ours) == 20 and len({c["ip"] for c in ours.values()}) == 20
        for c in ours.values():                           # the kernel agrees with the leases
            assert c["inside"]["addresses"] == [f"{c['ip']}/16"] and c["veth_on_bridge"]
        hosts = mc("exec", "net-par0", "cat", "/etc/hosts", check=True).stdout
        assert all(f"{c['ip']}\t{n}" in hosts for n, c in ours.items())   # everyone sees everyone
    finally:
        mc("rm", "-f", *names, timeout=120)
    assert settled(mc_root, before) == before


# ── --explain and gc ──────────────────────────────────────────────────────────────────────

def test_explain_shows_the_netlink_and_nft_work(mc, mc_root):
    mc("network", "create", "net-ex", check=True)
    try:
        err = mc("run", "--rm", "--explain", "--net", "net-ex", "-p", "18087:80", "busybox", "true",
                 check=True).stderr
        commands = [line.strip()[2:].split("    # ")[0] for line in err.splitlines()
                    if line.strip().startswith("$ ")]
        (info,) = json.loads(mc("network", "inspect", "net-ex", check=True).stdout)
        bridge, gateway, subnet = info["bridge"], info["gateway"], info["subnet"]
        prefix = subnet.split("/")[1]
        assert any(c.startswith(f"ip link add {bridge} address 02:") and c.endswith("type bridge")
                   for c in commands)
        assert f"ip addr add {gateway}/{prefix} dev {bridge}" in " ".join(commands)
        assert any(re.match(rf"ip link add mc[0-9a-f]{{12}} master {bridge} up type veth peer name eth0", c)
                   for c in commands)
        assert any(re.match(rf"nsenter -t \d+ -n ip addr add [\d.]+/{prefix} dev eth0", c) for c in commands)
        if info["firewall"] == "nft":
            assert any(c.startswith(f"nft add rule ip minicontainer-{bridge} postrouting ip saddr {subnet}")
                       for c in commands)
            assert any(c.startswith(f"nft add element ip minicontainer-{bridge} ports {{ tcp . 18087 : ")
                       for c in commands)
        else:
            assert any(c.startswith("iptables -t nat -A") for c in commands)
    finally:
        mc("network", "rm", "net-ex", check=True)


def test_gc_removes_leftover_veths_and_bridges(mc, mc_root, warm):
    """What no lease accounts for: a veth on mc0 whose container side has no process left (its
    namespace kept only by an open fd), and a bridge we made that no network defines. A veth
    whose container side still has a process (another --root's container?) is kept."""
    from minicontainer.network.bridge import bridge_mac, format_mac
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    alive = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    until(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net")
          and os.readlink(f"/proc/{alive.pid}/ns/net") != os.readlink("/proc/self/ns/net"), what="unshare")
    fd = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY)
    try:
        sh("ip", "link", "add", "mcdead00000001", "master", "mc0", "type", "veth", "peer", "name", "eth0",
           "netns", holder.pid)
        sh("ip", "link", "add", "mcbeef00000001", "master", "mc0", "type", "veth", "peer", "name", "eth0",
           "netns", alive.pid)
        sh("ip", "link", "add", "mc-gcgone", "address", format_mac(bridge_mac("mc-gcgone")), "type", "bridge")
        sh("ip", "link", "add", "mc-notours", "type", "bridge")               # not our MAC: not ours
        holder.kill()
        holder.wait()                                   # its namespace lives on, held by `fd`
        listed = mc("gc", "--dry-run", check=True).stdout
        assert "would remove veth mcdead00000001" in listed and "would remove bridge mc-gcgone" in listed
        assert "mcdead00000001" in links()
        report = mc("gc", check=True).stdout
        assert "removed veth mcdead00000001 (on mc0: no lease" in report
        assert "removed bridge mc-gcgone" in report
        assert "skipped veth mcbeef00000001" in report
        now = links()
        assert "mcdead00000001" not in now and "mc-gcgone" not in now
        assert "mcbeef00000001" in now and "mc-notours" in now and "mc0" in now
    finally:
        os.close(fd)
        alive.kill()
        alive.wait()
        for name in ("mcdead00000001", "mcbeef00000001", "mc-gcgone", "mc-notours"):
            sh("ip", "link", "del", name, check=False)


def test_the_start_path_does_not_import_pyroute2(mc_root, warm):
    """pyroute2's import alone (~100 ms here) would be three times the bridge's 30 ms budget:
    a bridge start with a published port speaks netlink itself (network/netlink.py)."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "minicontainer", "--root", str(mc_root),
                        "run", "--rm", "-p", "18088:80", "busybox", "true"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "minicontainer.network.netlink" in p.stderr and "pyroute2" not in p.stderr


# ── several state roots, and addresses that come back (issue 20) ─────────────────────────────

@pytest.fixture
def other_root(tmp_path, busybox_tar):
    """other_root(*args) → CompletedProcess: the CLI with a second state root (as `--root`, a
    test's or a lab checker's root make one), on the same host and so the same mc0."""
    from minicontainer.api import image_store
    root = tmp_path / "root-b"
    image_store(root).import_archive(busybox_tar, "busybox")
    started = []

    def run(*args):
        if args[:2] == ("run", "-d"):
            started.append(args[args.index("--name") + 1])
        return subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), *args],
                              capture_output=True, text=True, timeout=60, check=True)
    yield run
    for name in started:
        subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), "rm", "-f", name],
                       capture_output=True)


def test_two_state_roots_never_share_an_address(mc, on_bridge, other_root, warm):
    """Leases are per state root, the bridge is per host: the address comes from the bridge's one
    allocator (network/leases.py), whichever root asks — here both at once."""
    def start(i):
        if i % 2:
            on_bridge(f"net-ra{i}", "busybox", "sleep", "60")
            return ip_of(mc, f"net-ra{i}")
        other_root("run", "-d", "--name", f"net-rb{i}", "busybox", "sleep", "60")
        return other_root("inspect", "-f", "{{.NetworkSettings.ip}}", f"net-rb{i}").stdout.strip()
    with ThreadPoolExecutor(4) as pool:
        ips = list(pool.map(start, range(6)))
    assert len(set(ips)) == 6, f"two containers got one address: {sorted(ips)}"
    answer = other_root("exec", "net-rb0", "ping", "-c1", "-W2", ips[1])     # root B's reaches root A's
    assert "1 packets received" in answer.stdout


def test_a_recreated_replica_answers_within_a_second(mc, on_bridge):
    """Replicas removed and started again, on a /29 so that addresses come back soon: the host
    must not send to the MAC of the container that had the address before (leases.py: addresses
    rest, and a gratuitous ARP updates whoever still caches one). Each request has 1 s."""
    mc("network", "create", "net-churn", "--subnet", "10.204.0.0/29", check=True)
    try:
        names = [f"net-churn{i}" for i in range(3)]
        for name in names:
            on_bridge(name, "busybox", "sh", "-c", HTTPD, net="net-churn")
        for name in names:
            assert answer_within_a_second(ip_of(mc, name)).startswith("hello from")
        seen = set()
        for round in range(3):
            for name in names:
                mc("rm", "-f", name, check=True)
                on_bridge(name, "busybox", "sh", "-c", HTTPD, net="net-churn")
                ip = ip_of(mc, name)
                seen.add(ip)
                assert answer_within_a_second(ip).startswith("hello from"), ip
        assert len(seen) == 5, f"the loop should reuse every address of the /29: {sorted(seen)}"
    finally:
        for name in names:
            mc("rm", "-f", name)
        mc("network", "rm", "net-churn")


def answer_within_a_second(ip: str) -> str:
    """GET http://IP/ — a refused connection (httpd not listening yet) is retried; a request
    that is not answered within 1 s (lost packets: a stale neighbour entry) fails the test."""
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=1) as reply:
                return reply.read().decode()
        except urllib.error.URLError as e:
            if isinstance(e.reason, ConnectionRefusedError) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            pytest.fail(f"http://{ip}/ did not answer within 1 s: {e.reason}")
        except TimeoutError:
            pytest.fail(f"http://{ip}/ did not answer within 1 s (a stale neighbour entry?)")
