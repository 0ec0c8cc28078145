"""Moving pods between nodes: cold migration of one pod, and rebalancing (DRS by hand).

    minicontainer migrate pod/NAME --to NODE          cold: stop, carry, start — downtime printed
    minicontainer cluster rebalance [--threshold N] [--auto|--no-auto]

Cold migration, step by step (the CLI drives it through annotations; the agents act, as
only a node's agent may touch what runs on it):

    CLI      checks the target (Ready, not cordoned, room for the requests: the scheduler's own
             filters) — else one line, exit 125, nothing changed; annotates the Pod migrate-to
    source   Ready=False: the Services stop sending it new connections (Endpoints drop it)
    target   meanwhile prepares: the pod's sandbox (pause process, network namespace, veth,
             IP from its own subnet, cgroup) and its volumes, while the source still serves
    source   once both are done: stops its containers (SIGTERM, SIGKILL after the grace
             period)                                                            ← down
             commits each container's writable layer (its overlay upper/) as an image
             layer the target can use (the image store is shared, like a registry)
             rebinds the Pod object to the target; then removes its own sandbox
    target   starts the containers in the prepared sandbox from the carried layers, the same
             volumes (PVCs are on the cluster storage every node sees: nothing to copy)
             and the same name                                              ← Running again
    CLI      prints the downtime: container stopped → Ready on the target

Only what cannot be done before the stop is inside the downtime: the writable layer's final
state (a commit: a tar of upper/, small for a web server) and the containers' start.

Live migration would keep the processes running: it needs their memory, registers, open
files and sockets saved and restored — CRIU, whose `criu check` fails on this kernel
(docs/cluster.md). So the process restarts; its files and name survive.

Rebalancing moves pods off the busiest node, one at a time (maxUnavailable 1, and only pods
whose Deployment is fully ready), until the node with the most pods has at most THRESHOLD
more than the one with the fewest; the scheduler's least-allocated score puts each replacement
on the emptiest node. `--auto` makes the control plane do it whenever it is needed.
"""
from __future__ import annotations

import json
import time

from ..errors import ImageError
from ..orchestration.store import ObjectStore
from .nodes import IMAGE_PREFIX

MIGRATE_TO = "migration.minicontainer.io/to"
PHASE = "migration.minicontainer.io/phase"          # leaving → stopped (source) → done (target)
STOPPED_AT = "migration.minicontainer.io/stopped-at"
PREPARED = "migration.minicontainer.io/target-prepared"   # the target's sandbox is up
DRAINING_SINCE = "migration.minicontainer.io/draining-since"
PREPARE_WAIT = 10.0     # the source stops after this even if the target prepared nothing
                        # (the target then makes the sandbox after the stop, as it would anyway)


def pod_name(ref: str) -> str:
    kind, sep, name = ref.partition("/")
    if sep and kind not in ("pod", "pods", "po"):
        from .nodes import ClusterError
        raise ClusterError(f"migrate {ref}: only pods migrate (pod/NAME)")
    return name if sep else ref


def check_target(objects: ObjectStore, record: dict, pod: dict, to: str) -> None:
    """The scheduler's filters for one node: the same words as `describe pod`."""
    from ..orchestration.controllers import active
    from ..orchestration.scheduler import schedule
    from .members import cluster_nodes
    from .nodes import ClusterError, find_node
    n = find_node(record, to)
    name = pod["metadata"]["name"]
    if pod["spec"].get("nodeName") == to:
        raise ClusterError(f"pod {name} runs on {to} already")
    if n.get("failed"):
        raise ClusterError(f"cannot migrate {name} to {to}: the node has failed (`node recover {to}`)")
    node = next(x for x in cluster_nodes(objects) if x.name == to)
    others = [p for p in objects.list("Pod") if active(p) and p["metadata"]["name"] != name]
    unbound = dict(pod, spec=dict(pod["spec"], nodeName=None))
    binding = schedule([unbound], [node], others)[0]
    if binding.node is None:
        raise ClusterError(f"cannot migrate {name} to {binding.details[0]}")


