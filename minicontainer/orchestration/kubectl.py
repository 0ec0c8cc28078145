"""kubectl's verbs over the object store: apply, get, describe, scale, rollout, delete, top.

    https://kubernetes.io/docs/reference/kubectl/

Verbs write specs and read statuses; they never start a container themselves — the
controller does (controller.py), and every verb that changes the store makes sure it runs and
nudges it. Output is shaped like kubectl's (columns, words, `-o json|yaml` as a List of
objects in Kubernetes' own shapes), so what students type here works on a real cluster.
"""
from __future__ import annotations

import json
import time

from ..errors import MinicontainerError
from .store import PLURALS, ObjectStore, StoreError, now_rfc3339, parse_rfc3339

ALIASES = {"pod": "Pod", "pods": "Pod", "po": "Pod",
           "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
           "replicaset": "ReplicaSet", "replicasets": "ReplicaSet", "rs": "ReplicaSet",
           "service": "Service", "services": "Service", "svc": "Service",
           "endpoints": "Endpoints", "ep": "Endpoints",
           "persistentvolumeclaim": "PersistentVolumeClaim", "persistentvolumeclaims":
           "PersistentVolumeClaim", "pvc": "PersistentVolumeClaim",
           "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
           "secret": "Secret", "secrets": "Secret",
           "horizontalpodautoscaler": "HorizontalPodAutoscaler", "horizontalpodautoscalers":
           "HorizontalPodAutoscaler", "hpa": "HorizontalPodAutoscaler",
           "event": "Event", "events": "Event", "ev": "Event"}
GROUPS = {"Deployment": "apps", "ReplicaSet": "apps", "HorizontalPodAutoscaler": "autoscaling"}


def kind_of(word: str) -> str:
    kind = ALIASES.get(word.lower().split(".")[0])
    if kind is None:
        raise MinicontainerError(f'error: the server doesn\'t have a resource type "{word}" '
                                 f"(minicontainer knows: pods, deployments, replicasets, services, "
                                 "endpoints, pvc, configmaps, secrets, hpa, events)")
    return kind


def split_ref(ref: str, name: str | None = None) -> tuple[str, str]:
    """"deployment/web" or ("deployment", "web") → ("Deployment", "web")."""
    if "/" in ref and name is None:
        kind, _, name = ref.partition("/")
        return kind_of(kind), name
    if name is None:
        raise MinicontainerError(f"error: you must specify the name of the {ref} (e.g. {ref}/NAME)")
    return kind_of(ref), name


def resource_name(obj: dict) -> str:
    group = GROUPS.get(obj["kind"])
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def store_of(root) -> ObjectStore:
    return ObjectStore(root)


def changed(root, **settings) -> None:
    from .controller import ensure_controller
    ensure_controller(root, **settings)


# ── apply / delete ─────────────────────────────────────────────────────────────────────────

def apply(sources: list[str], root=None, stdin=None) -> list[str]:
    """`apply -f`: check every document first (manifests.py); then write them all."""
    from ..storage.images import image_store
    from .manifests import check_documents, load_documents
    images = image_store(root)
    objects = check_documents(load_documents(sources, stdin), images.exists)
    store = store_of(root)
    lines = []
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        obj.pop("status", None)
        if obj["kind"] == "Service":
            keep_allocations(store, obj)
        _, what = store.apply(obj)
        lines.append(f"{resource_name(obj)} {what}")
    changed(root)
    return lines


def keep_allocations(store: ObjectStore, svc: dict) -> None:
    """A Service applied again keeps its ClusterIP and NodePorts (the API server does this)."""
    old = store.get("Service", svc["metadata"]["name"], svc["metadata"].get("namespace", "default"))
    if old is None:
        return
    spec = svc.setdefault("spec", {})
    for key in ("clusterIP", "clusterIPs"):
        if key in old["spec"] and key not in spec:
            spec[key] = old["spec"][key]
    old_ports = {p["port"]: p.get("nodePort") for p in old["spec"].get("ports", [])}
    for p in spec.get("ports", []):
        if "nodePort" not in p and old_ports.get(p["port"]):
            p["nodePort"] = old_ports[p["port"]]


