"""The scheduler: which node runs each pod. A pure function — no files, no processes.

    schedule(pods, nodes) -> [Binding(pod, node or None, reason)]

Kubernetes' kube-scheduler filters the nodes a pod fits on (enough free CPU and memory for
its requests, the node ready), then scores the rest and binds the pod to the best one by
setting spec.nodeName. Here the same two phases, with two rules: a node must be Ready and
have room for the pod's requests; among those, the one with the most free CPU wins (ties:
the name). Today there is one node, this machine; a cluster of nodes (a later step) passes
more, and `describe pod` prints the reasons either way.
"""
from __future__ import annotations

from ..records import record


@record(frozen=True)
class Node:
    name: str
    cpu_millis: int                 # allocatable
    memory: int                     # bytes
    ready: bool = True


@record(frozen=True)
class Binding:
    pod: str
    node: str | None
    reason: str


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


def schedule(pods: list[dict], nodes: list[Node], bound: list[dict] = ()) -> list[Binding]:
    """Bind each unbound pod; `bound` are the pods already running somewhere (they use room)."""
    free = {n.name: [n.cpu_millis, n.memory] for n in nodes}
    for pod in bound:
        node = pod.get("spec", {}).get("nodeName")
        if node in free:
            cpu, mem = requests_of(pod)
            free[node][0] -= cpu
            free[node][1] -= mem
    out = []
    for pod in pods:
        cpu, mem = requests_of(pod)
        name = pod["metadata"]["name"]
        fits, why_not = [], []
        for n in nodes:
            if not n.ready:
                why_not.append(f"{n.name}: not ready")
            elif free[n.name][0] < cpu:
                why_not.append(f"{n.name}: Insufficient cpu")
            elif free[n.name][1] < mem:
                why_not.append(f"{n.name}: Insufficient memory")
            else:
                fits.append(n)
        if not fits:
            out.append(Binding(name, None, f"0/{len(nodes)} nodes are available: " + ", ".join(why_not)))
            continue
        best = min(fits, key=lambda n: (-free[n.name][0], n.name))
        free[best.name][0] -= cpu
        free[best.name][1] -= mem
        out.append(Binding(name, best.name, f"Successfully assigned default/{name} to {best.name}"))
    return out
