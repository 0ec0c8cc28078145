"""Bring a network interface up with one ioctl, as `ip link set lo up` does.

    man 7 netdevice (SIOCGIFFLAGS / SIOCSIFFLAGS)      shell: ip link set lo up

A new network namespace has exactly one interface, `lo`, and it starts *down*: even
127.0.0.1 does not answer until it is up. Two ioctls do it without loading a netlink
library (pyroute2 costs ~400 ms to import; this costs nothing).
"""
from __future__ import annotations

import fcntl
import socket
import struct

from ..errors import SyscallError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def set_link_up(name: str = "lo") -> None:
    """ioctl(SIOCSIFFLAGS) with IFF_UP added to the interface's flags."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifreq = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", name.encode(), 0))
            flags = struct.unpack("16sH14x", ifreq)[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))
        except OSError as e:
            raise SyscallError("ioctl", (name, "SIOCSIFFLAGS"), e.errno) from None
