"""The scheduler (orchestration/scheduler.py) is a pure function: its filters and its score,
checked without root, processes or files."""
from __future__ import annotations

from minicontainer.orchestration.scheduler import Node, schedule

NODES = [Node(f"node{i}", 1000, 1 << 30, labels=(("kubernetes.io/hostname", f"node{i}"),)) for i in (1, 2, 3)]


def pod(name: str, cpu: str | None = None, labels=None, **spec) -> dict:
    c = {"name": "c", "image": "busybox"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}}
    return {"metadata": {"name": name, "labels": labels or {"app": "web"}}, "spec": {"containers": [c], **spec}}


def placed(bindings) -> dict:
    out = {}
    for b in bindings:
        out[b.node] = out.get(b.node, 0) + 1
    return out


def test_least_allocated_spreads_equal_pods_evenly():
    assert placed(schedule([pod(f"p{i}") for i in range(6)], NODES)) == {"node1": 2, "node2": 2, "node3": 2}


def test_pods_already_bound_count():
    bound = [dict(pod("old"), spec=dict(pod("old")["spec"], nodeName="node1")) for _ in range(2)]
    assert [b.node for b in schedule([pod("a"), pod("b")], NODES, bound)] == ["node2", "node3"]


def test_each_filter_says_why():
    nodes = [Node("node1", 1000, 1 << 30, ready=False), Node("node2", 1000, 1 << 30, unschedulable=True),
             Node("node3", 1000, 1 << 30, taints=(("dedicated", "db", "NoSchedule"),)),
             Node("node4", 100, 1 << 30, labels=(("disk", "ssd"),)), Node("node5", 1000, 1 << 30)]
    b = schedule([pod("p", cpu="500m", nodeSelector={"disk": "ssd"})], nodes)[0]
    assert b.node is None and b.reason.startswith("0/5 nodes are available")
    why = dict(line.split(": ", 1) for line in b.details)
    assert why == {"node1": "not ready", "node2": "cordoned (unschedulable)",
                   "node3": "untolerated taint {dedicated=db:NoSchedule}",
                   "node4": "Insufficient cpu (requests 500m, 100m free)",
                   "node5": "didn't match the pod's nodeSelector (disk=ssd)"}


def test_a_toleration_lets_a_pod_onto_a_tainted_node():
    nodes = [Node("node1", 1000, 1 << 30, taints=(("dedicated", "db", "NoSchedule"),))]
    tolerant = pod("p", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    assert schedule([tolerant], nodes)[0].node == "node1"
    assert schedule([pod("q")], nodes)[0].node is None


def test_required_anti_affinity_keeps_replicas_apart():
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
    spec = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    bindings = schedule([pod(f"p{i}", **spec) for i in range(4)], NODES)
    assert [b.node for b in bindings[:3]] == ["node1", "node2", "node3"] and bindings[3].node is None
    assert "didn't match pod anti-affinity rules" in bindings[3].reason


def test_the_chosen_node_and_the_others_are_explained():
    b = schedule([pod("p", cpu="200m")], NODES, [dict(pod("x", cpu="500m"), spec=dict(
        pod("x", cpu="500m")["spec"], nodeName="node1"))])[0]
    assert b.node == "node2"
    assert b.details[0].startswith("node2: chosen, score") and b.details[-1].startswith("node1: fits, score")


def test_rebalance_moves_one_pod_off_the_busiest_node_at_a_time(tmp_path):
    """lifecycle.next_move/auto_rebalance (`cluster rebalance [--auto]`) on a store of its own."""
    from minicontainer.cluster.lifecycle import auto_rebalance, next_move, write_node_object
    from minicontainer.orchestration.store import ObjectStore
    store = ObjectStore(tmp_path)
    for i in (1, 2, 3):
        write_node_object(tmp_path, {"name": f"node{i}", "cpus": 1.0, "memory": 1 << 30,
                                     "subnet": f"10.244.{i}.0/24", "ip": f"10.250.0.{i}"})
        store.update("Node", f"node{i}", lambda o: o["status"].__setitem__(
            "conditions", [{"type": "Ready", "status": "True"}]))
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    for i, node in enumerate(["node1"] * 3 + ["node2"] * 3):
        store.create({"apiVersion": "v1", "kind": "Pod", "status": ready,
                      "metadata": {"name": f"p{i}", "ownerReferences": [{"uid": "rs"}]},
                      "spec": {"nodeName": node, "containers": []}})
    assert next_move(store, threshold=3) is None                  # 3/3/0 is within 3
    assert next_move(store, threshold=1)["spec"]["nodeName"] == "node2"   # the busiest (ties: name)
    auto_rebalance(store, {"auto": False})
    assert not any(p["metadata"].get("deletionTimestamp") for p in store.list("Pod"))
    auto_rebalance(store, {"auto": True, "threshold": 1})
    moving = [p["metadata"]["name"] for p in store.list("Pod") if p["metadata"].get("deletionTimestamp")]
    assert moving == ["p3"]
    assert next_move(store, threshold=1) is None                  # one at a time: p3 is still going
