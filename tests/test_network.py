"""Tests of minicontainer.network, in three kinds:

  parse     -p specs, --net values, subnets, hosts/resolv.conf text: pure Python.
  wire      the netlink messages we build, decoded by pyroute2 (an independent implementation)
            from bytes captured by a fake socket: checks the encoding, not the kernel.
  real      @pytest.mark.root: every test first moves the pytest thread into a *new, empty
            network namespace* (the test's "host", fixture `host_netns`) and returns it to the
            machine's namespace afterwards, so the machine's own network is never touched.
            "Containers" are busybox processes started with `unshare --net --mount`, attached
            exactly as the runtime does (plan → attach(pid) → detach). Traffic goes only to
            loopback or to addresses inside these namespaces; "another machine" is one more
            namespace joined to the test host by a veth pair.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from minicontainer.errors import ConfigError, NetworkError
from minicontainer.network import (NetworkMode, NetworkStore, PortMapping, join_container_netns,
                                   parse_network_mode, parse_publish)
from minicontainer.network import hosts, ipam, nat, netlink

BUSYBOX = shutil.which("busybox") or "/bin/busybox"   # (its `wget -T` segfaults: use timeout(1))
FIREWALLS = [name for name in ("nft", "iptables") if shutil.which(name)]
root = pytest.mark.root


# ================================================================================ parse
@pytest.mark.parametrize("spec, expected", [
    ("8080:80", PortMapping(8080, 80, "tcp", "")),
    ("127.0.0.1:8081:81/udp", PortMapping(8081, 81, "udp", "127.0.0.1")),
    ("0.0.0.0:53:53/UDP", PortMapping(53, 53, "udp", "")),
    ("65535:1/tcp", PortMapping(65535, 1, "tcp", "")),
    ("80", PortMapping(0, 80, "tcp", "")),                     # host port 0: the kernel picks one
    ("127.0.0.1::80/udp", PortMapping(0, 80, "udp", "127.0.0.1")),
])
def test_parse_publish_accepts(spec, expected):
    assert parse_publish([spec]) == [expected]


@pytest.mark.parametrize("spec, words", [
    ("8080:80/sctp", "unknown protocol"),
    ("0:80", "not a port number"),
    ("8080:70000", "not a port number"),
    ("x:80", "not a port number"),
    ("1.2.3:8080:80", "not an IPv4 address"),
    ("[::1]:8080:80", "only IPv4"),
    ("a:b:c:d", "only IPv4"),
    ("8080:", "not a port number"),
])
def test_parse_publish_rejects(spec, words):
    with pytest.raises(ConfigError, match=words) as err:
        parse_publish([spec])
    assert f"-p {spec}" in str(err.value)


def test_parse_publish_rejects_same_host_port_twice():
    with pytest.raises(ConfigError, match="already published by -p 8080:80"):
        parse_publish(["8080:80", "8080:81"])
    assert len(parse_publish(["8080:80", "8080:80/udp"])) == 2      # tcp and udp are different ports


def test_port_mapping_round_trips_through_json():
    port = PortMapping(8081, 81, "udp", "127.0.0.1")
    assert PortMapping.from_dict(json.loads(json.dumps(port.to_dict()))) == port
    assert str(port) == "127.0.0.1:8081->81/udp"


@pytest.mark.parametrize("value, mode", [
    (None, NetworkMode("bridge", "bridge")), ("bridge", NetworkMode("bridge", "bridge")),
    ("none", NetworkMode("none")), ("host", NetworkMode("host")),
    ("container:web", NetworkMode("container", "web")), ("mynet", NetworkMode("bridge", "mynet")),
])
def test_parse_network_mode(value, mode):
    assert parse_network_mode(value) == mode


@pytest.mark.parametrize("value", ["container:", "foo:bar"])
def test_parse_network_mode_rejects(value):
    with pytest.raises(ConfigError):
        parse_network_mode(value)


def test_allocator_skips_gateway_broadcast_held_and_resting(tmp_path, monkeypatch):
    from minicontainer.network import leases
    monkeypatch.setattr(leases, "ALLOCATOR_DIR", tmp_path / "bridges")
    net = ipaddress.IPv4Network("10.9.0.0/29")            # .0 net, .1 gw, .7 broadcast

    def take(cid):
        with leases.BridgeAllocator("t0", tmp_path) as alloc:
            ip = alloc.allocate(net, tmp_path / f"{cid}.json", cid)
        (tmp_path / f"{cid}.json").write_text(json.dumps({"ip": ip}))      # the caller's lease
        return ip
    assert [take(cid) for cid in "abcde"] == [f"10.9.0.{i}" for i in range(2, 7)]
    with pytest.raises(NetworkError, match="no free address"):
        take("f")
    with leases.BridgeAllocator("t0", tmp_path) as alloc:
        alloc.give_back("10.9.0.3", tmp_path / "b.json", "b")             # b's rests a while
    (tmp_path / "b.json").unlink()
    (tmp_path / "d.json").unlink()                        # d's lease gone (gc): free at once
    assert take("g") == "10.9.0.5"                        # a free address before a resting one
    assert take("h") == "10.9.0.3"                        # none free: the one resting longest


def test_prune_removes_an_older_versions_allocator_file_once_unused(tmp_path):
    from minicontainer.network import leases
    live, dead = tmp_path / "live-leases.json", tmp_path / "gone-leases.json"
    live.write_text(json.dumps({"c1": {"ip": "10.9.0.2"}}))
    for name, owner in (("mc0@c1.json", live), ("mc0@c2.json", dead)):
        (tmp_path / name).write_text(json.dumps(
            {"leases": {"10.9.0.2": {"leases": str(owner), "container": "c1"}}, "released": {}}))
        os.utime(tmp_path / name, (1, 1))                 # untouched for long
    leases.prune(tmp_path)
    assert (tmp_path / "mc0@c1.json").exists() and not (tmp_path / "mc0@c2.json").exists()


@pytest.mark.parametrize("text, words", [("10.0.0.1/24", "host bits"), ("10.0.0.0/30", "too small"),
                                         ("banana", "IPv4 network")])
def test_parse_subnet_rejects(text, words):
    with pytest.raises(ConfigError, match=words):
        ipam.parse_subnet(text)


def test_hosts_text_lists_every_container():
    text = hosts.hosts_text([("10.1.0.2", ["web", "web", "w"]), ("10.1.0.3", ["db"])], "bridge")
    assert "127.0.0.1\tlocalhost\n" in text
    assert "10.1.0.2\tweb w\n" in text and "10.1.0.3\tdb\n" in text


def test_resolv_conf_drops_loopback_nameservers(tmp_path, monkeypatch):
    host = tmp_path / "resolv.conf"
    host.write_text("search example.org\nnameserver 127.0.0.53\n")
    upstream = tmp_path / "upstream.conf"
    monkeypatch.setattr(hosts, "HOST_RESOLV", host)
    monkeypatch.setattr(hosts, "RESOLVED_UPSTREAM", upstream)
    assert hosts.resolv_conf_text("host") == host.read_text()          # host mode reaches 127.0.0.53
    assert hosts.resolv_conf_text("bridge") == "search example.org\n"  # no upstream: dropped
    upstream.write_text("nameserver 192.0.2.53\n")
    assert hosts.resolv_conf_text("bridge") == "nameserver 192.0.2.53\n"
    host.write_text("nameserver 192.0.2.1\n")
    assert hosts.resolv_conf_text("bridge") == "nameserver 192.0.2.1\n"


def test_network_names_are_checked(tmp_path):
    store = NetworkStore(tmp_path)
    for bad in ("", "none", "host", "-x", "a/b", "x" * 65):
        with pytest.raises(ConfigError):
            store.create(bad, subnet="10.250.0.0/24")
    with pytest.raises(ConfigError, match="already exists"):
        store.create("bridge")
    with pytest.raises(ConfigError, match="cannot be removed"):
        store.remove("bridge")
    with pytest.raises(NetworkError, match="not found"):
        store.get("nosuch")


def test_create_picks_subnets_and_bridges(tmp_path, monkeypatch):
    monkeypatch.setattr(ipam, "overlapping_route", lambda net, except_dev="": None)  # any machine
    store = NetworkStore(tmp_path)
    a, b = store.create("front"), store.create("a-very-long-network-name")
    assert (a.bridge, a.subnet, a.gateway) == ("mc-front", "10.202.0.0/24", "10.202.0.1")
    assert b.bridge.startswith("mc-") and len(b.bridge) == 15 and b.subnet == "10.202.1.0/24"
    with pytest.raises(ConfigError, match="overlaps network 'front'"):
        store.create("c", subnet="10.202.0.0/25")
    with pytest.raises(ConfigError, match="overlaps network 'bridge'"):
        store.create("c", subnet="10.201.5.0/24")
    with pytest.raises(ConfigError, match="already used"):
        store.create("d", subnet="10.203.0.0/24", bridge="mc-front")
    assert [n["name"] for n in store.list()] == ["a-very-long-network-name", "bridge", "front"]


def test_import_is_light():
    """The CLI imports the package on every start: no pyroute2, no nft/netlink code."""
    code = ("import sys, minicontainer.network; "
            "print(sorted(m for m in sys.modules if 'pyroute2' in m or m.startswith("
            "('minicontainer.network.nat', 'minicontainer.network.netlink'))))")
    assert sh(sys.executable, "-c", code).stdout.strip() == "[]"


# ================================================================================ wire
class CaptureSocket:
    """A stand-in for the netlink socket: keeps what is sent, answers every request with an
    ack (NLMSG_ERROR, error 0). Only the encoding is under test here."""

    def __init__(self):
        self.sent: list[bytes] = []

    def send(self, data):
        self.sent.append(data)
        return len(data)

    def recv(self, _size):
        seq = netlink.NLMSGHDR.unpack_from(self.sent[-1])[3]
        body = b"\0" * 4 + self.sent[-1][:16]
        return netlink.NLMSGHDR.pack(16 + len(body), netlink.NLMSG_ERROR, 0, seq, 0) + body

    def close(self):
        pass


def test_veth_message_decodes_with_pyroute2():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    cap = CaptureSocket()
    netlink.Netlink(cap).add_veth("mc0123456789ab", 7, "eth0", 42, "ip link add …")
    msg = ifinfmsg(cap.sent[0])
    msg.decode()
    assert msg["header"]["type"] == netlink.RTM_NEWLINK
    assert msg["header"]["flags"] & (netlink.NLM_F_CREATE | netlink.NLM_F_EXCL | netlink.NLM_F_ACK)
    assert msg.get_attr("IFLA_IFNAME") == "mc0123456789ab"
    assert msg.get_attr("IFLA_MASTER") == 7
    assert msg["flags"] & netlink.IFF_UP and msg["change"] & netlink.IFF_UP
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer.get_attr("IFLA_IFNAME") == "eth0" and peer.get_attr("IFLA_NET_NS_FD") == 42


def test_address_and_route_messages_decode_with_pyroute2():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    cap = CaptureSocket()
    nl = netlink.Netlink(cap)
    nl.add_address(3, "10.201.0.2", 16, "ip addr add …")
    nl.add_default_route("10.201.0.1", 3, "ip route add …")
    addr = ifaddrmsg(cap.sent[0])
    addr.decode()
    assert (addr["index"], addr["prefixlen"], addr["family"]) == (3, 16, socket.AF_INET)
    assert addr.get_attr("IFA_LOCAL") == addr.get_attr("IFA_ADDRESS") == "10.201.0.2"
    route = rtmsg(cap.sent[1])
    route.decode()
    assert (route["dst_len"], route["table"]) == (0, 254)
    assert route.get_attr("RTA_GATEWAY") == "10.201.0.1" and route.get_attr("RTA_OIF") == 3


# ================================================================================ real
def sh(*argv, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=check, **kw)


@pytest.fixture
def host_netns():
    """Move this thread into a fresh network namespace (with lo up) for the test's duration.
    Everything the test starts — containers, nft, ip — inherits it; the machine's is untouched."""
    from minicontainer.kernel.namespaces import CLONE_NEWNET, setns, unshare
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    unshare(CLONE_NEWNET)
    try:
        sh("ip", "link", "set", "lo", "up")
        # a new netns copies ip_forward from the machine's: start from the kernel's default
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("0")
        yield
    finally:
        setns(saved, CLONE_NEWNET)
        os.close(saved)


