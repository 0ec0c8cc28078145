"""Moving a running VM: its CPU and RAM to another QEMU (live migration), or its disk to another
file (storage migration).

What it is:
  live migration  A second QEMU with the same command line waits with -incoming. The source sends
                  all RAM while the guest keeps running, with dirty-page tracking switched on (KVM:
                  the CPU's dirty log; TCG: QEMU's own bitmap); then it re-sends the pages written
                  meanwhile, round after round ("dirty-sync-count"), until what is left fits in the
                  allowed downtime. Then it stops the guest, sends the last pages and the CPU and
                  device state (stop-and-copy), and the target starts: the downtime QEMU reports.
                  The disk is shared: both QEMUs open the same qcow2 file (the target activates it
                  only when the source has let go).
  storage         drive-mirror copies the disk to a new file while the guest writes; once in sync
  migration       ("ready"), every write goes to both; block-job-complete switches the guest onto
                  the copy. `qemu-img compare` proves the copy byte-identical.
On a cluster (docs/cluster.md) the target QEMU starts in the target node's network namespace and
the stream goes over TCP to that node's underlay address (--to NODE). Without one the only host is
this machine: the stream goes over a unix socket between two QEMU processes here (--to localhost),
or, as a stand-in for a second host, to a QEMU in a network namespace of its own, over TCP across a
veth pair (--to netns).
See: QMP migrate, migrate-incoming, query-migrate, drive-mirror, block-job-complete;
QEMU's docs/devel/migration.rst; docs/vms.md.
Shell equivalent: qemu-system-x86_64 ... -incoming unix:/tmp/m.sock; (qemu) migrate unix:/tmp/m.sock;
(qemu) info migrate; (qemu) drive_mirror -f disk0 /new.qcow2 qcow2; (qemu) block_job_complete disk0.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from ..errors import VmError
from ..state import proc_start_time
from . import qemu
from .disks import backing_chain, check_target, compare
from .machine import VmStore, drop_run_dir, require_running, spawn
from .nodes import check_node, cluster_nodes, in_node, node_cgroup
from .qmp import Monitor
from .snapshots import top_node

LOCAL_HOSTS = ("localhost", "local", "127.0.0.1")
NETNS_HOST = "netns"           # a stand-in for another host: a new network namespace, a veth pair
# The veth pair's two ends (a /30 of the link-local range: never routed beyond the link).
SOURCE_ADDR, TARGET_ADDR, MIGRATION_PORT = "169.254.77.1", "169.254.77.2", 4444


def migrate(store: VmStore, name: str, host: str, *, downtime_limit_ms: int = 300,
            timeout: float = 300.0) -> dict:
    """Live-migrate VM `name` to a new QEMU on `host`; returns QEMU's own figures.
    localhost: over a unix socket; netns: the target QEMU runs in a network namespace of its own
    and the stream crosses a veth pair over TCP, as it would cross the network between two hosts;
    a cluster node: the target QEMU runs in that node's network namespace and the stream goes over
    TCP to the node's address on the underlay — the cluster network (vm/nodes.py)."""
    node = target_node(store, name, host)
    with store.locked(name) as rec:
        require_running(rec)
        source_pid, source_socket, source_dir = rec.pid, rec.qmp_socket, Path(rec.run_dir)
        prefix = ["unshare", "--net"] if host == NETNS_HOST else in_node(node) if node else []
        pid, run_dir, _choice = spawn(store, rec, incoming="defer", prefix=prefix,
                                      cgroup_parent=node_cgroup(node) if node else "")
        uri, link = f"unix:{run_dir}/migrate.sock", ""
        if node:
            uri = f"tcp:{node['ip']}:{MIGRATION_PORT}"
        try:
            if host == NETNS_HOST:
                link = connect_namespaces(source_pid, pid)
                uri = f"tcp:{TARGET_ADDR}:{MIGRATION_PORT}"
            with Monitor(run_dir / "qmp.sock") as target, Monitor(source_socket) as source:
                target.cmd("migrate-incoming", uri=uri)
                try:
                    info = run_migration(source, uri, downtime_limit_ms, timeout)
                    # "completed" on the source means the last bytes were written to the socket,
                    # not that the target has read them: the source and the link stay until the
                    # target runs the guest.
                    target.wait_for(lambda: target.cmd("query-status")["status"],
                                    lambda s: s == "running", timeout=120, what="the target's start")
                except BaseException:
                    resume(source)
                    raise
                source.quit()
            remove_link(source_pid, link)
        except BaseException:
            remove_link(source_pid, link)
            qemu.kill(pid)                      # the source keeps the VM; the half target goes
            qemu.wait_gone(pid, 10)             # (and its namespace with it)
            drop_run_dir(run_dir)
            raise
        qemu.wait_gone(source_pid, 10) or qemu.kill(source_pid)
        qemu.wait_gone(source_pid, 5)
        drop_run_dir(source_dir)
        source_node, rec.node = rec.node, host if node else ""   # localhost, netns: off the cluster
        rec.pid, rec.pid_start, rec.run_dir = pid, proc_start_time(pid), str(run_dir)
        store.save(rec)
        how = f" over veth {link}" if link else \
            f" from {source_node or 'this host'} to {host} across the cluster network" if node else ""
        return {**figures(info, host, source_pid, pid), "stream": uri + how}


