"""The object store: Kubernetes objects as JSON files, the cluster's one source of truth.

    <root>/k8s/<plural>/<namespace>/<name>.json      e.g. k8s/deployments/default/web.json
    <root>/k8s/.lock                                  flock(2) held for every change
    <root>/k8s/.resource-version                      the counter every change increments

Kubernetes keeps its objects in etcd behind the API server; each object has a spec (what the
user wants, written by `apply`, `scale`, …) and a status (what is, written by controllers).
Every change bumps metadata.resourceVersion; a change of the spec also bumps
metadata.generation, and a controller records the generation it has acted on in
status.observedGeneration — that is how `rollout status` knows a change was seen.

Writers hold the lock only for one read-modify-write of one file (a JSON file is replaced by
rename, so readers never see half of one): the controller may be killed at any line and the
store is still whole.
"""
from __future__ import annotations

import glob
import json
import os
import time
import uuid
from pathlib import Path

from ..errors import MinicontainerError
from ..state import dir_lock, state_root

PLURALS = {"Pod": "pods", "Deployment": "deployments", "ReplicaSet": "replicasets",
           "Service": "services", "Endpoints": "endpoints", "PersistentVolumeClaim":
           "persistentvolumeclaims", "ConfigMap": "configmaps", "Secret": "secrets",
           "HorizontalPodAutoscaler": "horizontalpodautoscalers", "Event": "events",
           "Node": "nodes", "Lease": "leases"}
EVENTS_KEPT = 20                       # per involved object, the newest


class StoreError(MinicontainerError):
    """A missing object, or a store that cannot be read."""


