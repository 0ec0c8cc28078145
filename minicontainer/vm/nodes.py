"""A VM on a cluster node (docs/cluster.md): where its QEMU runs, and which node takes it.

What it is: a node of minicontainer's cluster is a network namespace (/run/netns/mcXXXX-NAME) with
its own NIC on the cluster's underlay network, an agent that heartbeats, a Node object the control
plane marks Ready or NotReady, and a cgroup whose limits are its allocatable CPU and memory.
A VM placed on a node (`vm create --node NAME`) gets its QEMU started inside that namespace, and
moved into a group of its own below the node's cgroup, so:
  - `node fail NAME` (a power cut: SIGKILL to every process of the node) kills its QEMU too;
  - `vm migrate NAME --to NODE` sends the RAM over TCP from one node's address to the other's,
    across the underlay bridge: the cluster network (migration.py);
  - with `--restart-on-failure`, the control plane restarts it on a Ready node once its node is
    NotReady — not when it was removed: `node rm` powers its VMs off (ha.py, one step of each
    controller turn; pick_node() here chooses the node).
The VM's files (<root>/vms/NAME: disk, overlays, console log) are the cluster's shared storage,
like the nodes' `volumes` link to <root>/volumes: every node opens the same qcow2 file.
See: nsenter(1) --net; docs/vms.md (HA); cluster/lifecycle.py (heartbeats → NotReady).
Shell equivalent: nsenter --net=/run/netns/mcXXXX-node2 qemu-system-x86_64 … -daemonize;
    mkdir /sys/fs/cgroup/memory/minicontainer-cluster/XXXX-node2/vm-NAME-N; echo PID > …/cgroup.procs
"""
from __future__ import annotations

from pathlib import Path

from ..errors import VmError

NETNS_DIR = Path("/run/netns")


def cluster_nodes(root: Path) -> dict:
    """The cluster's nodes (name → its record: netns, ip, memory…); {} without a cluster.
    (Through cluster/members.py, not nodes.py: that imports the control plane, which imports
    the HA step, vm/ha.py.)"""
    from ..cluster.members import cluster_record
    return cluster_record(root).get("nodes", {})


def ready(root: Path, node: str) -> bool:
    from ..cluster.members import node_ready
    n = cluster_nodes(root).get(node)
    return bool(n) and not n.get("failed") and node_ready(root, node)


def unreachable(root: Path, node: str) -> bool:
    """The node is in the cluster but NotReady (failed, or silent past the node timeout): its VMs
    may boot elsewhere. A removed node is not: `node rm` and `cluster rm` power its VMs off with
    it (so nothing starts on a node while the cluster is being taken down)."""
    from ..cluster.members import is_ready
    from ..orchestration.store import ObjectStore
    obj = ObjectStore(root).get("Node", node)
    return obj is not None and not is_ready(obj)


def check_node(root: Path, node: str, what: str) -> dict:
    """The Ready node `node` (its record), or one line saying what is wrong."""
    nodes = cluster_nodes(root)
    if node not in nodes:
        known = ", ".join(nodes) or "no cluster: `minicontainer cluster create` first"
        raise VmError(f"{what} {node!r}: no such cluster node (nodes: {known})")
    if not ready(root, node):
        raise VmError(f"{what} {node!r}: node {node} is not running (not Ready; see `minicontainer node ls`)")
    return nodes[node]


def netns_path(n: dict) -> str:
    return str(NETNS_DIR / n["netns"])


def in_node(n: dict) -> list[str]:
    """The command prefix that starts a process on node `n`: in its network namespace."""
    return ["nsenter", f"--net={netns_path(n)}", "--"]


def node_cgroup(n: dict) -> str:
    """The node's cgroup (its allocatable CPU and memory are its limits), from each hierarchy's root."""
    from ..cluster.members import node_parent
    return f"{node_parent()}/{n['cgroup']}"


def join_cgroup(run_dir: Path, parent: str, name: str, pid: int) -> None:
    """QEMU into a group of its own below the node's: the node's memory and CPU limits hold for
    the VM as for its pods (mkdir PARENT/NAME; echo PID > cgroup.procs). The group's path is
    kept in the run directory, which leave_cgroup() reads when that QEMU is gone."""
    from ..cgroups import create_cgroup
    group = f"/{parent}/{name}"
    cgroup = create_cgroup(group)
    (run_dir / "cgroup").write_text(group)
    cgroup.add_process(pid)


def leave_cgroup(run_dir: Path) -> None:
    """The group of a QEMU that is gone (rmdir; nothing when it ran outside a node)."""
    from ..cgroups import open_cgroup
    from ..errors import CgroupError
    try:
        group = (Path(run_dir) / "cgroup").read_text()
    except OSError:
        return
    try:
        cgroup = open_cgroup(group)
        if cgroup:
            cgroup.remove()
    except CgroupError:
        pass                          # the node's removal takes its whole tree anyway


def pick_node(root: Path, vms: list, rec, avoid: str) -> str | None:
    """A node for `rec`: Ready, schedulable, with the VM's memory left over the other VMs' there
    (the node's allocatable); of those, the one running the fewest VMs; ties go to the name."""
    from ..cluster.members import cluster_nodes as node_objects
    from ..orchestration.store import ObjectStore
    here: dict[str, list] = {}
    for other in vms:
        if other.name != rec.name and other.node and other.running:
            here.setdefault(other.node, []).append(other)
    members = cluster_nodes(root)
    fits = [n for n in node_objects(ObjectStore(root))
            if n.ready and not n.unschedulable and n.name != avoid
            and n.name in members and not members[n.name].get("failed")
            and sum(v.memory_mb for v in here.get(n.name, [])) + rec.memory_mb <= n.memory >> 20]
    if not fits:
        return None
    return min(fits, key=lambda n: (len(here.get(n.name, [])), n.name)).name
