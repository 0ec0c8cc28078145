"""The cluster and its nodes: create, remove, fail, recover, cordon, drain — the verbs.

    minicontainer cluster create [--nodes N] [--cpus C] [--memory M] [--node-timeout S] | rm
    minicontainer node ls|describe|add|rm|cordon|uncordon|drain|fail|recover

<root>/cluster/cluster.json records the cluster (its id, node timeout, each node's index,
size and names) before anything is made, so `cluster rm` can always undo it. Each node:

    <root>/cluster/nodes/NAME/            its own state root (containers, pods, networks);
        images, layers, bin → <root>/…    the images are the host's (a registry every node
        volumes     → <root>/volumes      pulls from); volumes are "cluster storage": every
                                          node sees the same directory, like the lecture's SAN
    cgroup  …/minicontainer-cluster/ID-NAME     memory.limit_in_bytes, cpu quota = allocatable
    netns   mcID-NAME (network.py)       eth0 on the underlay, its own bridge mc0, 10.244.N.0/24
    agent   python -m minicontainer.cluster.agent (agent.py), in that netns and cgroup parent
    Node object (k8s/nodes/)              what the scheduler sees: allocatable, labels, taints

`node fail` is a power cut: SIGKILL to the agent and to every process of the node (all in
its cgroup or its network namespace), and its cable pulled. `node recover` boots it empty.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from ..errors import ConfigError, ContainerError
from ..state import dir_lock, is_alive, proc_start_time, state_root
from . import network as net
from .members import node_parent

NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?")
NODE_TIMEOUT = 5.0
IMAGE_PREFIX = "minicontainer-migrated"      # images carrying cold-migrated pods' layers (migrate.py)


class ClusterError(ContainerError):
    """A cluster verb that cannot be done; nothing was changed."""


class ClusterStore:
    def __init__(self, root=None):
        self.root = state_root(root)
        self.dir = self.root / "cluster"
        self.path = self.dir / "cluster.json"

    def locked(self):
        return dir_lock(self.dir)

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def must_load(self) -> dict:
        record = self.load()
        if record is None:
            raise ClusterError("no cluster: create one with `minicontainer cluster create --nodes 3`")
        return record

    def save(self, record: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".cluster.json.{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.path)

    def node_root(self, name: str) -> Path:
        return self.dir / "nodes" / name

    def agent_info(self, name: str) -> dict | None:
        try:
            info = json.loads((self.node_root(name) / "agent.json").read_text())
        except (OSError, ValueError):
            return None
        return info if is_alive(info.get("pid", 0), info.get("start", 0)) else None


def find_node(record: dict, name: str) -> dict:
    if name not in record["nodes"]:
        known = ", ".join(record["nodes"]) or "none"
        raise ClusterError(f"no such node: {name} (the nodes: {known}; see `minicontainer node ls`)")
    return record["nodes"][name]


def parse_size(cpus: float, memory: str) -> tuple[float, int]:
    from ..orchestration.scheduler import memory_bytes
    try:
        mem = memory_bytes(memory)
    except ValueError:
        raise ConfigError(f"--memory {memory}: use a size like 512Mi or 2Gi") from None
    if not 0 < cpus <= 64:
        raise ConfigError(f"--cpus {cpus:g}: a node has more than 0 and at most 64 CPUs")
    if mem < 64 << 20:
        raise ConfigError(f"--memory {memory}: a node needs at least 64Mi")
    return float(cpus), mem


# ── the cluster ───────────────────────────────────────────────────────────────────────────

def create_cluster(root=None, *, nodes: int = 3, cpus: float = 1.0, memory: str = "1Gi",
                   node_timeout: float = NODE_TIMEOUT) -> dict:
    """`cluster create`: the underlay, then N nodes, each with its agent running."""
    if os.geteuid() != 0:
        raise ConfigError("a cluster needs root: network namespaces, bridges, cgroups")
    if not 1 <= nodes <= 16:
        raise ConfigError(f"--nodes {nodes}: from 1 to 16")
    if node_timeout <= 0:
        raise ConfigError(f"--node-timeout {node_timeout:g}: more than 0 seconds")
    size = parse_size(cpus, memory)
    store = ClusterStore(root)
    t0 = time.time()
    with store.locked():
        if store.load() is not None:
            raise ClusterError("a cluster exists already in this state root: "
                               "`minicontainer cluster rm` first (see `minicontainer node ls`)")
        record = {"id": net.cluster_id(store.root), "created": time.time(),
                  "node_timeout": float(node_timeout), "nodes": {}}
        store.save(record)                      # recorded before anything exists (design.md)
    try:
        net.create_underlay(record["id"])
        from ..orchestration.pods import pause_image
        pause_image(store.root)                 # built once here, not by N agents at once
        booted = [add_node(root, cpus=size[0], memory=str(size[1]), from_verb=False) for _ in range(nodes)]
        from ..orchestration.controller import ensure_controller
        ensure_controller(store.root)           # the control plane (heartbeats → Ready), while
        for n in booted:                        # the agents start, side by side
            wait_agent(store, n, n["agent_pid"])
        wait_ready(store, list(store.load()["nodes"]))
    except BaseException:
        remove_cluster(root)
        raise
    out = store.load()
    out["seconds"] = time.time() - t0
    return out


def remove_cluster(root=None) -> list[str]:
    """`cluster rm`: every node powered off and removed, the underlay, the records."""
    store = ClusterStore(root)
    record = store.load()
    if record is None:
        if store.dir.exists():
            shutil.rmtree(store.dir, ignore_errors=True)
            return []
        raise ClusterError("no cluster to remove (see `minicontainer node ls`)")
    removed = []
    for name in list(record["nodes"]):
        remove_node(root, name, force=True)
        removed.append(name)
    net.remove_underlay(record["id"])
    for top in cgroup_tops(node_parent()):      # the shared parent, once no root's node is in it
        try:
            top.rmdir()
        except OSError:
            pass
    remove_migrated_images(store.root)
    shutil.rmtree(store.dir, ignore_errors=True)
    wake_controller(store.root)
    return removed


# ── one node ──────────────────────────────────────────────────────────────────────────────

def add_node(root=None, name: str | None = None, *, cpus: float = 1.0, memory: str = "1Gi",
             from_verb: bool = True) -> dict:
    """`node add`: record, state root, cgroup, namespace and cable, Node object, agent."""
    size = parse_size(cpus, memory)
    store = ClusterStore(root)
    with store.locked():
        record = store.must_load()
        index = next(i for i in range(1, 250) if all(n["index"] != i for n in record["nodes"].values()))
        name = name or f"node{index}"
        if not NAME_RE.fullmatch(name):
            raise ConfigError(f"node name {name!r}: 1-15 lower-case letters, digits or '-'")
        if name in record["nodes"]:
            raise ClusterError(f"node {name} exists already (see `minicontainer node ls`)")
        n = dict(net.names(record["id"], name, index), name=name, index=index, cpus=size[0],
                 memory=size[1], cgroup=f"{record['id']}-{name}", failed=False)
        record["nodes"][name] = n
        store.save(record)
    try:
        pid = boot_node(store, record, n, wait=from_verb)
        if from_verb:
            wake_controller(store.root)
            wait_ready(store, [name])
    except BaseException:
        remove_node(root, name, force=True)
        raise
    return dict(n, agent_pid=pid)


def boot_node(store: ClusterStore, record: dict, n: dict, wait: bool = True) -> int:
    """Power on: an empty state root, the cgroup with its allocatable, the network, the
    Node object, the agent (which starts heartbeating)."""
    from ..cgroups import create_cgroup
    from ..cgroups.limits import Limits
    nroot = store.node_root(n["name"])
    nroot.mkdir(parents=True, exist_ok=True)
    for shared in ("images", "layers", "bin", "volumes"):
        (store.root / shared).mkdir(parents=True, exist_ok=True)
        link = nroot / shared
        if not link.is_symlink():
            link.symlink_to(store.root / shared)
    from ..network import NetworkStore
    NetworkStore(nroot / "networks", default_subnet=n["subnet"]).get()   # its pod subnet
    create_cgroup(n["cgroup"], Limits(memory=n["memory"], memory_swap=n["memory"],
                                      nano_cpus=int(n["cpus"] * 1e9)), parent=node_parent())
    peers = [p for p in record["nodes"].values() if p["name"] != n["name"] and net.netns_inode(p)]
    net.plumb_node(n, peers)
    from .lifecycle import write_node_object
    write_node_object(store.root, n)
    return start_agent(store, n, wait)


def start_agent(store: ClusterStore, n: dict, wait: bool = True) -> int:
    """Spawn the node's agent (in its cgroup parent; it joins the netns itself) → its pid;
    `wait`: until it runs (cluster create spawns all first, then waits: they start side by side)."""
    from ..orchestration.controller import daemonize
    env = dict(os.environ, MINICONTAINER_CGROUP_PARENT=f"{node_parent()}/{n['cgroup']}")
    pid = daemonize(["-m", "minicontainer.cluster.agent", "--root", str(store.root), "--node", n["name"]],
                    store.node_root(n["name"]) / "agent.log", env)
    if wait:
        wait_agent(store, n, pid)
    return pid


def wait_agent(store: ClusterStore, n: dict, pid: int) -> dict:
    nroot = store.node_root(n["name"])
    deadline = time.time() + 15
    while time.time() < deadline:
        info = store.agent_info(n["name"])
        if info and info["pid"] == pid:
            return info
        if not is_alive(pid, proc_start_time(pid) or 0):
            break
        time.sleep(0.02)
    log = (nroot / "agent.log").read_text(errors="replace").strip().splitlines()
    raise ClusterError(f"the agent of {n['name']} did not start: {log[-1] if log else 'no log'}")


def wait_ready(store: ClusterStore, names: list[str], timeout: float = 15) -> None:
    from .members import node_ready
    deadline = time.time() + timeout
    while not all(node_ready(store.root, m) for m in names):
        if time.time() > deadline:
            raise ClusterError(f"nodes not Ready after {timeout:g}s: see their agent.log in {store.dir}/nodes")
        wake_controller(store.root)             # look at the new Leases now, not at its next turn
        time.sleep(0.1)


def remove_node(root=None, name: str = "", *, force: bool = False) -> dict:
    """`node rm`: power off, unplug, remove its cgroup, state root and objects. Its pods are
    rescheduled elsewhere (the Pod objects go; their ReplicaSets make new ones)."""
    store = ClusterStore(root)
    record = store.must_load()
    n = find_node(record, name)
    if not force:
        check_not_last(record, store, name, "remove")
    power_off(store, n)
    peers = [p for p in record["nodes"].values() if p["name"] != name]
    net.unplumb_node(n, peers)
    remove_cgroup_tree(f"{node_parent()}/{n['cgroup']}")
    shutil.rmtree(store.node_root(name), ignore_errors=True)
    from .lifecycle import forget_node
    forget_node(store.root, name)
    with store.locked():
        record = store.must_load()
        record["nodes"].pop(name, None)
        store.save(record)
    wake_controller(store.root)
    return n


def check_not_last(record: dict, store: ClusterStore, name: str, verb: str) -> None:
    from .members import node_ready
    others = [m for m, n in record["nodes"].items() if m != name and not n.get("failed")
              and node_ready(store.root, m)]
    if not others:
        raise ClusterError(f"cannot {verb} {name}: it is the last Ready node, and its pods would "
                           "have nowhere to go (add one first: `minicontainer node add`)")


def fail_node(root=None, name: str = "") -> dict:
    """`node fail`: a power cut — SIGKILL to the agent and every process of the node, its
    cable pulled. Nothing tells the control plane: it notices the missing heartbeats."""
    store = ClusterStore(root)
    record = store.must_load()
    n = find_node(record, name)
    if n.get("failed"):
        raise ClusterError(f"node {name} has failed already: `minicontainer node recover {name}`")
    check_not_last(record, store, name, "fail")
    t0 = time.time()
    killed = power_off(store, n)
    net.set_links(n, up=False)
    with store.locked():
        record = store.must_load()
        record["nodes"][name]["failed"] = True
        record["nodes"][name]["failed_at"] = t0
        store.save(record)
    return dict(n, killed=killed, failed_at=t0)


def recover_node(root=None, name: str = "") -> dict:
    """`node recover`: the node boots again, empty — a new namespace and state root, a fresh
    agent; its old pods were rescheduled long ago (or are, once its timeout passed)."""
    store = ClusterStore(root)
    record = store.must_load()
    n = find_node(record, name)
    if not n.get("failed"):
        raise ClusterError(f"node {name} has not failed (see `minicontainer node ls`)")
    power_off(store, n)
    peers = [p for p in record["nodes"].values() if p["name"] != name]
    net.unplumb_node(n, peers)
    remove_cgroup_tree(f"{node_parent()}/{n['cgroup']}")
    shutil.rmtree(store.node_root(name), ignore_errors=True)
    with store.locked():
        record = store.must_load()
        record["nodes"][name]["failed"] = False
        record["nodes"][name].pop("failed_at", None)
        store.save(record)
    boot_node(store, record, record["nodes"][name])
    wake_controller(store.root)
    wait_ready(store, [name])
    return record["nodes"][name]


def power_off(store: ClusterStore, n: dict) -> int:
    """SIGKILL to the agent, then to every process in the node's cgroups or its network
    namespace, until none is left → how many were killed."""
    info = store.agent_info(n["name"])
    killed = 0
    if info:
        os.kill(info["pid"], signal.SIGKILL)
        killed += 1
    ino = net.netns_inode(n)
    for _ in range(100):
        pids = cgroup_pids(f"{node_parent()}/{n['cgroup']}") | (netns_pids(ino) if ino else set())
        pids.discard(os.getpid())
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    (store.node_root(n["name"]) / "agent.json").unlink(missing_ok=True)
    return killed


def netns_pids(ino: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == ino:
                    out.add(int(entry))
            except OSError:
                pass
    return out


def cgroup_tops(path: str) -> list[Path]:
    from ..cgroups import detect_layout
    layout = detect_layout()
    tops = [layout.unified] if layout.version == 2 else list(dict.fromkeys(layout.v1.values()))
    return [Path(t) / path for t in tops]


def cgroup_pids(path: str) -> set[int]:
    pids = set()
    for top in cgroup_tops(path):
        for dirpath, _, files in os.walk(top):
            try:
                pids.update(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def remove_cgroup_tree(path: str) -> None:
    """rmdir, deepest first (only empty groups can go; their processes are dead by now)."""
    for top in cgroup_tops(path):
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)                # a killed task still leaving


# ── scheduling controls ───────────────────────────────────────────────────────────────────

def cordon_node(root=None, name: str = "", on: bool = True) -> dict:
    """`node cordon|uncordon`: spec.unschedulable — no new pods; the running ones stay."""
    store = ClusterStore(root)
    find_node(store.must_load(), name)
    from ..orchestration.store import ObjectStore
    obj = ObjectStore(store.root).update("Node", name, lambda o: o["spec"].__setitem__("unschedulable", on)
                                         if on else o["spec"].pop("unschedulable", None))
    wake_controller(store.root)
    return obj


def drain_node(root=None, name: str = "", *, timeout: float = 120, emit=print) -> list[str]:
    """`node drain`: cordon, then evict every pod (graceful: out of its Services first,
    then SIGTERM); their ReplicaSets start replacements on the other nodes. Waits until the
    node runs no pod and every replacement is Ready."""
    from ..orchestration.controllers import active, ready, request_deletion
    from ..orchestration.store import ObjectStore
    store = ClusterStore(root)
    record = store.must_load()
    find_node(record, name)
    check_not_last(record, store, name, "drain")
    cordon_node(root, name)
    objects = ObjectStore(store.root)
    evicted = []
    for pod in objects.list("Pod"):
        if pod["spec"].get("nodeName") == name and active(pod):
            request_deletion(objects, pod)
            objects.record_event(pod, "Evicted", f"Evicting pod: node {name} is being drained",
                                 source="kubectl-drain")
            emit(f"evicting pod default/{pod['metadata']['name']}")
            evicted.append(pod["metadata"]["name"])
    wake_controller(store.root)
    deadline = time.time() + timeout
    while time.time() < deadline:
        pods = objects.list("Pod")
        left = [p for p in pods if p["spec"].get("nodeName") == name]
        waiting = [p for p in pods if active(p) and not ready(p)]
        if not left and not waiting:
            break
        time.sleep(0.2)
    else:
        raise ClusterError(f"drain {name}: pods still there after {timeout:g}s (see `minicontainer get pods -o wide`)")
    emit(f"node/{name} drained")
    return evicted


def wake_controller(root) -> None:
    from ..orchestration.controller import nudge, read_info
    from ..orchestration.store import ObjectStore
    nudge(read_info(ObjectStore(root)))


# ── looking ───────────────────────────────────────────────────────────────────────────────

def list_nodes(root=None) -> list[dict]:
    """`node ls`: kubectl get nodes -o wide, plus what each node holds."""
    from ..orchestration.controllers import active
    from ..orchestration.scheduler import requests_of
    from ..orchestration.store import ObjectStore, parse_rfc3339
    from ..status import human_duration
    from .members import is_ready
    store = ClusterStore(root)
    record = store.must_load()
    objects = ObjectStore(store.root)
    pods = [p for p in objects.list("Pod") if active(p)]
    out = []
    for name, n in record["nodes"].items():
        obj = objects.get("Node", name) or {"spec": {}, "status": {}, "metadata": {}}
        status = "Ready" if is_ready(obj) else "NotReady"
        if obj["spec"].get("unschedulable"):
            status += ",SchedulingDisabled"
        mine = [p for p in pods if p["spec"].get("nodeName") == name]
        cpu = sum(requests_of(p)[0] for p in mine)
        mem = sum(requests_of(p)[1] for p in mine)
        created = obj["metadata"].get("creationTimestamp")
        info = store.agent_info(name)
        out.append({"name": name, "status": status, "failed": bool(n.get("failed")),
                    "age": human_duration(time.time() - parse_rfc3339(created)) if created else "",
                    "ip": n["ip"], "subnet": n["subnet"], "pods": len(mine),
                    "pod_names": [p["metadata"]["name"] for p in mine],
                    "cpu_requests": cpu, "cpu_millis": int(n["cpus"] * 1000),
                    "memory_requests": mem, "memory": n["memory"],
                    "agent_pid": info["pid"] if info else 0, "netns": n["netns"]})
    return out


def describe_node(root=None, name: str = "") -> str:
    """`node describe NAME`: kubectl describe node, and what makes it a node on this machine."""
    from ..orchestration.store import ObjectStore
    from .lifecycle import LEASE_NS, renewed_at
    store = ClusterStore(root)
    record = store.must_load()
    n = find_node(record, name)
    objects = ObjectStore(store.root)
    obj = objects.get("Node", name) or {"spec": {}, "status": {}, "metadata": {}}
    row = next(r for r in list_nodes(root) if r["name"] == name)
    renewed = renewed_at(objects, name)
    info = store.agent_info(name)
    taints = obj["spec"].get("taints") or []
    lines = [f"Name:               {name}",
             "Labels:             " + "\n                    ".join(
                 f"{k}={v}" for k, v in (obj["metadata"].get("labels") or {}).items()),
             "Taints:             " + ("\n                    ".join(
                 f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t['effect']}" for t in taints) or "<none>"),
             f"Unschedulable:      {bool(obj['spec'].get('unschedulable'))}",
             f"Lease:              {LEASE_NS}/{name}, renewed " +
             (f"{time.time() - renewed:.1f}s ago" if renewed else "never") +
             f" (node timeout {record['node_timeout']:g}s)",
             "Conditions:"]
    for c in obj["status"].get("conditions", []):
        lines.append(f"  {c['type']:<8} {c['status']:<8} {c.get('reason', '')}: {c.get('message', '')}")
    lines += [f"Addresses:          InternalIP {n['ip']} (on the underlay {n['underlay']})",
              f"PodCIDR:            {n['subnet']}",
              f"Capacity:           cpu {n['cpus']:g}, memory {n['memory'] >> 20}Mi",
              f"Allocated:          cpu {row['cpu_requests']}m/{row['cpu_millis']}m requested, "
              f"memory {row['memory_requests'] >> 20}Mi/{n['memory'] >> 20}Mi requested",
              "On this machine:",
              f"  network namespace {n['netns']}   (ip -n {n['netns']} addr)",
              f"  state root        {store.node_root(name)}",
              f"  cgroup            {node_parent()}/{n['cgroup']}  (limits = allocatable)",
              f"  agent             " + (f"pid {info['pid']}, log {store.node_root(name) / 'agent.log'}"
                                         if info else "not running" + (" (failed: power off)" if n.get("failed") else "")),
              f"Non-terminated Pods: ({row['pods']} in total)"]
    lines += [f"  default/{p}" for p in row["pod_names"]]
    events = objects.events_for("Node", name)
    if events:
        lines.append("Events:")
        lines += [f"  {e['type']:<8} {e['reason']:<14} {e['message']}" for e in events[-10:]]
    return "\n".join(lines)


def remove_migrated_images(root) -> None:
    from ..errors import ImageError
    from ..storage.images import image_store
    images = image_store(root)
    for image in images.list():
        if image.ref.startswith(IMAGE_PREFIX + "/"):
            try:
                images.remove(image.ref)
            except ImageError:                  # removed meanwhile (a parallel `image rm`)
                pass
