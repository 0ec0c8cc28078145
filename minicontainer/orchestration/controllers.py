"""The controllers: one function each, observe → diff → act, writing only what differs.

    https://kubernetes.io/docs/concepts/architecture/controller/

    deployment   Deployment → one ReplicaSet per pod template (named by its hash); a rolling
                 update scales the new one up and the old ones down within maxSurge and
                 maxUnavailable; the old ones stay (at 0) as the revision history
    replicaset   ReplicaSet → exactly spec.replicas Pods carrying its labels
    scheduler    Pods without spec.nodeName → bound to a node (scheduler.py, a pure function)
    pvc          PersistentVolumeClaim → a named volume (the data outlives every pod)
    endpoints    Service → Endpoints: the addresses of its ready pods (services.py programs them)
    hpa          HorizontalPodAutoscaler → the Deployment's replicas, from CPU use / requests

Each is idempotent — run twice, the second run changes nothing — and keeps nothing in memory
that is not also in the store: killed at any line, the next run finishes the job.
"""
from __future__ import annotations

import hashlib
import json
import math
import secrets
import time

from .scheduler import Node, cpu_millis, schedule
from .store import ObjectStore, matches, now_rfc3339

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
SCHEDULING = "scheduler.minicontainer.io/decision"   # every node's verdict (describe pod)


def owned_by(obj: dict, owner: dict) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"]
               for r in obj["metadata"].get("ownerReferences") or [])


def owner_ref(owner: dict) -> list[dict]:
    return [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
             "uid": owner["metadata"]["uid"], "controller": True}]


def active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def ready(pod: dict) -> bool:
    return active(pod) and any(c["type"] == "Ready" and c["status"] == "True"
                               for c in (pod.get("status") or {}).get("conditions", []))


# ── Deployment ─────────────────────────────────────────────────────────────────────────────

def template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def resolve_count(value, total: int, round_up: bool) -> int:
    """maxSurge/maxUnavailable: a number, or a percentage of the replicas."""
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def sync_deployment(store: ObjectStore, d: dict) -> None:
    ns = d["metadata"]["namespace"]
    spec = d["spec"]
    desired = spec.get("replicas", 1)
    sets = [rs for rs in store.list("ReplicaSet", ns) if owned_by(rs, d)]
    h = template_hash(spec["template"])
    new = next((rs for rs in sets if rs["metadata"]["labels"].get(HASH_LABEL) == h), None)
    revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, 0)) for rs in sets]
    top = max(revisions, default=0)
    if new is None:
        new = make_replicaset(store, d, h, top + 1)
        sets.append(new)
    elif int(new["metadata"]["annotations"].get(REVISION, 0)) != top:   # rollout undo: newest again
        store.update("ReplicaSet", new["metadata"]["name"],
                     lambda rs: rs["metadata"]["annotations"].__setitem__(REVISION, str(top + 1)), ns)
    old = [rs for rs in sets if rs is not new and rs["metadata"]["name"] != new["metadata"]["name"]]
    pods = [p for p in store.list("Pod", ns) if active(p)]

    def pods_of(rs):
        return [p for p in pods if owned_by(p, rs)]

    new_count = new["spec"]["replicas"]
    old_count = sum(rs["spec"]["replicas"] for rs in old)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        for rs in old:
            scale_replicaset(store, d, rs, 0)
        if not any(pods_of(rs) for rs in old):
            scale_replicaset(store, d, new, desired)
    else:
        rolling = strategy.get("rollingUpdate") or {}
        surge = resolve_count(rolling.get("maxSurge", "25%"), desired, True)
        unavailable = resolve_count(rolling.get("maxUnavailable", "25%"), desired, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1                                   # as Kubernetes: never both zero
        if not old_count:
            scale_replicaset(store, d, new, desired)
        else:
            allowed = max(new_count, min(desired, desired + surge - old_count))
            if allowed > new_count:
                scale_replicaset(store, d, new, allowed)
                new_count = allowed
            available = sum(1 for p in pods if ready(p) and (owned_by(p, new) or
                                                             any(owned_by(p, rs) for rs in old)))
            can_remove = available - (desired - unavailable)
            for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
                if can_remove <= 0:
                    break
                take = min(can_remove, rs["spec"]["replicas"])
                if take:
                    scale_replicaset(store, d, rs, rs["spec"]["replicas"] - take)
                    can_remove -= take
    prune_history(store, d, old)
    write_deployment_status(store, d, new, old, pods_of)


def make_replicaset(store: ObjectStore, d: dict, h: str, revision: int) -> dict:
    template = json.loads(json.dumps(d["spec"]["template"]))
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    selector = dict(d["spec"]["selector"].get("matchLabels") or {}, **{HASH_LABEL: h})
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                       "labels": dict(template["metadata"]["labels"]),
                       "annotations": {REVISION: str(revision)}, "ownerReferences": owner_ref(d)},
          "spec": {"replicas": 0, "selector": {"matchLabels": selector}, "template": template}}
    return store.create(rs)