def delete(root=None, sources=(), kind: str | None = None, names=(), wait: bool = True,
           stdin=None, timeout: float = 60) -> list[str]:
    """`delete -f FILE` or `delete KIND NAME…`: Pods are stopped by the kubelet first (their
    grace period), then removed; a Deployment takes its ReplicaSets and Pods with it."""
    from .controllers import request_deletion
    from .manifests import load_documents
    store = store_of(root)
    targets = []
    if sources:
        targets = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "default"))
                   for _, _, d in load_documents(list(sources), stdin)]
    else:
        targets = [(*split_ref(kind, n), "default") for n in names] if kind else []
    if not targets:
        raise MinicontainerError("error: give -f FILE, or KIND NAME (e.g. `delete pod web-1`)")
    lines, pods = [], []
    for k, name, ns in targets:
        obj = store.get(k, name, ns)
        if obj is None:
            raise StoreError(f'Error from server (NotFound): {PLURALS[k]} "{name}" not found')
        if k == "Pod":
            request_deletion(store, obj)
            pods.append((name, ns))
        else:
            store.delete(k, name, ns)
        lines.append(f'{resource_name(obj).split("/")[0]} "{name}" deleted')
    changed(root)
    deadline = time.time() + timeout
    while wait and pods and time.time() < deadline:
        pods = [(n, ns) for n, ns in pods if store.get("Pod", n, ns) is not None]
        time.sleep(0.1)
    return lines


# ── get ─────────────────────────────────────────────────────────────────────────────────────

def get_objects(kind: str, name: str | None = None, root=None) -> list[dict]:
    store = store_of(root)
    if name:
        return [store.must_get(kind, name)]
    objs = store.list(kind, "default")
    if kind == "Event":
        objs.sort(key=lambda e: e["metadata"].get("lastSeen", 0))
    return objs


def as_output(objs: list[dict], single: bool, fmt: str) -> str:
    """-o json|yaml: one object, or a List with items (as kubectl prints them)."""
    clean = [public(o) for o in objs]
    data = clean[0] if single else {"apiVersion": "v1", "kind": "List", "items": clean,
                                    "metadata": {"resourceVersion": ""}}
    if fmt == "json":
        return json.dumps(data, indent=4)
    import yaml
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")


def public(obj: dict) -> dict:
    obj = json.loads(json.dumps(obj))
    obj["metadata"].pop("lastSeen", None)
    return obj


def age(obj: dict) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    return short_duration(time.time() - parse_rfc3339(stamp)) if stamp else "<unknown>"


def short_duration(seconds: float) -> str:
    """kubectl's ages: 45s, 3m12s, 5h, 2d."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def pod_status_word(pod: dict) -> str:
    """The STATUS column of `kubectl get pods`."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    inits = pod["spec"].get("initContainers") or []
    if inits and not any(c["type"] == "Initialized" and c["status"] == "True"
                         for c in status.get("conditions", [])) and status.get("phase") != "Failed":
        return f"Init:0/{len(inits)}"
    word = status.get("phase") or "Pending"
    for cs in status.get("containerStatuses", []):
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            word = state["waiting"]["reason"]
        elif "terminated" in state and word != "Running":
            word = state["terminated"].get("reason") or "Completed"
    if not pod["spec"].get("nodeName") and word == "Pending":
        return "Pending"
    return word