def migrate_pod(root=None, ref: str = "", to: str = "", *, timeout: float = 60, emit=print) -> dict:
    """`migrate pod/NAME --to NODE`: cold, keeping the writable layers, volumes and name."""
    from .members import wake_agents
    from .nodes import ClusterError, ClusterStore
    store = ClusterStore(root)
    record = store.must_load()
    objects = ObjectStore(store.root)
    name = pod_name(ref)
    pod = objects.get("Pod", name)
    if pod is None:
        raise ClusterError(f'pod "{name}" not found (see `minicontainer get pods -o wide`)')
    if not pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp") or \
            (pod["metadata"].get("annotations") or {}).get(MIGRATE_TO):
        raise ClusterError(f"pod {name} is not running on a node (pending, terminating or migrating)")
    check_target(objects, record, pod, to)
    source, t0 = pod["spec"]["nodeName"], time.time()
    from .members import node_ready
    if record["nodes"].get(source, {}).get("failed") or not node_ready(store.root, source):
        raise ClusterError(f"cannot migrate {name}: its node {source} is not Ready (its agent must stop "
                           "the pod; after the node timeout the pod is rescheduled anyway)")

    def mark(p):
        p["metadata"].setdefault("annotations", {}).update({MIGRATE_TO: to, PHASE: "leaving"})
    objects.update("Pod", name, mark)
    wake_agents(objects)
    emit(f"pod/{name}: leaving {source} (out of its Services, then stopped)")
    deadline = t0 + timeout
    while time.time() < deadline:
        p = objects.get("Pod", name) or {}
        ann = (p.get("metadata") or {}).get("annotations") or {}
        if ann.get(PHASE) == "stopped" and p["spec"].get("nodeName") == to and is_ready(p):
            break
        time.sleep(0.05)
    else:
        def unmark(p):                                      # not begun: the source keeps it
            if p["metadata"]["annotations"].get(MIGRATE_TO):
                for key in (MIGRATE_TO, PHASE, DRAINING_SINCE, PREPARED):
                    p["metadata"]["annotations"].pop(key, None)
        objects.update("Pod", name, unmark)
        raise ClusterError(f"migrate {name}: not Running on {to} after {timeout:g}s (see `describe pod {name}`)")
    up = time.time()
    stopped = float(ann[STOPPED_AT])
    result = {"pod": name, "from": source, "to": to, "downtime": up - stopped, "total": up - t0,
              "ip": p["status"].get("podIP")}
    objects.record_event(p, "Migrated", f"Cold-migrated from {source} to {to}: down "
                                        f"{result['downtime']:.2f}s", source="minicontainer-migrate")
    emit(f"pod/{name} migrated {source} → {to}: downtime {result['downtime']:.2f}s "
         f"(container stopped → Ready again), {result['total']:.2f}s in all; new IP {result['ip']}")
    return result


def is_ready(pod: dict) -> bool:
    from ..orchestration.controllers import ready
    return ready(pod)


# ── the source agent's half ───────────────────────────────────────────────────────────────

def migrate_out(agent, pod: dict, records: dict) -> None:
    """On the source node, one step per turn: out of the Services, then stop, carry, rebind."""
    from ..orchestration import pods as rt
    from ..orchestration.kubelet import container_name, runtime_name
    objects, kubelet = agent.store, agent.kubelet
    ann = pod["metadata"]["annotations"]
    name = pod["metadata"]["name"]
    if ann.get(PHASE) == "leaving":
        def unready(p):
            p["metadata"]["annotations"][PHASE] = "draining"
            for c in (p.get("status") or {}).get("conditions", []):
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = "False"
            p["metadata"]["annotations"][DRAINING_SINCE] = str(time.time())
        objects.update("Pod", name, unready)
        from .members import wake_agents
        from .nodes import wake_controller
        wake_controller(objects.root)                       # its Endpoints drop the pod now
        wake_agents(objects)                                # the target prepares meanwhile
        kubelet.soon(0.2)
        return
    waited = time.time() - float(ann.get(DRAINING_SINCE, 0))
    if (kubelet.in_endpoints(pod) and waited < 5) or (not ann.get(PREPARED) and waited < PREPARE_WAIT):
        kubelet.soon(0.2)
        return                          # Services still send it connections, or the target is not ready
    from ..stop import stop_container
    members = [records[container_name(pod, c)] for c in pod["spec"]["containers"]
               if container_name(pod, c) in records]
    for rec in members:
        stop_container(rec.id, pod["spec"].get("terminationGracePeriodSeconds", 30), root=kubelet.root)
    stopped = time.time()
    notes = kubelet.notes(pod)
    carried = {"containers": {}}
    for rec in members:
        cname = rec.name[len(runtime_name(pod)) + 1:]
        carried["containers"][cname] = {"restarts": notes["containers"].get(cname, {}).get("restarts", 0),
                                        "image": commit_layer(kubelet.root, rec, f"{name}-{cname}")}
    kubelet.forget(pod)
    kubelet.save_notes(pod, carried)
    to = ann[MIGRATE_TO]

    def rebind(p):
        p["spec"]["nodeName"] = to
        a = p["metadata"]["annotations"]
        for key in (MIGRATE_TO, DRAINING_SINCE, PREPARED):
            a.pop(key, None)
        a.update({PHASE: "stopped", STOPPED_AT: repr(stopped)})
        p["status"] = {"phase": "Pending"}
    objects.update("Pod", name, rebind)
    from .members import wake_agents
    wake_agents(objects)
    rt.remove_pod(runtime_name(pod), force=True, root=kubelet.root)   # after: not in the downtime