@pytest.fixture(params=FIREWALLS or ["nft"])
def firewall(request):
    if not shutil.which(request.param):
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture
def store(tmp_path, host_netns, firewall):
    return NetworkStore(tmp_path / "networks", firewall=firewall)


class FakeContainer:
    """A busybox shell in new network and mount namespaces — what the runtime's setup child is
    when attach() is called. `hosts` is bind-mounted onto /etc/hosts once plan() has made it
    (a link to the network's shared file), as the runtime does (bind_hosts)."""

    def __init__(self, tmp_path: Path, cid: str, command: str = "read go"):
        self.cid = cid
        self.hosts = tmp_path / f"hosts-{cid[:8]}"
        script = f"echo ready; {command}"
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", BUSYBOX, "sh", "-c", script],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"   # unshare has happened
        self.pid = self.proc.pid

    def bind_hosts(self):
        sh("nsenter", "-t", str(self.pid), "-m", "mount", "--bind", str(self.hosts), "/etc/hosts")

    def run(self, *argv, check=True):
        """Run a command inside its network and mount namespaces (nsenter)."""
        return sh("nsenter", "-t", self.pid, "-n", "-m", *argv, check=check)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def containers(tmp_path):
    made: list[FakeContainer] = []

    def start(cid: str, command: str = "read go") -> FakeContainer:
        made.append(FakeContainer(tmp_path, cid, command))
        return made[-1]
    yield start
    for c in made:
        c.stop()