def target_node(store: VmStore, name: str, host: str) -> dict | None:
    """None for this machine (localhost, netns); else the cluster node `host`, Ready, and not
    the one the VM is on already."""
    if host in LOCAL_HOSTS + (NETNS_HOST,):
        return None
    root = store.dir.parent
    if host not in cluster_nodes(root):
        raise VmError(f"host {host!r} is not running: not a node of a cluster here (nodes: "
                      f"{', '.join(cluster_nodes(root)) or 'none'}); without one a VM migrates between two "
                      "QEMU processes on this machine: use --to localhost (or --to netns)")
    node = check_node(root, host, "--to")
    if store.load(name).node == host:
        raise VmError(f"VM {name} runs on {host} already: pick another node (`minicontainer node ls`)")
    return node


def resume(source: Monitor) -> None:
    """After a failed hand-over the source is paused ("postmigrate"): `cont` runs the guest there again."""
    try:
        if source.cmd("query-status")["status"] in ("postmigrate", "paused", "finish-migrate"):
            source.cmd("cont")
    except VmError:
        pass


def ip_in(pid: int, *args: str) -> None:
    """`nsenter -t PID -n ip ARGS`: an ip command in the network namespace of process PID."""
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise VmError(f"ip {' '.join(args)} in the namespace of PID {pid}: {result.stderr.strip()}")


def connect_namespaces(source_pid: int, target_pid: int) -> str:
    """A veth pair from the source QEMU's network namespace to the target's, addressed as a /30:
        ip link add A type veth peer name B; ip link set A netns SRC; ip link set B netns DST
        nsenter -t SRC -n ip addr add 169.254.77.1/30 dev A; … 169.254.77.2/30 dev B in DST
    Returns A's name. Deleting either end deletes both; the target's namespace (unshare --net)
    disappears with its QEMU."""
    name = f"mcmig{os.getpid() % 100000}"
    peer = name + "b"
    ip_in(os.getpid(), "link", "add", name, "type", "veth", "peer", "name", peer)
    try:
        ip_in(os.getpid(), "link", "set", name, "netns", str(source_pid))
        ip_in(os.getpid(), "link", "set", peer, "netns", str(target_pid))
        for pid, dev, addr in ((source_pid, name, SOURCE_ADDR), (target_pid, peer, TARGET_ADDR)):
            ip_in(pid, "addr", "add", f"{addr}/30", "dev", dev)
            ip_in(pid, "link", "set", dev, "up")
    except VmError:
        remove_link(source_pid, name)
        raise
    return name


def remove_link(source_pid: int, name: str) -> None:
    """The veth pair goes once the stream has crossed it (or failed): both ends with one delete."""
    for pid in (source_pid, os.getpid()):
        if name and subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "del", name],
                                   capture_output=True).returncode == 0:
            return


MAX_BANDWIDTH = 8 << 30        # bytes/s; QEMU's default (128 MiB/s) is for a shared network, not a socket


