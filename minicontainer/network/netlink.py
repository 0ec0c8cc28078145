"""rtnetlink: how `ip` talks to the kernel — a socket that carries binary request messages.

    man 7 netlink, man 7 rtnetlink, man 3 rtnetlink        shell: ip link / ip addr / ip route

Every `ip link add …` is one message written to an AF_NETLINK socket (protocol NETLINK_ROUTE):

    struct nlmsghdr  { u32 len; u16 type (RTM_NEWLINK…); u16 flags (REQUEST|ACK|CREATE…); u32 seq; u32 pid; }
    a fixed header   ifinfomsg (links) | ifaddrmsg (addresses) | rtmsg (routes)
    attributes       struct rtattr { u16 len; u16 type; } + value, padded to 4 bytes; may nest

and the kernel answers with an NLMSG_ERROR message whose error field is 0 (done) or -errno.

Why not pyroute2? pyroute2 is the complete library for this (NetNS, IPRoute, nftables…), and
the right choice for a bigger program. But importing it costs 150–400 ms, ten times our whole
budget for putting a container on a bridge; the few messages below cost well under 1 ms.
tests/test_network.py checks what this module builds with pyroute2, an independent decoder.
"""
from __future__ import annotations

import errno as _errno
import ipaddress
import os
import socket
import struct

from ..errors import NetworkError

# message types (linux/rtnetlink.h) and flags (linux/netlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400

# attribute types (linux/if_link.h, linux/if_addr.h, linux/rtnetlink.h, linux/veth.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_PROTINFO, IFLA_BRPORT_MODE, NLA_F_NESTED = 12, 4, 0x8000     # a bridge port's settings
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

NLMSGHDR = struct.Struct("=IHHII")        # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")      # family, (pad), type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")       # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")       # family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTATTR = struct.Struct("=HH")             # len, type


def attr(kind: int, value: bytes | str | int | list) -> bytes:
    """One rtattr: a str is NUL-terminated, an int is a u32, a list is nested attributes."""
    if isinstance(value, str):
        value = value.encode() + b"\0"
    elif isinstance(value, int):
        value = struct.pack("=I", value)
    elif isinstance(value, list):
        value = b"".join(value)
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


def ifinfo(index: int = 0, up: bool = False) -> bytes:
    """struct ifinfomsg: which link (0 = by name) and, with `up`, IFF_UP in flags and change."""
    flag = IFF_UP if up else 0
    return IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flag, flag)