def scale_replicaset(store: ObjectStore, d: dict, rs: dict, replicas: int) -> None:
    if rs["spec"]["replicas"] == replicas:
        return
    verb = "up" if replicas > rs["spec"]["replicas"] else "down"
    store.update("ReplicaSet", rs["metadata"]["name"],
                 lambda o: o["spec"].__setitem__("replicas", replicas), rs["metadata"]["namespace"])
    rs["spec"]["replicas"] = replicas
    store.record_event(d, "ScalingReplicaSet",
                       f"Scaled {verb} replica set {rs['metadata']['name']} to {replicas}",
                       source="deployment-controller")


def prune_history(store: ObjectStore, d: dict, old: list) -> None:
    limit = d["spec"].get("revisionHistoryLimit", 10)
    empty = sorted((rs for rs in old if rs["spec"]["replicas"] == 0),
                   key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, 0)))
    for rs in empty[:max(0, len(empty) - limit)]:
        if not any(owned_by(p, rs) for p in store.list("Pod", rs["metadata"]["namespace"])):
            store.delete("ReplicaSet", rs["metadata"]["name"], rs["metadata"]["namespace"])


def write_deployment_status(store, d, new, old, pods_of) -> None:
    all_pods = pods_of(new) + [p for rs in old for p in pods_of(rs)]
    desired = d["spec"].get("replicas", 1)
    status = {"observedGeneration": d["metadata"].get("generation", 1),
              "replicas": len(all_pods), "updatedReplicas": len(pods_of(new)),
              "readyReplicas": sum(1 for p in all_pods if ready(p)),
              "availableReplicas": sum(1 for p in all_pods if ready(p))}
    status["unavailableReplicas"] = max(0, desired - status["availableReplicas"])
    done = status["updatedReplicas"] == desired == status["replicas"] == status["availableReplicas"]
    status["conditions"] = [
        {"type": "Available", "status": str(status["availableReplicas"] >= desired - resolve_count(
            ((d["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
            desired, False)),
         "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True",
         "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
         "message": f'ReplicaSet "{new["metadata"]["name"]}" ' +
                    ("has successfully progressed." if done else "is progressing.")}]
    set_status(store, d, status)


def set_status(store: ObjectStore, obj: dict, status: dict) -> None:
    if obj.get("status") == status:
        return

    def change(o):
        o["status"] = status
    store.update(obj["kind"], obj["metadata"]["name"], change, obj["metadata"]["namespace"])


# ── ReplicaSet ─────────────────────────────────────────────────────────────────────────────

def sync_replicaset(store: ObjectStore, rs: dict) -> None:
    ns = rs["metadata"]["namespace"]
    pods = [p for p in store.list("Pod", ns) if owned_by(p, rs) and active(p)]
    want = rs["spec"]["replicas"]
    for _ in range(want - len(pods)):
        pods.append(make_pod(store, rs))
    if len(pods) > want:
        # the least useful go first: not ready, then the youngest (as Kubernetes ranks them)
        ranked = sorted(pods, key=lambda p: (ready(p), p["metadata"]["creationTimestamp"]), reverse=False)
        doomed = ranked[:len(pods) - want]
        for p in doomed:
            request_deletion(store, p)
            store.record_event(rs, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                               source="replicaset-controller")
        pods = [p for p in pods if p not in doomed]
    status = {"replicas": len(pods), "readyReplicas": sum(1 for p in pods if ready(p)),
              "availableReplicas": sum(1 for p in pods if ready(p)),
              "observedGeneration": rs["metadata"].get("generation", 1)}
    set_status(store, rs, status)


def make_pod(store: ObjectStore, rs: dict) -> dict:
    template = json.loads(json.dumps(rs["spec"]["template"]))
    name = f"{rs['metadata']['name']}-{secrets.token_hex(3)[:5]}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": rs["metadata"]["namespace"],
                        "labels": template["metadata"].get("labels", {}),
                        "annotations": template["metadata"].get("annotations", {}),
                        "ownerReferences": owner_ref(rs)},
           "spec": template["spec"]}
    store.create(pod)
    store.record_event(rs, "SuccessfulCreate", f"Created pod: {name}", source="replicaset-controller")
    return pod


def request_deletion(store: ObjectStore, pod: dict) -> None:
    """Mark the pod; the kubelet stops it (grace period) and removes the object."""
    def mark(p):
        p["metadata"].setdefault("deletionTimestamp", now_rfc3339())
        p["metadata"].setdefault("deletionGracePeriodSeconds",
                                 p["spec"].get("terminationGracePeriodSeconds", 30))
    store.update("Pod", pod["metadata"]["name"], mark, pod["metadata"]["namespace"])
    pod["metadata"]["deletionTimestamp"] = now_rfc3339()


# ── scheduler binding ─────────────────────────────────────────────────────────────────────

def this_node() -> Node:
    import os
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Node(name="minicontainer", cpu_millis=(os.cpu_count() or 1) * 1000, memory=pages)


def sync_scheduling(store: ObjectStore, pods: list[dict]) -> None:
    unbound = [p for p in pods if not p["spec"].get("nodeName") and active(p)]
    if not unbound:
        return
    from ..cluster.members import cluster_nodes, wake_agents
    bound = [p for p in pods if p["spec"].get("nodeName") and active(p)]
    for b in schedule(unbound, cluster_nodes(store) or [this_node()], bound):
        pod = next(p for p in unbound if p["metadata"]["name"] == b.pod)
        if b.node is None:
            store.record_event(pod, "FailedScheduling", b.reason, "Warning", source="default-scheduler")
            continue

        def bind(p, b=b):
            p["spec"]["nodeName"] = b.node
            p["metadata"].setdefault("annotations", {})[SCHEDULING] = "\n".join(b.details)
        store.update("Pod", b.pod, bind, pod["metadata"]["namespace"])
        pod["spec"]["nodeName"] = b.node
        store.record_event(pod, "Scheduled", b.reason, source="default-scheduler")
    wake_agents(store)


# ── PersistentVolumeClaim ─────────────────────────────────────────────────────────────────

def sync_claim(store: ObjectStore, pvc: dict) -> None:
    """Bind a claim to a named volume pvc-<uid> (dynamic provisioning, reclaim policy Delete)."""
    if (pvc.get("status") or {}).get("phase") == "Bound" and pvc["spec"].get("volumeName"):
        return
    from ..storage.volumes import volume_store
    name = f"pvc-{pvc['metadata']['uid']}"
    volumes = volume_store(store.root)
    if name not in [v.name for v in volumes.list()]:
        volumes.create(name)
    store.update("PersistentVolumeClaim", pvc["metadata"]["name"],
                 lambda o: o["spec"].__setitem__("volumeName", name), pvc["metadata"]["namespace"])
    status = {"phase": "Bound", "accessModes": pvc["spec"].get("accessModes", ["ReadWriteOnce"]),
              "capacity": {"storage": ((pvc["spec"].get("resources") or {}).get("requests") or {})
                           .get("storage", "1Gi")}}
    pvc = store.get("PersistentVolumeClaim", pvc["metadata"]["name"], pvc["metadata"]["namespace"])
    set_status(store, pvc, status)
    store.record_event(pvc, "ProvisioningSucceeded", f"Successfully provisioned volume {name}",
                       source="persistentvolume-controller")


def remove_released_volumes(store: ObjectStore) -> None:
    """The volume of a deleted claim goes once no container names it (reclaim policy Delete)."""
    from ..state import StateStore
    from ..storage.volumes import volume_names, volume_store
    claims = {f"pvc-{c['metadata']['uid']}" for c in store.list("PersistentVolumeClaim")}
    volumes = volume_store(store.root)
    for v in volumes.list():
        if v.name.startswith("pvc-") and v.name not in claims:
            users = [r.name for r in StateStore(store.root).list() if v.name in volume_names(r.config)]
            if not users:
                volumes.remove(v.name, users)


# ── HorizontalPodAutoscaler ───────────────────────────────────────────────────────────────

def sync_hpa(store: ObjectStore, hpa: dict, usage, window_override: float | None) -> None:
    """desired = ceil(current × utilization / target), within min/max; scaling down takes the
    highest recommendation of the stabilization window (default 300 s), so a short dip in
    load does not remove pods that are needed again a moment later."""
    ns = hpa["metadata"]["namespace"]
    spec = hpa["spec"]
    ref = spec["scaleTargetRef"]
    d = store.get("Deployment", ref["name"], ns)
    if d is None:
        return
    target = next((m["resource"]["target"]["averageUtilization"] for m in spec.get("metrics") or []
                   if m.get("type") == "Resource"), 80)
    pods = [p for p in store.list("Pod", ns, d["spec"]["selector"]) if ready(p)]
    current = d["spec"].get("replicas", 1)
    utilizations = []
    for p in pods:
        request = sum(cpu_millis(((c.get("resources") or {}).get("requests") or {}).get("cpu", 0))
                      for c in p["spec"]["containers"])
        used = usage(p)                                     # millicores, or None (not measured yet)
        if request and used is not None:
            utilizations.append(100 * used / request)
    status = dict(hpa.get("status") or {})
    now = time.time()
    notes = store.dir / ".hpa" / f"{ns}.{hpa['metadata']['name']}.json"
    try:                                                    # the recommendations of the window
        history = [h for h in json.loads(notes.read_text()) if now - h[0] < 3600]
    except (OSError, ValueError):
        history = []
    if utilizations:
        average = sum(utilizations) / len(utilizations)
        raw = math.ceil(len(utilizations) * average / target) if abs(average / target - 1) > 0.1 else current
        raw = max(spec.get("minReplicas", 1), min(spec["maxReplicas"], raw))
        history.append([now, raw])
        window = window_override if window_override is not None else \
            ((spec.get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
        recent = [r for t, r in history if now - t <= window]
        desired = raw if raw >= current else min(current, max(recent))
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": round(average)}}}]
        if desired != current:
            store.update("Deployment", d["metadata"]["name"],
                         lambda o: o["spec"].__setitem__("replicas", desired), ns)
            why = "above" if desired > current else "below"
            store.record_event(hpa, "SuccessfulRescale", f"New size: {desired}; reason: cpu resource "
                               f"utilization (percentage of request) {why} target",
                               source="horizontal-pod-autoscaler")
            status["lastScaleTime"] = now_rfc3339()
        status["desiredReplicas"] = desired
    status["currentReplicas"] = current
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text(json.dumps(history[-200:]))
    set_status(store, hpa, status)