def now_rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_rfc3339(text: str) -> float:
    import calendar
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class ObjectStore:
    def __init__(self, root=None):
        self.root = state_root(root)
        self.dir = self.root / "k8s"

    # -- files ----------------------------------------------------------------------------
    def locked(self):
        return dir_lock(self.dir)

    def path(self, kind: str, name: str, namespace: str = "default") -> Path:
        return self.dir / PLURALS[kind] / namespace / f"{name}.json"

    def get(self, kind: str, name: str, namespace: str = "default") -> dict | None:
        try:
            return json.loads(self.path(kind, name, namespace).read_text())
        except (OSError, ValueError):
            return None

    def must_get(self, kind: str, name: str, namespace: str = "default") -> dict:
        obj = self.get(kind, name, namespace)
        if obj is None:
            raise StoreError(f'{PLURALS[kind]} "{name}" not found')
        return obj

    def list(self, kind: str, namespace: str | None = None, selector: dict | None = None) -> list[dict]:
        top = self.dir / PLURALS[kind]
        dirs = [top / namespace] if namespace else (sorted(top.iterdir()) if top.is_dir() else [])
        out = []
        for d in dirs:
            for f in sorted(d.glob("*.json")) if d.is_dir() else ():
                try:
                    obj = json.loads(f.read_text())
                except (OSError, ValueError):
                    continue                    # removed meanwhile
                if selector is None or matches(selector, obj["metadata"].get("labels") or {}):
                    out.append(obj)
        return out

    def _write(self, obj: dict) -> None:
        meta = obj["metadata"]
        path = self.path(obj["kind"], meta["name"], meta.get("namespace", "default"))
        path.parent.mkdir(parents=True, exist_ok=True)
        meta["resourceVersion"] = str(self._next_version())
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(obj, indent=1))
        os.replace(tmp, path)

    def _next_version(self) -> int:
        counter = self.dir / ".resource-version"
        try:
            value = int(counter.read_text()) + 1
        except (OSError, ValueError):
            value = 1
        counter.write_text(str(value))
        return value

    # -- changes (each under the lock) ----------------------------------------------------
    def apply(self, obj: dict) -> tuple[dict, str]:
        """Create or update the spec (and data) of an object: (object, "created"|"configured"|
        "unchanged"), the words kubectl apply prints. The status is the controllers'."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        with self.locked():
            old = self.get(obj["kind"], meta["name"], meta["namespace"])
            if old is None:
                meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
                obj.setdefault("status", {})
                self._write(obj)
                return obj, "created"
            new = dict(old)
            for key, value in obj.items():
                if key not in ("metadata", "status"):
                    new[key] = value
            for key in ("labels", "annotations"):
                if key in meta:
                    new["metadata"][key] = meta[key]
            if new == old:
                return old, "unchanged"
            if new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            self._write(new)
            return new, "configured"

    def update(self, kind: str, name: str, change, namespace: str = "default") -> dict | None:
        """Read, change(obj) in place, write — one locked step. None if the object is gone."""
        with self.locked():
            obj = self.get(kind, name, namespace)
            if obj is None:
                return None
            before = json.dumps(obj, sort_keys=True)
            spec = json.dumps(obj.get("spec"), sort_keys=True)
            change(obj)
            if json.dumps(obj, sort_keys=True) != before:
                if json.dumps(obj.get("spec"), sort_keys=True) != spec:
                    obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
                self._write(obj)
            return obj

    def create(self, obj: dict) -> dict:
        """A new object made by a controller (a ReplicaSet, a Pod): the name must be free."""
        meta = obj["metadata"]
        meta.setdefault("namespace", "default")
        with self.locked():
            if self.get(obj["kind"], meta["name"], meta["namespace"]) is not None:
                raise StoreError(f"{obj['kind']} {meta['name']} exists already")
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            obj.setdefault("status", {})
            self._write(obj)
            return obj

    def delete(self, kind: str, name: str, namespace: str = "default") -> bool:
        with self.locked():
            try:
                self.path(kind, name, namespace).unlink()
                return True
            except FileNotFoundError:
                return False

    # -- events ---------------------------------------------------------------------------
    def record_event(self, obj: dict, reason: str, message: str, type_: str = "Normal",
                     source: str = "minicontainer-controller") -> None:
        """An Event about obj; the same reason and message again counts up (as Kubernetes)."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        key = f"{obj['kind']}.{meta['name']}.{reason}.{abs(hash(message)) % 10**8:08d}".lower()
        stamp = now_rfc3339()
        with self.locked():
            event = self.get("Event", key, ns)
            if event is None:
                event = {"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": key, "namespace": ns, "uid": str(uuid.uuid4()),
                                      "creationTimestamp": stamp},
                         "involvedObject": {"kind": obj["kind"], "name": meta["name"],
                                            "namespace": ns, "uid": meta.get("uid")},
                         "reason": reason, "message": message, "type": type_, "count": 0,
                         "firstTimestamp": stamp, "source": {"component": source}}
            event["count"] += 1
            event["lastTimestamp"] = stamp
            event["metadata"]["lastSeen"] = time.time()
            self._write(event)
        self.trim_events(obj)

    def events_for(self, kind: str, name: str, namespace: str = "default") -> list[dict]:
        """An object's events, oldest first. An event's file is named after its object
        (record_event), so only those files are read — not every event of the namespace,
        which made each new event cost O(all events) while fifty pods started."""
        folder = self.dir / PLURALS["Event"] / namespace
        pattern = glob.escape(f"{kind}.{name}.".lower()) + "*.json"
        evs = []
        for f in folder.glob(pattern) if folder.is_dir() else ():
            try:
                e = json.loads(f.read_text())
            except (OSError, ValueError):
                continue                                # removed meanwhile
            if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name:
                evs.append(e)
        return sorted(evs, key=lambda e: e["metadata"].get("lastSeen", 0))

    def trim_events(self, obj: dict) -> None:
        meta = obj["metadata"]
        evs = self.events_for(obj["kind"], meta["name"], meta.get("namespace", "default"))
        for old in evs[:-EVENTS_KEPT]:
            self.delete("Event", old["metadata"]["name"], old["metadata"]["namespace"])


def matches(selector: dict, labels: dict) -> bool:
    """matchLabels (or a plain map, as a Service's selector): every pair present."""
    wanted = selector.get("matchLabels", selector) if "matchLabels" in selector else selector
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())
