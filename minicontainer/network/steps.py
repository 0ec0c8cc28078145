"""The network steps of the run sequence (runtime.py calls these, in this order).

    plan_network      parent, before fork    lease an address, reserve ports, write the
                                             container's hosts/resolv.conf/hostname files
    namespace_flags   setup child            CLONE_NEWNET unless --net host / container:NAME
    attach_network    parent, child waiting  veth pair into the child's new netns, eth0 up
    mount_net_files   PID 1, before pivot    bind them onto /etc/hosts, /etc/resolv.conf,
                                             /etc/hostname (bound, not copied: hosts is rewritten
                                             in place when a neighbour starts or stops)
    detach_network    parent, teardown       ports, veth, lease released; hosts files updated
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ContainerError, NetworkError
from ..kernel.namespaces import CLONE_NEWNET
from . import NetworkStore, join_container_netns, parse_network_mode, parse_publish, write_hosts, write_resolv_conf

NET_FILES = ("hosts", "resolv.conf", "hostname")


def check_network_options(config) -> tuple:
    """Parse --net and -p before anything is created (ConfigError on bad values)."""
    mode = parse_network_mode(config.net)
    ports = parse_publish(config.publish)
    if ports and mode.kind != "bridge":
        raise NetworkError(f"-p needs a bridge network; --net {config.net} has no ports of its own to publish")
    return mode, ports


def plan_network(ctx, mode, ports) -> None:
    """Parent: the lease (recorded in state.json before any interface exists) and the files."""
    cdir = ctx.store.container_dir(ctx.record.id)
    (cdir / "hostname").write_text(ctx.record.hostname + "\n")
    ctx.network_mode = mode
    if mode.kind == "container":
        target = ctx.store.find(mode.name)
        if target.status != "running":
            raise ContainerError(f"--net container:{mode.name}: that container is not running")
        ctx.netns_fd = join_container_netns(target.pid)
        for name in ("hosts", "resolv.conf"):
            src = ctx.store.container_dir(target.id) / name
            (cdir / name).write_bytes(src.read_bytes() if src.exists() else b"")
        return
    if mode.kind == "bridge":
        net = NetworkStore(ctx.store.root / "networks").get(mode.name)
        ctx.record.network = net.plan(ctx.record.id, name=ctx.record.name, hostname=ctx.record.hostname,
                                      ports=ports, hosts_path=cdir / "hosts")
        ctx.store.save(ctx.record)
    elif mode.kind == "none":
        write_hosts(cdir / "hosts", ctx.record.hostname)
    else:                                                   # host: the host's own names
        (cdir / "hosts").write_bytes(Path("/etc/hosts").read_bytes())
    write_resolv_conf(cdir / "resolv.conf", mode.kind)


def namespace_flags(ctx, flags: int) -> int:
    """--net host and container:NAME keep CLONE_NEWNET out of unshare (the latter joins instead)."""
    return flags & ~CLONE_NEWNET if ctx.network_mode.kind in ("host", "container") else flags


def join_network(ctx) -> None:
    """Setup child, --net container:NAME: setns(2) into NAME's network namespace."""
    if ctx.network_mode.kind == "container":
        from . import enter_netns
        ctx.explain.step("join the other container's network namespace", "nsenter --net=/proc/PID/ns/net",
                         "setns(fd, CLONE_NEWNET)", "setns(2)",
                         "both containers now share eth0, addresses and ports: a pod")
        enter_netns(ctx.netns_fd)


def attach_network(ctx, child_pid: int) -> None:
    """Parent, while the setup child waits in its new network namespace."""
    if ctx.network_mode.kind != "bridge":
        return
    ctx.explain.step(f"connect the container to network {ctx.network_mode.name!r}",
                     "", "netlink (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE)", "veth(4), ip-link(8)",
                     "a veth pair is a cable: one end on the bridge, the other end is eth0 inside")
    net = NetworkStore(ctx.store.root / "networks").get(ctx.network_mode.name)
    ctx.record.network = net.attach(ctx.record.network, child_pid, explain=ctx.explain.callback())
    # Not saved here: the lease file already says "attached" (under its lock), and start()
    # saves the record a moment later. A crash in between leaves the planned lease in
    # state.json, which is all that cleanup needs (it deletes the veth by name).


def mount_net_files(ctx) -> None:
    """PID 1, before pivot_root: bind the container's files over the image's /etc/hosts,
    /etc/resolv.conf and /etc/hostname, each target resolved inside the rootfs."""
    from ..rootfs import bind_into_rootfs
    cdir = ctx.store.container_dir(ctx.record.id)
    ctx.explain.step("bind /etc/hosts, /etc/resolv.conf and /etc/hostname",
                     f"mount --bind {cdir}/hosts {ctx.merged}/etc/hosts   # and the other two",
                     "mount(src, \"/proc/self/fd/N\", NULL, MS_BIND)", "mount(2), openat2(2)",
                     "the names of the other containers and the host's DNS servers; bound, not "
                     "copied, because the hosts file is updated when a neighbour starts or stops")
    for name in NET_FILES:
        bind_into_rootfs(ctx, str(cdir / name), f"/etc/{name}")


def detach_network(ctx) -> None:
    """Parent, teardown: release whatever plan/attach made. A failure is reported, not fatal:
    the lease stays so that `gc` can retry."""
    if getattr(ctx, "netns_fd", None) is not None:
        os.close(ctx.netns_fd)
        ctx.netns_fd = None
    if not ctx.record or not ctx.record.network:
        return
    try:
        NetworkStore(ctx.store.root / "networks").detach(ctx.record.network, explain=ctx.explain.callback())
        ctx.record.network = {}
    except NetworkError as e:
        os.write(2, f"minicontainer: warning: {e} (run `minicontainer gc` to retry)\n".encode())