def run_migration(source: Monitor, uri: str, downtime_limit_ms: int, timeout: float) -> dict:
    # Both ends are on this machine: no link to spare, so the stream may go as fast as QEMU can
    # send (the default cap made the pre-copy of a 256 MiB guest take ~0.6 s by itself). Multifd
    # (parallel streams) does not help here: single-threaded TCG and 2 cores, the CPU is the limit.
    source.cmd("migrate-set-parameters", **{"downtime-limit": downtime_limit_ms,
                                            "max-bandwidth": MAX_BANDWIDTH})
    source.cmd("migrate", uri=uri)
    info = source.wait_for(lambda: source.cmd("query-migrate"),
                           lambda i: i.get("status") in ("completed", "failed", "cancelled"),
                           timeout=timeout, what="the migration")
    if info["status"] != "completed":
        raise VmError(f"migration {info['status']}: {info.get('error-desc', 'no reason given')}; "
                      "the VM keeps running where it was")
    return info


def figures(info: dict, host: str, source_pid: int, target_pid: int) -> dict:
    ram = info.get("ram", {})
    return {"host": host, "source_pid": source_pid, "target_pid": target_pid,
            "total_time_ms": info.get("total-time"), "downtime_ms": info.get("downtime"),
            "setup_time_ms": info.get("setup-time"), "transferred_bytes": ram.get("transferred"),
            "ram_total_bytes": ram.get("total"), "dirty_sync_count": ram.get("dirty-sync-count"),
            "pages_per_second": ram.get("pages-per-second"), "mbps": ram.get("mbps")}


def storage_migrate(store: VmStore, name: str, target: str, *, timeout: float = 600.0) -> dict:
    """Mirror the running VM's disk to `target` (a new qcow2 file), switch to it, verify."""
    path = Path(target).absolute()
    with store.locked(name) as rec:
        require_running(rec)
        needed = sum(i.get("actual-size", 0) for i in backing_chain(Path(rec.disk)))
        check_target(path, needed)
        old_top = Path(rec.disk)
        started = time.monotonic()
        with Monitor(rec.qmp_socket) as qmp:
            node = top_node(qmp)
            try:
                qmp.cmd("drive-mirror", **{"job-id": "mirror", "device": node, "target": str(path),
                                           "format": "qcow2", "sync": "full", "mode": "absolute-paths"})
                wait_ready(qmp, timeout)
                synced = time.monotonic() - started
                # Pause the vCPUs only for the switch and the proof: then nothing writes while
                # qemu-img compares the old chain with the copy.
                qmp.cmd("stop")
                paused = time.monotonic()
                qmp.cmd("block-job-complete", device="mirror")
                qmp.wait_for(lambda: qmp.cmd("query-block-jobs"), lambda jobs: not jobs,
                             timeout=60, what="the mirror's switch-over")
                identical = compare(old_top, path)
                qmp.cmd("cont")
                pause_ms = (time.monotonic() - paused) * 1000
            except BaseException:
                cancel_mirror(qmp, path)
                raise
        old_files = list(rec.chain)
        rec.chain, rec.disk = [str(path)], str(path)
        # Snapshots stay behind with the files they were in.
        rec.snapshots = {}
        store.save(rec)
        for old in old_files:
            Path(old).unlink(missing_ok=True)
        return {"target": str(path), "identical": identical, "copy_seconds": round(synced, 3),
                "pause_ms": round(pause_ms, 1), "bytes": path.stat().st_size}


def wait_ready(qmp: Monitor, timeout: float) -> None:
    def job():
        return next((j for j in qmp.cmd("query-block-jobs") if j["device"] == "mirror"), None)
    state = qmp.wait_for(job, lambda j: j is None or j.get("ready"), timeout=timeout, what="the mirror")
    if state is None:
        raise VmError("drive-mirror stopped before it was in sync (see the target's file system)")


def cancel_mirror(qmp: Monitor, path: Path) -> None:
    """After a failure: the guest runs on the old disk again, the half copy goes."""
    try:
        if any(j["device"] == "mirror" for j in qmp.cmd("query-block-jobs")):
            qmp.cmd("block-job-cancel", device="mirror", force=True)
            qmp.wait_for(lambda: qmp.cmd("query-block-jobs"), lambda jobs: not jobs, timeout=30)
        if qmp.cmd("query-status")["status"] == "paused":
            qmp.cmd("cont")
    except VmError:
        pass
    path.unlink(missing_ok=True)
