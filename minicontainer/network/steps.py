"""The network steps of the run sequence (runtime.py calls these, in this order).

    plan_network      parent, before fork    lease an address, reserve ports, write the
                                             container's hosts/resolv.conf/hostname files
    (spec.from_run)   the spec               a new network namespace for none and bridge,
                                             NAME's joined by path for container:NAME, none for host
    attach_network    parent, child waiting  veth pair into the child's new netns, eth0 up
    (spec.from_run)   PID 1, before pivot    binds them onto /etc/hosts, /etc/resolv.conf,
                                             /etc/hostname (bound, not copied: hosts is rewritten
                                             in place when a neighbour starts or stops)
    detach_network    parent, teardown       ports, veth, lease released; hosts files updated
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ContainerError, NetworkError
from . import NetworkStore, join_container_netns, parse_network_mode, parse_publish, write_hosts, write_resolv_conf
from .hosts import extra_hosts_text

NET_FILES = ("hosts", "resolv.conf", "hostname")     # bound onto /etc/… (spec.run_mounts)


def check_network_options(config) -> tuple:
    """Parse --net, -p, -P and --expose before anything is created (ConfigError on bad values)."""
    from .ports import parse_exposed, publish_all
    mode = parse_network_mode(config.net)
    ports = parse_publish(config.publish)
    exposed = parse_exposed(config.expose)          # the image's EXPOSE and --expose
    if config.publish_all:                          # -P: each on a host port chosen at start
        ports = publish_all(exposed, ports)
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
        if target.network:                              # its veth must outlive it if we do
            NetworkStore(ctx.store.root / "networks").get(target.network["network"]).join_netns(
                target.id, ctx.record.id)
        ctx.netns_fd = join_container_netns(target.pid)
        for name in ("hosts", "resolv.conf"):
            src = ctx.store.container_dir(target.id) / name
            (cdir / name).write_bytes(src.read_bytes() if src.exists() else b"")
        return
    if mode.kind == "bridge":
        net = NetworkStore(ctx.store.root / "networks").get(mode.name)
        ctx.record.network = net.plan(ctx.record.id, name=ctx.record.name, hostname=ctx.record.hostname,
                                      ports=ports, hosts_path=cdir / "hosts",
                                      extra_hosts=ctx.config.add_host)
        ctx.store.save(ctx.record)
    elif mode.kind == "none":
        write_hosts(cdir / "hosts", ctx.record.hostname)
    else:                                                   # host: the host's own names
        (cdir / "hosts").write_bytes(Path("/etc/hosts").read_bytes())
    if mode.kind != "bridge" and ctx.config.add_host:       # (a bridge lease keeps its own)
        with open(cdir / "hosts", "a") as f:
            f.write(extra_hosts_text(ctx.config.add_host))
    write_resolv_conf(cdir / "resolv.conf", mode.kind, ctx.config.dns, ctx.config.dns_search)


def attach_network(ctx, child_pid: int) -> None:
    """Parent, while the setup child waits in its new network namespace."""
    if ctx.network_mode is None or ctx.network_mode.kind != "bridge":
        return
    ctx.explain.step(f"connect the container to network {ctx.network_mode.name!r}",
                     "", "netlink (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE)", "veth(4), ip-link(8)",
                     "a veth pair is a cable: one end on the bridge, the other end is eth0 inside")
    net = NetworkStore(ctx.store.root / "networks").get(ctx.network_mode.name)
    ctx.record.network = net.attach(ctx.record.network, child_pid, explain=ctx.explain.callback())
    ctx.explain.flush()             # its lines under its step: the children narrate meanwhile
    # Not saved here: the lease file already says "attached" (under its lock), and start()
    # saves the record a moment later. A crash in between leaves the planned lease in
    # state.json, which is all that cleanup needs (it deletes the veth by name).


def detach_network(ctx) -> None:
    """Parent, teardown: release whatever plan/attach made. A failure is reported, not fatal:
    the lease stays so that `gc` can retry."""
    if getattr(ctx, "netns_fd", None) is not None:
        os.close(ctx.netns_fd)
        ctx.netns_fd = None
    if not ctx.record or not ctx.record.network:
        return
    try:
        NetworkStore(ctx.store.root / "networks").detach(ctx.record.network, explain=ctx.explain.callback(),
                                                         exited=True)   # teardown killed its cgroup
        ctx.record.network = {}
    except NetworkError as e:
        os.write(2, f"minicontainer: warning: {e} (run `minicontainer gc` to retry)\n".encode())