# ── the target agent's half ───────────────────────────────────────────────────────────────

def migrate_in(agent, pod: dict, records: dict) -> None:
    """On the target node, while the source still serves: the pod's sandbox and volumes
    (kubelet.start_sandbox, in a worker: it waits for a pause process and a veth), then
    the annotation that lets the source stop. After the rebind the kubelet finds the
    sandbox running and only starts the containers."""
    from ..orchestration import pods as rt
    from ..orchestration.kubelet import runtime_name
    key = runtime_name(pod)
    if (pod["metadata"].get("annotations") or {}).get(PREPARED) or key in agent.workers \
            or time.time() < agent.retry.get(key, (0, 0.0))[1]:
        return                                              # done, at work, or waiting to retry
    infra = records.get(rt.infra_name(key))
    if rt.PodStore(agent.kubelet.root).load(key) is None or infra is None or not agent.kubelet.running(infra):
        agent.start_worker(key, pod, records, lambda p, _: agent.kubelet.start_sandbox(p, None))
        return                                              # its exit wakes us: then annotate

    def prepared(p):
        if (p["metadata"].get("annotations") or {}).get(MIGRATE_TO) == agent.node:
            p["metadata"]["annotations"][PREPARED] = str(time.time())
    agent.store.update("Pod", pod["metadata"]["name"], prepared)
    from .members import wake_agents
    wake_agents(agent.store)


def commit_layer(node_root, rec, base: str) -> str:
    """The container's upper/ as the top layer of an image (storage/commit.py), in the
    image store every node shares; an earlier migration's image of the same pod goes."""
    from ..state import open_store
    from ..storage.commit import commit
    from ..storage.images import image_store
    images = image_store(node_root)
    ref = f"{IMAGE_PREFIX}/{base}:{int(time.time() * 1000)}"
    commit(images, open_store(node_root), rec, ref)         # on top of the earlier one, if any:
    for old in images.list():                               # so that one goes only now (its
        if old.ref.startswith(f"{IMAGE_PREFIX}/{base}:") and old.ref != ref:   # layers stay)
            try:
                images.remove(old.ref)
            except ImageError:                              # removed meanwhile: nothing to do
                pass
    return ref


# ── rebalancing (the primitives are the control plane's: lifecycle.py) ──────────────────────

def rebalance(root=None, *, threshold: int = 1, auto: bool | None = None, timeout: float = 120,
              emit=print) -> list[str]:
    """`cluster rebalance`: move pods off the busiest node until the spread is even."""
    from .lifecycle import next_move, move, spread
    from .nodes import ClusterError, ClusterStore, wake_controller
    store = ClusterStore(root)
    store.must_load()
    if threshold < 1:
        raise ClusterError(f"--threshold {threshold}: at least 1 (a difference of one pod is as even as it gets)")
    if auto is not None:
        with store.locked():
            record = store.must_load()
            record["rebalance"] = {"auto": auto, "threshold": threshold}
            store.save(record)
        wake_controller(store.root)
        emit(f"automatic rebalancing {'on' if auto else 'off'} (threshold {threshold})")
    objects = ObjectStore(store.root)
    moved, deadline = [], time.time() + timeout
    while time.time() < deadline:
        pod = next_move(objects, threshold)
        if pod is None:
            counts = spread(objects)
            settled = not any(not is_ready(p) or p["metadata"].get("deletionTimestamp")
                              for p in objects.list("Pod"))
            if settled:
                emit("balanced: " + ", ".join(f"{n} {c}" for n, c in sorted(counts.items())))
                return moved
            time.sleep(0.2)
            continue
        move(objects, pod, f"Moved off {pod['spec']['nodeName']}, the busiest node (rebalance)")
        wake_controller(store.root)
        emit(f"moving pod {pod['metadata']['name']} off {pod['spec']['nodeName']}")
        moved.append(pod["metadata"]["name"])
        time.sleep(0.2)
    raise ClusterError(f"rebalance: not balanced after {timeout:g}s (see `minicontainer node ls`)")