def rows(kind: str, objs: list[dict], wide: bool = False) -> list[tuple]:
    if kind == "Pod":
        head = ("NAME", "READY", "STATUS", "RESTARTS", "AGE") + (("IP", "NODE") if wide else ())
        out = [head]
        for p in objs:
            cs = (p.get("status") or {}).get("containerStatuses", [])
            ready = sum(1 for c in cs if c.get("ready"))
            restarts = sum(c.get("restartCount", 0) for c in cs)
            row = (p["metadata"]["name"], f"{ready}/{len(p['spec']['containers'])}",
                   pod_status_word(p), str(restarts), age(p))
            if wide:
                row += ((p.get("status") or {}).get("podIP") or "<none>", p["spec"].get("nodeName") or "<none>")
            out.append(row)
        return out
    if kind == "Deployment":
        head = ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE") + \
            (("CONTAINERS", "IMAGES", "SELECTOR") if wide else ())
        out = [head]
        for d in objs:
            s = d.get("status") or {}
            row = (d["metadata"]["name"], f"{s.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
                   str(s.get("updatedReplicas", 0)), str(s.get("availableReplicas", 0)), age(d))
            if wide:
                cs = d["spec"]["template"]["spec"]["containers"]
                row += (",".join(c["name"] for c in cs), ",".join(c["image"] for c in cs),
                        ",".join(f"{k}={v}" for k, v in d["spec"]["selector"].get("matchLabels", {}).items()))
            out.append(row)
        return out
    if kind == "ReplicaSet":
        out = [("NAME", "DESIRED", "CURRENT", "READY", "AGE")]
        for rs in objs:
            s = rs.get("status") or {}
            out.append((rs["metadata"]["name"], str(rs["spec"]["replicas"]), str(s.get("replicas", 0)),
                        str(s.get("readyReplicas", 0)), age(rs)))
        return out
    if kind == "Service":
        head = ("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE") + (("SELECTOR",) if wide else ())
        out = [head]
        for s in objs:
            ports = ",".join(f"{p['port']}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
                             + f"/{p.get('protocol', 'TCP')}" for p in s["spec"].get("ports", []))
            row = (s["metadata"]["name"], s["spec"].get("type", "ClusterIP"),
                   s["spec"].get("clusterIP") or "<pending>", "<none>", ports, age(s))
            if wide:
                row += (",".join(f"{k}={v}" for k, v in (s["spec"].get("selector") or {}).items()) or "<none>",)
            out.append(row)
        return out
    if kind == "PersistentVolumeClaim":
        out = [("NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE")]
        modes = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
        for c in objs:
            s = c.get("status") or {}
            out.append((c["metadata"]["name"], s.get("phase", "Pending"), c["spec"].get("volumeName", ""),
                        (s.get("capacity") or {}).get("storage", ""),
                        ",".join(modes.get(m, m) for m in s.get("accessModes", [])),
                        c["spec"].get("storageClassName") or "local", age(c)))
        return out
    if kind == "HorizontalPodAutoscaler":
        out = [("NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE")]
        for h in objs:
            s = h.get("status") or {}
            target = next((m["resource"]["target"].get("averageUtilization") for m in h["spec"].get("metrics", [])), 80)
            current = next((m["resource"]["current"].get("averageUtilization")
                            for m in s.get("currentMetrics", [])), None)
            ref = h["spec"]["scaleTargetRef"]
            out.append((h["metadata"]["name"], f"{ref['kind']}/{ref['name']}",
                        f"cpu: {'<unknown>' if current is None else f'{current}%'}/{target}%",
                        str(h["spec"].get("minReplicas", 1)), str(h["spec"]["maxReplicas"]),
                        str(s.get("currentReplicas", 0)), age(h)))
        return out
    if kind == "Event":
        out = [("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")]
        for e in objs:
            io = e["involvedObject"]
            out.append((short_duration(time.time() - e["metadata"].get("lastSeen", time.time())), e["type"],
                        e["reason"], f"{io['kind'].lower()}/{io['name']}", e["message"]))
        return out
    if kind in ("ConfigMap", "Secret"):
        head = ("NAME", "DATA", "AGE") if kind == "ConfigMap" else ("NAME", "TYPE", "DATA", "AGE")
        out = [head]
        for o in objs:
            n = len(o.get("data") or {}) + len(o.get("stringData") or {})
            out.append((o["metadata"]["name"], str(n), age(o)) if kind == "ConfigMap" else
                       (o["metadata"]["name"], o.get("type", "Opaque"), str(n), age(o)))
        return out
    if kind == "Endpoints":
        out = [("NAME", "ENDPOINTS", "AGE")]
        for e in objs:
            eps = [f"{a['ip']}:{p['port']}" for s in e.get("subsets", []) for a in s.get("addresses", [])
                   for p in s.get("ports", [])]
            out.append((e["metadata"]["name"], ",".join(eps) or "<none>", age(e)))
        return out
    return [("NAME", "AGE")] + [(o["metadata"]["name"], age(o)) for o in objs]


