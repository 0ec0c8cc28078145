"""The scheduler: which node runs each pod. A pure function — no files, no processes.

    schedule(pods, nodes, bound) -> [Binding(pod, node or None, reason, details)]

Kubernetes' kube-scheduler binds each pod in two phases, and so does this one:

  filter   a node is out if it is not Ready; cordoned (spec.unschedulable); has a taint with
           effect NoSchedule/NoExecute the pod does not tolerate; lacks a label of the pod's
           nodeSelector; has too little CPU or memory left for the pod's requests; or runs
           a pod that the pod's required podAntiAffinity (topologyKey kubernetes.io/hostname)
           selects.
  score    among the rest, the least allocated wins: the share of CPU and of memory that stays
           free after the pod, averaged, 0-100 (Kubernetes' NodeResourcesLeastAllocated). A pod
           without requests counts as 100m CPU and 200Mi memory here (Kubernetes does the same
           for scoring), so equal pods spread evenly: the idea behind VMware's DRS.
           Preferred pod anti-affinity takes its weight off a node running a selected pod.
           Ties: the node's name.

Every node's verdict is kept (`details`): `describe pod` prints why each node was chosen or
refused. The nodes are this machine ("minicontainer") or a cluster's (minicontainer/cluster/).
"""
from __future__ import annotations

from ..records import record

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
DEFAULT_CPU, DEFAULT_MEMORY = 100, 200 << 20       # scoring only: a pod without requests
HOSTNAME = "kubernetes.io/hostname"


@record(frozen=True)
class Node:
    name: str
    cpu_millis: int                 # allocatable
    memory: int                     # bytes
    ready: bool = True
    unschedulable: bool = False     # cordoned
    labels: tuple = ()              # ((key, value), …)
    taints: tuple = ()              # ((key, value, effect), …)


@record(frozen=True)
class Binding:
    pod: str
    node: str | None
    reason: str
    details: tuple = ()             # one line per node: chosen, fits (score) or why not


def cpu_millis(value) -> int:
    """Kubernetes CPU quantities: 2, 0.5, "250m" → millicores."""
    text = str(value)
    return int(text[:-1]) if text.endswith("m") else int(round(float(text) * 1000))


SUFFIXES = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(value) -> int:
    """Kubernetes memory quantities: 64Mi, 1G, 128974848 → bytes."""
    text = str(value)
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[:-len(suffix)]) * SUFFIXES[suffix])
    return int(float(text))


def requests_of(pod: dict) -> tuple[int, int]:
    """The pod's requests: the sum over its containers (cpu millicores, memory bytes)."""
    cpu = mem = 0
    for c in pod.get("spec", {}).get("containers", []):
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += cpu_millis(req["cpu"]) if "cpu" in req else 0
        mem += memory_bytes(req["memory"]) if "memory" in req else 0
    return cpu, mem


def labels_match(selector: dict, labels: dict) -> bool:
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def tolerates(pod: dict, key: str, value: str, effect: str) -> bool:
    for t in pod.get("spec", {}).get("tolerations") or []:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", key):
            return True
        if t.get("key") == key and t.get("value", "") == (value or ""):
            return True
    return False


def anti_affinity(pod: dict) -> tuple[list, list]:
    """(required label selectors, [(weight, selector)] preferred), per node (hostname)."""
    aa = (pod.get("spec", {}).get("affinity") or {}).get("podAntiAffinity") or {}
    required = [t.get("labelSelector") or {} for t in aa.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
    preferred = [(p.get("weight", 1), (p.get("podAffinityTerm") or {}).get("labelSelector") or {})
                 for p in aa.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    return required, preferred


def refusal(pod: dict, n: Node, free: list, placed: list) -> str | None:
    """Why `pod` cannot go to `n` (the filters, in Kubernetes' order), or None: it fits."""
    if not n.ready:
        return "not ready"
    if n.unschedulable and not tolerates(pod, UNSCHEDULABLE_TAINT, "", "NoSchedule"):
        return "cordoned (unschedulable)"
    for key, value, effect in n.taints:
        if effect in ("NoSchedule", "NoExecute") and not tolerates(pod, key, value, effect):
            return f"untolerated taint {{{key}{'=' + value if value else ''}:{effect}}}"
    labels = dict(n.labels)
    for k, v in (pod.get("spec", {}).get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return f"didn't match the pod's nodeSelector ({k}={v})"
    cpu, mem = requests_of(pod)
    if free[0] < cpu:
        return f"Insufficient cpu (requests {cpu}m, {max(free[0], 0)}m free)"
    if free[1] < mem:
        return f"Insufficient memory (requests {mem >> 20}Mi, {max(free[1], 0) >> 20}Mi free)"
    required, _ = anti_affinity(pod)
    for other in placed:
        if any(labels_match(sel, other["metadata"].get("labels") or {}) for sel in required):
            return f"didn't match pod anti-affinity rules ({other['metadata']['name']} runs there)"
    return None


def score(pod: dict, n: Node, free: list, placed: list) -> int:
    """Least allocated: the mean share of CPU and memory left free after the pod, 0-100."""
    cpu, mem = requests_of(pod)
    cpu, mem = cpu or DEFAULT_CPU, mem or DEFAULT_MEMORY
    left = ((free[2] - cpu) / max(n.cpu_millis, 1) + (free[3] - mem) / max(n.memory, 1)) / 2
    value = round(100 * max(left, 0))
    _, preferred = anti_affinity(pod)
    for weight, sel in preferred:
        if any(labels_match(sel, o["metadata"].get("labels") or {}) for o in placed):
            value -= weight
    return value


def schedule(pods: list[dict], nodes: list[Node], bound: list[dict] = ()) -> list[Binding]:
    """Bind each unbound pod; `bound` are the pods already running somewhere (they use room)."""
    # free: [cpu, memory] by requests (the filter), and by requests-or-defaults (the score)
    free = {n.name: [n.cpu_millis, n.memory, n.cpu_millis, n.memory] for n in nodes}
    placed = {n.name: [] for n in nodes}

    def take(node: str, pod: dict) -> None:
        cpu, mem = requests_of(pod)
        f = free[node]
        f[0], f[1], f[2], f[3] = f[0] - cpu, f[1] - mem, f[2] - (cpu or DEFAULT_CPU), f[3] - (mem or DEFAULT_MEMORY)
        placed[node].append(pod)
    for pod in bound:
        if pod.get("spec", {}).get("nodeName") in free:
            take(pod["spec"]["nodeName"], pod)
    out = []
    for pod in pods:
        name = pod["metadata"]["name"]
        fits, details = {}, []
        for n in nodes:
            why = refusal(pod, n, free[n.name], placed[n.name])
            if why is None:
                fits[n.name] = score(pod, n, free[n.name], placed[n.name])
            else:
                details.append(f"{n.name}: {why}")
        if not fits:
            out.append(Binding(name, None, f"0/{len(nodes)} nodes are available: " +
                               ", ".join(details), tuple(details)))
            continue
        best = min(fits, key=lambda node: (-fits[node], node))
        details = [f"{node}: {'chosen' if node == best else 'fits'}, score {s} (least allocated)"
                   for node, s in sorted(fits.items(), key=lambda kv: (-kv[1], kv[0]))] + details
        take(best, pod)
        out.append(Binding(name, best, f"Successfully assigned {pod['metadata'].get('namespace', 'default')}"
                                       f"/{name} to {best}", tuple(details)))
    return out