class Netlink:
    """One NETLINK_ROUTE socket: in our network namespace, or in another one (netns.py)."""

    def __init__(self, sock: socket.socket | None = None):
        self.sock = sock or open_socket()
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ── the one primitive: send a request, read the kernel's answer ─────────────────────

    def request(self, msg_type: int, flags: int, body: bytes, shell: str) -> bytes:
        """Send one message with NLM_F_ACK; return the reply payload (or b"" for a plain ack).
        `shell` is the equivalent `ip …` command, used in the error message."""
        self.seq += 1
        header = NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type,
                               NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sock.send(header + body)
        payload = b""
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, _flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    break
                content = data[offset + NLMSGHDR.size: offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", content)[0]
                    if code:
                        raise netlink_error(shell, code)
                    return payload
                if kind == NLMSG_DONE:
                    return payload
                payload = content                        # e.g. the RTM_NEWLINK of a GETLINK

    # ── links ────────────────────────────────────────────────────────────────────────────

    def get_link(self, name: str) -> bytes | None:
        """RTM_GETLINK by name → the kernel's RTM_NEWLINK answer, or None if there is none."""
        try:
            return self.request(RTM_GETLINK, 0, ifinfo() + attr(IFLA_IFNAME, name),
                                f"ip link show {name}") or None
        except NetworkError as e:
            if getattr(e, "errno", None) == _errno.ENODEV:
                return None
            raise

    def link_index(self, name: str) -> int | None:
        """The interface index of NAME, or None if there is no such link."""
        reply = self.get_link(name)
        return IFINFOMSG.unpack_from(reply)[2] if reply else None

    def link_kind(self, name: str) -> str | None:
        """'veth', 'bridge', … (IFLA_LINKINFO → IFLA_INFO_KIND), '' for a plain device,
        None if there is no such link: `ip -d link show NAME` prints it."""
        reply = self.get_link(name)
        if reply is None:
            return None
        linkinfo = parse_attrs(reply[IFINFOMSG.size:]).get(IFLA_LINKINFO, b"")
        return parse_attrs(linkinfo).get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()

    def add_bridge(self, name: str, mac: bytes) -> None:
        """ip link add NAME address MAC type bridge (a fixed MAC: see bridge.py)."""
        linkinfo = attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "bridge")])
        body = ifinfo() + attr(IFLA_IFNAME, name) + attr(IFLA_ADDRESS, mac) + linkinfo
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body,
                     f"ip link add {name} type bridge")

    def add_veth(self, name: str, master: int, peer: str, peer_netns_fd: int, shell: str) -> None:
        """One message makes both ends: NAME here (enslaved to `master`, up) and PEER created
        directly inside the namespace of `peer_netns_fd` (down: bringing it up before the pair
        exists fails with ENOTCONN, so it is set up from inside, see veth.py)."""
        peer_msg = ifinfo() + attr(IFLA_IFNAME, peer) + attr(IFLA_NET_NS_FD, peer_netns_fd)
        linkinfo = attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "veth"),
                                        attr(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer_msg)])])
        body = ifinfo(up=True) + attr(IFLA_IFNAME, name) + attr(IFLA_MASTER, master) + linkinfo
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, shell)

    def set_up(self, index: int, shell: str) -> None:
        """ip link set DEV up: RTM_NEWLINK on an existing index with IFF_UP."""
        self.request(RTM_NEWLINK, 0, ifinfo(index, up=True), shell)

    def set_hairpin(self, index: int, shell: str) -> None:
        """bridge link set dev DEV hairpin on: RTM_SETLINK for the AF_BRIDGE family, the port's
        IFLA_PROTINFO (nested) with IFLA_BRPORT_MODE = 1 (a u8)."""
        protinfo = attr(IFLA_PROTINFO | NLA_F_NESTED, [attr(IFLA_BRPORT_MODE, b"\x01")])
        self.request(RTM_SETLINK, 0, IFINFOMSG.pack(socket.AF_BRIDGE, 0, index, 0, 0) + protinfo, shell)

    def delete_link(self, name: str) -> bool:
        """ip link del NAME; False if it was already gone (idempotent)."""
        try:
            self.request(RTM_DELLINK, 0, ifinfo() + attr(IFLA_IFNAME, name), f"ip link del {name}")
        except NetworkError as e:
            if getattr(e, "errno", None) == _errno.ENODEV:
                return False
            raise
        return True

    # ── addresses and routes ─────────────────────────────────────────────────────────────

    def add_address(self, index: int, address: str, prefixlen: int, shell: str) -> bool:
        """ip addr add ADDRESS/PREFIX dev DEV; False if it was already there."""
        packed = ipaddress.IPv4Address(address).packed
        body = (IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))
        try:
            self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, shell)
        except NetworkError as e:
            if getattr(e, "errno", None) == _errno.EEXIST:
                return False
            raise
        return True

    def add_default_route(self, gateway: str, index: int, shell: str) -> None:
        """ip route add default via GATEWAY dev DEV (dst_len 0 = 0.0.0.0/0)."""
        body = (RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed) + attr(RTA_OIF, index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, shell)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """The rtattrs of a message, {type: value} (the nested flag bit 0x8000 masked off)."""
    attrs, offset = {}, 0
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            break
        attrs[kind & 0x7FFF] = data[offset + RTATTR.size: offset + length]
        offset += (length + 3) & ~3
    return attrs


def open_socket() -> socket.socket:
    """socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE), bound so the kernel knows us."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def netlink_error(shell: str, code: int) -> NetworkError:
    """`ip link add mc0 type bridge`: EEXIST (File exists) — with .errno set for callers."""
    name = _errno.errorcode.get(code, str(code))
    err = NetworkError(f"netlink request `{shell}` failed: {name} ({os.strerror(code)})")
    err.errno = code
    return err