def table(data: list[tuple]) -> str:
    widths = [max(len(r[i]) for r in data) for i in range(len(data[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in data)


def get_text(kind: str, name: str | None, root=None, output: str = "") -> str:
    objs = get_objects(kind, name, root)
    if output in ("json", "yaml"):
        return as_output(objs, bool(name), output)
    if not objs:
        return "No resources found in default namespace."
    return table(rows(kind, objs, wide=output == "wide"))


def watch(kind: str, name: str | None, root, emit, output: str = "", stop=lambda: False) -> None:
    """`get -w`: the table once, then a line for each object whose row changes."""
    last = {}
    first = True
    while not stop():
        objs = get_objects(kind, name, root) if name is None or store_of(root).get(kind, name) else []
        data = rows(kind, objs, wide=output == "wide")
        if first:
            emit(table(data))
            first = False
            last = {r[0 if kind != "Event" else 4]: r for r in data[1:]}
        else:
            widths = [max(len(r[i]) for r in data) for i in range(len(data[0]))]
            for r in data[1:]:
                key = r[0 if kind != "Event" else 4]
                if last.get(key, ())[:2 if kind == "Event" else None] != r[:2 if kind == "Event" else None] \
                        and last.get(key) != r:
                    emit("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
                last[key] = r
        time.sleep(0.3)


# ── describe ──────────────────────────────────────────────────────────────────────────────

def describe(kind: str, name: str, root=None) -> str:
    store = store_of(root)
    obj = store.must_get(kind, name)
    meta = obj["metadata"]
    lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}"]
    labels = meta.get("labels") or {}
    lines.append("Labels:       " + ("\n              ".join(f"{k}={v}" for k, v in labels.items()) or "<none>"))
    lines.append(f"Created:      {meta.get('creationTimestamp')}")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        lines += [f"Node:         {spec.get('nodeName') or '<none>'}",
                  f"Status:       {pod_status_word(obj)}",
                  f"IP:           {status.get('podIP') or '<none>'}"]
        owners = meta.get("ownerReferences") or []
        if owners:
            lines.append(f"Controlled By:  {owners[0]['kind']}/{owners[0]['name']}")
        lines.append("Containers:")
        by_name = {c["name"]: c for c in status.get("containerStatuses", [])}
        for c in spec.get("containers", []):
            cs = by_name.get(c["name"], {})
            state = cs.get("state") or {}
            word = next(iter(state), "waiting").capitalize()
            lines += [f"  {c['name']}:", f"    Image:          {c['image']}",
                      f"    State:          {word}"]
            detail = next(iter(state.values()), {}) if state else {}
            if detail.get("reason"):
                lines.append(f"      Reason:       {detail['reason']}")
            last = (cs.get("lastState") or {}).get("terminated")
            if last:
                lines += ["    Last State:     Terminated", f"      Reason:       {last.get('reason')}",
                          f"      Exit Code:    {last.get('exitCode')}"]
            for section in ("limits", "requests"):          # as kubectl: what the cgroups got
                values = ((c.get("resources") or {}).get(section) or {})
                if values:
                    lines.append(f"    {section.capitalize() + ':':16}")
                    lines += [f"      {k}:{' ' * max(1, 14 - len(k))}{v}" for k, v in values.items()]
            lines += [f"    Ready:          {cs.get('ready', False)}",
                      f"    Restart Count:  {cs.get('restartCount', 0)}"]
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in c:
                    lines.append(f"    {probe[:-5].capitalize() + ':':16}{probe_text(c[probe])}")
        lines.append("Conditions:\n  Type              Status")
        lines += [f"  {c['type']:<17} {c['status']}" for c in status.get("conditions", [])]
        decision = (meta.get("annotations") or {}).get("scheduler.minicontainer.io/decision")
        if decision:                                        # why each node was chosen or refused
            lines.append("Scheduling:\n" + "\n".join(f"  {line}" for line in decision.splitlines()))
    elif kind == "Deployment":
        lines += [f"Selector:     {','.join(f'{k}={v}' for k, v in spec['selector'].get('matchLabels', {}).items())}",
                  f"Replicas:     {spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
                  f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                  f"{status.get('unavailableReplicas', 0)} unavailable",
                  f"StrategyType: {(spec.get('strategy') or {}).get('type', 'RollingUpdate')}",
                  "Pod Template:"]
        lines += [f"  {c['name']}: {c['image']}" for c in spec["template"]["spec"]["containers"]]
    elif kind == "Service":
        lines += [f"Type:         {spec.get('type', 'ClusterIP')}", f"IP:           {spec.get('clusterIP')}",
                  f"Selector:     {','.join(f'{k}={v}' for k, v in (spec.get('selector') or {}).items())}"]
        ep = store.get("Endpoints", name)
        addrs = [a["ip"] for s in (ep or {}).get("subsets", []) for a in s.get("addresses", [])]
        for p in spec.get("ports", []):
            lines.append(f"Port:         {p.get('name') or '<unset>'}  {p['port']}/{p.get('protocol', 'TCP')}")
            lines.append(f"TargetPort:   {p.get('targetPort', p['port'])}/{p.get('protocol', 'TCP')}")
            if p.get("nodePort"):
                lines.append(f"NodePort:     {p.get('name') or '<unset>'}  {p['nodePort']}/{p.get('protocol', 'TCP')}")
        lines.append(f"Endpoints:    {','.join(addrs) or '<none>'}")
    elif kind == "HorizontalPodAutoscaler":
        lines += [f"Reference:    {spec['scaleTargetRef']['kind']}/{spec['scaleTargetRef']['name']}",
                  f"Min replicas: {spec.get('minReplicas', 1)}", f"Max replicas: {spec['maxReplicas']}",
                  f"Current replicas: {status.get('currentReplicas', 0)}"]
    else:
        lines.append("Spec:\n" + "\n".join("  " + line for line in json.dumps(spec or obj.get("data") or {}, indent=2).splitlines()))
    events = store.events_for(kind, name)
    if events:
        data = [("Type", "Reason", "Age", "From", "Message")]
        for e in events:
            data.append((e["type"], e["reason"],
                         short_duration(time.time() - e["metadata"].get("lastSeen", time.time()))
                         + (f" (x{e['count']})" if e["count"] > 1 else ""),
                         e.get("source", {}).get("component", ""), e["message"]))
        lines.append("Events:\n" + "\n".join("  " + line for line in table(data).splitlines()))
    else:
        lines.append("Events:       <none>")
    return "\n".join(lines)


def probe_text(p: dict) -> str:
    how = ("exec " + str(p["exec"]["command"])) if "exec" in p else \
        (f"http-get http://:{p['httpGet']['port']}{p['httpGet'].get('path', '/')}" if "httpGet" in p
         else f"tcp-socket :{p.get('tcpSocket', {}).get('port')}")
    return (f"{how} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
            f"period={p.get('periodSeconds', 10)}s #failure={p.get('failureThreshold', 3)}")


# ── scale / rollout ───────────────────────────────────────────────────────────────────────

def scale(ref: str, replicas: int, root=None) -> str:
    kind, name = split_ref(ref)
    if kind != "Deployment":
        raise MinicontainerError(f"error: minicontainer scales deployments (got {kind.lower()})")
    if replicas < 0:
        raise MinicontainerError("error: --replicas must be 0 or more")
    store = store_of(root)
    if store.update(kind, name, lambda d: d["spec"].__setitem__("replicas", replicas)) is None:
        raise StoreError(f'Error from server (NotFound): deployments.apps "{name}" not found')
    changed(root)
    return f"deployment.apps/{name} scaled"


def rollout_restart(ref: str, root=None) -> str:
    kind, name = split_ref(ref)
    store = store_of(root)

    def restart(d):
        meta = d["spec"]["template"].setdefault("metadata", {})
        meta.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = now_rfc3339()
    if store.update(kind, name, restart) is None:
        raise StoreError(f'Error from server (NotFound): deployments.apps "{name}" not found')
    changed(root)
    return f"deployment.apps/{name} restarted"


def rollout_undo(ref: str, root=None, to_revision: int = 0) -> str:
    """The template of the previous revision (or --to-revision N) becomes the spec again."""
    from .controllers import HASH_LABEL, REVISION, owned_by
    kind, name = split_ref(ref)
    store = store_of(root)
    d = store.must_get(kind, name)
    sets = sorted((rs for rs in store.list("ReplicaSet") if owned_by(rs, d)),
                  key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, 0)))
    if to_revision:
        chosen = [rs for rs in sets if int(rs["metadata"]["annotations"].get(REVISION, 0)) == to_revision]
    else:
        chosen = sets[-2:-1]
    if not chosen:
        raise MinicontainerError(f'error: no rollout history found for deployment "{name}"'
                                 if not to_revision else f"error: unable to find specified revision {to_revision} in history")
    template = json.loads(json.dumps(chosen[0]["spec"]["template"]))
    template["metadata"]["labels"].pop(HASH_LABEL, None)
    store.update(kind, name, lambda o: o["spec"].__setitem__("template", template))
    changed(root)
    return f"deployment.apps/{name} rolled back"


def rollout_history(ref: str, root=None) -> str:
    from .controllers import REVISION, owned_by
    kind, name = split_ref(ref)
    store = store_of(root)
    d = store.must_get(kind, name)
    sets = sorted((rs for rs in store.list("ReplicaSet") if owned_by(rs, d)),
                  key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, 0)))
    data = [("REVISION", "CHANGE-CAUSE")] + [(rs["metadata"]["annotations"].get(REVISION, "?"), "<none>")
                                             for rs in sets]
    return f"deployment.apps/{name}\n" + table(data)