def cid(n: int) -> str:
    """A container ID whose 12-digit prefix (the veth's name) differs per n: 0101…, 0202…"""
    return f"{n:02x}" * 32


def run_in(store: NetworkStore, c: FakeContainer, name: str, ports=(), network: str = "bridge",
           explain=None) -> dict:
    """What the runtime does: plan (record saved) → attach to the waiting child."""
    net = store.get(network)
    record = net.plan(c.cid, name=name, hostname=name, ports=list(ports), hosts_path=c.hosts)
    c.bind_hosts()
    return net.attach(record, c.pid, explain=explain)


def links() -> list[str]:
    return [line.split()[0].split("@")[0] for line in sh("ip", "-br", "link").stdout.splitlines()]


def veths() -> list[str]:
    return [name for name in links() if name.startswith("mc") and len(name) == 14]


def veths_soon(expected: list[str], timeout: float = 5.0) -> list[str]:
    """veths(), once it equals `expected` or after `timeout`: a stopped container's veth is
    deleted by the kernel as it destroys the namespace, a few tens of ms later."""
    deadline = time.monotonic() + timeout
    while sorted(found := veths()) != sorted(expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def published_rules(store: NetworkStore, network: str = "bridge") -> str:
    """The port DNAT entries of a network, whichever backend wrote them."""
    bridge = store.get(network).bridge
    if store.firewall == "nft":
        out = sh("nft", "list", "table", "ip", f"minicontainer-{bridge}", check=False).stdout
        return "\n".join(line for line in out.splitlines() if " : " in line and "type " not in line)
    out = sh("iptables", "-w", "-t", "nat", "-S", f"MC-{bridge}-DNAT", check=False).stdout
    return "\n".join(line for line in out.splitlines() if "DNAT" in line and "-A" in line)


def fetch(url: str, timeout: float = 3.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def another_machine(link: str):
    """Another 'machine': a namespace joined to this one by a cable LINK (192.0.2.1) ↔ its eth0
    (192.0.2.2, TEST-NET-1), with no route to the containers' subnets — it sees only the
    host's address. Yields run(*argv) inside it; killing its process removes the cable."""
    proc = subprocess.Popen(["unshare", "--net", BUSYBOX, "sh", "-c", "echo ready; read x"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    try:
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", proc.pid)
        sh("ip", "addr", "add", "192.0.2.1/24", "dev", link)
        sh("ip", "link", "set", link, "up")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "addr", "add", "192.0.2.2/24", "dev", "eth0"]):
            sh("nsenter", "-t", proc.pid, "-n", *cmd)

        def run(*argv, check=True):
            return sh("nsenter", "-t", proc.pid, "-n", *argv, check=check)
        yield run
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def other_machine(host_netns):
    with another_machine("uplink") as run:
        yield run


@root
def test_two_containers_ping_each_other_by_address_and_name(store, containers):
    web, db = containers(cid(1)), containers(cid(2))
    a, b = run_in(store, web, "web"), run_in(store, db, "db")
    assert a["ip"] != b["ip"]
    assert {a["ip"], b["ip"]} <= set(map(str, ipaddress.ip_network(store.get().subnet)))
    db.run(BUSYBOX, "ping", "-c1", "-W2", a["ip"])
    web.run(BUSYBOX, "ping", "-c1", "-W2", "db")               # by name, through /etc/hosts
    db.run(BUSYBOX, "ping", "-c1", "-W2", "web")               # web's hosts file was rewritten
    db.run(BUSYBOX, "ping", "-c1", "-W2", a["gateway"])        # and the host, on the bridge
    assert db.run("cat", "/etc/hosts").stdout == web.run("cat", "/etc/hosts").stdout
    # inside: lo and eth0 only, eth0 with the leased address, a default route via the gateway
    assert [l.split()[0].split("@")[0] for l in db.run("ip", "-br", "link").stdout.splitlines()] \
        == ["lo", "eth0"]
    assert f"inet {b['ip']}/16" in db.run("ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f"default via {a['gateway']} dev eth0" in db.run("ip", "route").stdout


@root
def test_kernel_objects_seen_by_pyroute2(store, containers):
    """pyroute2's IPRoute (an independent netlink implementation) reads back what we made."""
    from pyroute2 import IPRoute
    record = run_in(store, containers(cid(1)), "web")
    with IPRoute() as ipr:
        bridge = ipr.link_lookup(ifname="mc0")[0]
        (veth,) = ipr.get_links(ipr.link_lookup(ifname=record["veth"])[0])
        assert veth.get_attr("IFLA_MASTER") == bridge
        assert veth.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "veth"
        addrs = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=bridge)]
        assert record["gateway"] in addrs
        (mc0,) = ipr.get_links(bridge)
        assert mc0.get_attr("IFLA_ADDRESS").startswith("02:")      # our fixed MAC


@root
def test_published_port_answers_on_localhost_and_from_another_machine(store, containers, tmp_path,
                                                                      other_machine):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    web = containers(cid(1), f"exec {BUSYBOX} httpd -f -p 80 -h {www}")
    record = run_in(store, web, "web", parse_publish(["8080:80", "127.0.0.1:8081:80"]))
    assert fetch("http://127.0.0.1:8080/") == "hello from the container\n"        # host, output DNAT
    assert fetch("http://127.0.0.1:8081/") == "hello from the container\n"        # host_ip form
    assert fetch(f"http://{record['gateway']}:8080/") == "hello from the container\n"
    got = other_machine("timeout", "3", BUSYBOX, "wget", "-qO-", "http://192.0.2.1:8080/").stdout
    assert got == "hello from the container\n"                                    # prerouting DNAT
    refused = other_machine("timeout", "2", BUSYBOX, "wget", "-qO-", "http://192.0.2.1:8081/", check=False)
    assert refused.returncode != 0                       # 8081 is published on 127.0.0.1 only
    # outbound: the container reaches the other machine, which has no route back to the
    # container's subnet: this works only because of MASQUERADE
    web.run(BUSYBOX, "ping", "-c1", "-W2", "192.0.2.2")


@root
def test_container_to_published_port_of_another_container(store, containers, tmp_path):
    """Hairpin: a container uses the host's address and published port to reach another one."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hairpin\n")
    web = containers(cid(1), f"exec {BUSYBOX} httpd -f -p 80 -h {www}")
    record = run_in(store, web, "web", parse_publish(["8080:80"]))
    client = containers(cid(2))
    run_in(store, client, "client")
    fetch("http://127.0.0.1:8080/")                      # wait until httpd listens
    got = client.run("timeout", "3", BUSYBOX, "wget", "-qO-", f"http://{record['gateway']}:8080/").stdout
    assert got == "hairpin\n"


UDP_ECHO = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.bind(('0.0.0.0', 53)); data, peer = s.recvfrom(100); s.sendto(b'echo ' + data, peer)")


@root
def test_udp_port_is_published(store, containers):
    echo = containers(cid(1), f"exec {sys.executable} -c \"{UDP_ECHO}\"")
    run_in(store, echo, "dns", parse_publish(["127.0.0.1:5353:53/udp"]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(25):                              # until the server has bound its port
            s.sendto(b"ping", ("127.0.0.1", 5353))
            try:
                assert s.recvfrom(100)[0] == b"echo ping"
                break
            except socket.timeout:
                continue
        else:
            pytest.fail("no UDP answer from the container on 127.0.0.1:5353")


@root
def test_detach_leaves_no_veth_address_rule_or_lease(store, containers):
    web, db = containers(cid(1)), containers(cid(2))
    net = store.get()
    a = run_in(store, web, "web", parse_publish(["8080:80", "127.0.0.1:8081:81/udp"]))
    b = run_in(store, db, "db")
    assert sorted(veths()) == sorted([a["veth"], b["veth"]])
    assert published_rules(store).count(a["ip"]) == 2
    web.stop()                                           # the container exits first …
    store.detach(a)                                      # … then the runtime detaches
    store.detach(a)                                      # idempotent
    assert veths_soon([b["veth"]]) == [b["veth"]]
    assert published_rules(store) == ""
    assert list(net.leases()) == [db.cid]
    assert "web" not in db.hosts.read_text()             # db's /etc/hosts forgot web
    assert "db" in db.hosts.read_text()
    store.detach(b)                                      # still running: detach unplugs it
    assert veths() == [] and net.leases() == {}
    assert db.run("ip", "-br", "link").stdout.split()[0] == "lo"   # eth0 went with its veth
    db.stop()
    # the addresses rest (leases.py: no stale neighbour entry): the next container gets another
    c = containers(cid(3))
    assert run_in(store, c, "c")["ip"] not in (a["ip"], b["ip"])


@root
def test_port_conflicts_are_refused_before_anything_exists(store, containers):
    net = store.get()
    run_in(store, containers(cid(1)), "web", parse_publish(["8080:80"]))
    with pytest.raises(NetworkError, match="already published by container"):
        net.plan(cid(2), name="two", ports=parse_publish(["127.0.0.1:8080:81"]))
    with socket.socket() as listener:                    # a host program owns port 9090
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 9090))
        listener.listen()
        with pytest.raises(NetworkError, match="EADDRINUSE"):
            net.plan(cid(2), name="two", ports=parse_publish(["9090:80"]))
    with pytest.raises(NetworkError, match="EADDRNOTAVAIL"):
        net.plan(cid(2), name="two", ports=parse_publish(["192.0.2.99:9091:80"]))
    assert list(net.leases()) == [cid(1)]


@root
def test_failed_attach_undoes_itself(store, containers):
    net = store.get()
    c = containers(cid(1))
    record = net.plan(c.cid, name="web", ports=parse_publish(["8080:80"]), hosts_path=c.hosts)
    sh("ip", "link", "add", record["veth"], "type", "bridge")    # the veth name is taken
    with pytest.raises(NetworkError, match="EEXIST"):
        net.attach(record, c.pid)
    assert net.leases() == {} and published_rules(store) == ""
    sh("ip", "link", "del", record["veth"])
    with pytest.raises(NetworkError, match="host's network namespace"):
        net.attach(net.plan(cid(2), name="x"), os.getpid())     # never attach the host itself


@root
def test_container_netns_is_shared(store, containers, tmp_path):
    """--net container:NAME: a second process joins the first one's namespace with setns and
    sees the same eth0, address and localhost ports (what the runtime's setup child does)."""
    web = containers(cid(1), f"exec {BUSYBOX} nc -l -p 7000 -e echo from-web")
    record = run_in(store, web, "web")
    fd = join_container_netns(web.pid)
    code = ("import os, sys; from minicontainer.network import enter_netns; "
            f"enter_netns({fd}); os.execvp(sys.argv[1], sys.argv[1:])")
    try:
        def joined(*argv):
            return sh(sys.executable, "-c", code, *argv, pass_fds=(fd,)).stdout
        assert f"inet {record['ip']}/16" in joined("ip", "-4", "-o", "addr", "show", "eth0")
        assert joined("ip", "-o", "link", "show", "eth0").split(":")[0] == \
            web.run("ip", "-o", "link", "show", "eth0").stdout.split(":")[0]   # same ifindex
        deadline = time.monotonic() + 3
        while "from-web" not in (got := joined(BUSYBOX, "nc", "127.0.0.1", "7000")) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "from-web" in got                     # web's 127.0.0.1:7000 is ours too
    finally:
        os.close(fd)


@root
def test_explain_shows_the_shell_equivalents(store, containers):
    lines: list[str] = []
    c = containers(cid(1))
    run_in(store, c, "web", parse_publish(["8080:80"]), explain=lambda shell, why: lines.append(shell))
    text = "\n".join(lines)
    assert "ip link add mc0 address 02:" in text and "type bridge" in text
    assert "ip addr add 10.201.0.1/16 dev mc0" in text
    assert f"type veth peer name eth0 netns {c.pid}" in text
    assert f"nsenter -t {c.pid} -n ip addr add 10.201.0.2/16 dev eth0" in text
    assert "sysctl -w net.ipv4.ip_forward=1" in text
    if store.firewall == "nft":
        assert "nft add rule ip minicontainer-mc0 postrouting ip saddr 10.201.0.0/16" in text
        assert "nft add element ip minicontainer-mc0 ports { tcp . 8080 : 10.201.0.2 . 80 }" in text
    else:
        assert "iptables -t nat -A MC-mc0-POST -s 10.201.0.0/16 ! -o mc0 -j MASQUERADE" in text
    lines.clear()
    run_in(store, containers(cid(2)), "db", explain=lambda shell, why: lines.append(shell))
    assert not any("type bridge" in line or "nft add rule" in line or "iptables" in line
                   for line in lines)               # the bridge and NAT are made once


@root
def test_twenty_parallel_starts_get_twenty_addresses(store, containers):
    """20 processes (not threads) plan+attach at once; the flock keeps IPAM consistent."""
    started = [containers(cid(n)) for n in range(1, 21)]
    pipes = []
    for c in started:
        r, w = os.pipe()
        if os.fork() == 0:                                   # a separate `minicontainer run`
            os.close(r)
            try:
                s = NetworkStore(store.root, firewall=store.firewall)
                rec = run_in(s, c, f"c{c.cid[-2:]}")
                os.write(w, rec["ip"].encode())
                os._exit(0)
            except BaseException as e:                       # report, never return into pytest
                os.write(w, f"error {e!r}".encode())
                os._exit(1)
        os.close(w)
        pipes.append(r)
    answers = []
    for r in pipes:
        with os.fdopen(r) as f:
            answers.append(f.read())
    for _ in pipes:
        os.wait()
    assert not [a for a in answers if a.startswith("error")], answers
    assert len(set(answers)) == 20
    net = store.get()
    assert sorted(lease["ip"] for lease in net.leases().values()) == sorted(answers)
    assert len(veths()) == 20
    hosts_text = started[0].hosts.read_text()
    assert all(f"{ip}\t" in hosts_text for ip in answers)    # everyone sees everyone
    for c in started:
        c.stop()
    assert sorted(store.cleanup_orphans([])) == sorted(c.cid for c in started)
    assert net.leases() == {} and veths_soon([]) == []
    net.down()                                               # the bridge and its rules too
    assert "mc0" not in links() and published_rules(store) == ""


@root
def test_user_network_create_inspect_rm(store, containers):
    net = store.create("backend", subnet="10.203.0.0/24")
    c = containers(cid(1))
    record = run_in(store, c, "api", network="backend")
    assert record["ip"] == "10.203.0.2" and record["bridge"] == "mc-backend"
    info = store.inspect("backend")
    assert info["bridge_present"] and info["containers"][c.cid]["ip"] == "10.203.0.2"
    assert {n["name"]: n["containers"] for n in store.list()} == {"backend": 1, "bridge": 0}
    with pytest.raises(NetworkError, match="in use"):
        store.remove("backend")
    c.stop()
    store.detach(record)
    store.remove("backend")
    assert "mc-backend" not in links()
    if store.firewall == "nft":
        assert "minicontainer-mc-backend" not in sh("nft", "list", "tables").stdout
    else:
        assert "MC-mc-backend" not in sh("iptables-save").stdout
    assert [n["name"] for n in store.list()] == ["bridge"]
    assert net.name == "backend"


@root
def test_flushed_ruleset_is_rebuilt_on_next_publish(store, containers, tmp_path):
    if store.firewall != "nft":
        pytest.skip("the repair path is the same for both backends; nft makes flushing easy")
    run_in(store, containers(cid(1)), "one")
    sh("nft", "flush", "ruleset")                            # e.g. `systemctl restart nftables`
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("back\n")
    web = containers(cid(2), f"exec {BUSYBOX} httpd -f -p 80 -h {www}")
    run_in(store, web, "web", parse_publish(["8080:80"]))
    assert fetch("http://127.0.0.1:8080/") == "back\n"


def test_firewall_choice_can_be_forced(monkeypatch):
    monkeypatch.setenv(nat.FIREWALL_ENV, "pf")
    with pytest.raises(NetworkError, match="use 'nft' or 'iptables'"):
        nat.choose_firewall()
    monkeypatch.setenv(nat.FIREWALL_ENV, FIREWALLS[0] if FIREWALLS else "nft")
    if FIREWALLS:
        assert nat.choose_firewall() == FIREWALLS[0]


@root
@pytest.mark.skipif(not shutil.which("iptables"), reason="iptables is not installed")
def test_docker_style_forward_drop_uses_iptables(tmp_path, host_netns, containers, other_machine):
    """A host whose iptables FORWARD policy is DROP (Docker sets it): only an ACCEPT in that
    chain lets containers out, so the iptables backend is chosen — and outbound works."""
    sh("iptables", "-w", "-P", "FORWARD", "DROP")           # in the test's namespace only
    assert nat.choose_firewall() == "iptables"
    store = NetworkStore(tmp_path / "networks")              # nothing forced
    c = containers(cid(1))
    run_in(store, c, "c")
    assert store.get().data["firewall"] == "iptables"
    c.run(BUSYBOX, "ping", "-c1", "-W2", "192.0.2.2")        # forwarded despite the DROP policy


@root
def test_subnet_overlapping_a_host_route_is_refused(store, containers):
    """Like Docker: never create a bridge whose subnet the host already routes elsewhere."""
    sh("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
    sh("ip", "addr", "add", "10.201.5.1/24", "dev", "lan0")
    sh("ip", "link", "set", "lan0", "up")                   # a connected route 10.201.5.0/24
    net = store.get()
    c = containers(cid(1))
    with pytest.raises(NetworkError, match=r"overlaps the host route 10\.201\.5\.0/24 dev lan0"):
        net.attach(net.plan(c.cid, name="c", hosts_path=c.hosts), c.pid)
    assert net.leases() == {} and "mc0" not in links() and veths() == []