def rollout_status(ref: str, root=None, emit=print, timeout: float = 300) -> None:
    """Wait until the rollout is complete, saying what it waits for (kubectl's words)."""
    kind, name = split_ref(ref)
    store = store_of(root)
    deadline = time.time() + timeout
    said = None
    while True:
        d = store.must_get(kind, name)
        s = d.get("status") or {}
        want = d["spec"].get("replicas", 1)
        if s.get("observedGeneration", 0) < d["metadata"].get("generation", 1):
            msg = "Waiting for deployment spec update to be observed..."
        elif s.get("updatedReplicas", 0) < want:
            msg = (f'Waiting for deployment "{name}" rollout to finish: {s.get("updatedReplicas", 0)} '
                   f"out of {want} new replicas have been updated...")
        elif s.get("replicas", 0) > s.get("updatedReplicas", 0):
            msg = (f'Waiting for deployment "{name}" rollout to finish: '
                   f"{s.get('replicas', 0) - s.get('updatedReplicas', 0)} old replicas are pending termination...")
        elif s.get("availableReplicas", 0) < s.get("updatedReplicas", 0):
            msg = (f'Waiting for deployment "{name}" rollout to finish: {s.get("availableReplicas", 0)} '
                   f"of {s.get('updatedReplicas', 0)} updated replicas are available...")
        else:
            emit(f'deployment "{name}" successfully rolled out')
            return
        if msg != said:
            emit(msg)
            said = msg
        if time.time() > deadline:
            raise MinicontainerError(f'error: timed out waiting for the condition (deployment "{name}")')
        time.sleep(0.2)


# ── containers of pods: logs, exec, top ───────────────────────────────────────────────────

def pod_container(ref: str, container: str | None = None, root=None) -> str:
    """pod/NAME [-c C] → the name of the container record running it now."""
    from .kubelet import container_name
    kind, name = split_ref(ref)
    store = store_of(root)
    if kind == "Deployment":                                 # kubectl logs deployment/web: one of its pods
        from .controllers import ready
        d = store.must_get(kind, name)
        pods = [p for p in store.list("Pod", selector=d["spec"]["selector"]) if ready(p)]
        if not pods:
            raise MinicontainerError(f'error: deployment "{name}" has no ready pod')
        kind, name = "Pod", pods[0]["metadata"]["name"]
    if kind != "Pod":
        raise MinicontainerError(f"error: {kind.lower()} has no containers; use pod/NAME")
    pod = store.must_get("Pod", name)
    containers = pod["spec"]["containers"]
    chosen = containers[0] if container is None else next((c for c in containers if c["name"] == container), None)
    if chosen is None:
        raise MinicontainerError(f"error: container {container} is not valid for pod {name} "
                                 f"(it has: {', '.join(c['name'] for c in containers)})")
    return container_name(pod, chosen)


def top_pods(root=None, interval: float = 0.5) -> str:
    """`top pods`: CPU (millicores) and memory of each pod, read from the pod's cgroup."""
    from ..cgroups import open_cgroup
    from .kubelet import runtime_name
    from .pods import PodStore
    store = store_of(root)
    pods = store.list("Pod", "default")
    runtime = {p["name"]: p for p in PodStore(root).list()}
    groups = {}
    for p in pods:
        rt = runtime.get(runtime_name(p))
        cg = open_cgroup(rt["cgroup"]) if rt else None
        if cg is not None:
            groups[p["metadata"]["name"]] = (cg, cg.stats().get("cpu_usage_ns") or 0)
    start = time.time()
    time.sleep(interval if groups else 0)
    data = [("NAME", "CPU(cores)", "MEMORY(bytes)")]
    for name, (cg, before) in groups.items():
        s = cg.stats()
        millis = ((s.get("cpu_usage_ns") or 0) - before) / 1e6 / max(time.time() - start, 1e-6)
        data.append((name, f"{int(millis)}m", f"{(s.get('memory_usage') or 0) >> 20}Mi"))
    if len(data) == 1:
        return "No resources found in default namespace."
    return table(data)
