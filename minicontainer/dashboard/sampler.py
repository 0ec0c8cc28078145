"""The sampler: once a second, what every container is doing, as the kernel reports it.

    man 7 cgroups (memory.usage_in_bytes, cpuacct.usage, pids.current), man 7 namespaces
    (/proc/PID/ns/*), man 5 proc (/proc/PID/status NSpid)
    shell: watch -n1 'cat /sys/fs/cgroup/memory/minicontainer/*/memory.usage_in_bytes'

One Sampler per dashboard; its tick() builds one message that every browser receives:

    containers   per container: status, and while it runs the gauges (memory against its
                 limit, CPU %, pids against pids.max) — a few integers each tick
    details      what changes rarely (namespaces, processes, layers, veth and bridge): sent
                 when it changed, so 200 containers cost a few hundred file reads a second
    shared       namespaces (type:inode) that more than one container is in — a pod, or
                 `--net container:NAME` — and the host's own (a container without its own
                 user namespace shows the host's inode: that is what "not isolated" looks like)
    events       new lines of <root>/events.log (create, start, die, oom …) and new
                 Kubernetes Events of the orchestration store
    cluster      the nodes, the pods bound to each (spec.nodeName), read from the store

A new browser first gets full(): the same, plus each container's last HISTORY samples (the
history chart) and the host facts `doctor` finds. Records and the store's files are re-read
only when their mtime changed; a running container's counters and /proc/PID/stat are kept
open and re-read with pread (KeptFile): the cost of a tick is about one stat(2) and five
pread(2)s per container.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from pathlib import Path

from ..cgroups import open_cgroup
from ..kernel.namespaces import namespace_ids
from ..orchestration.store import ObjectStore, parse_rfc3339
from ..procfs import describe_process
from ..state import open_store, state_root
from ..status import container_cgroup, current_status
from ..storage.images import image_store

HISTORY = 60                    # samples kept per container: one minute at one a second
PROCS_EVERY = 10                # ticks between reads of cgroup.procs when pids.current did not move
EVENTS_KEPT = 100               # newest events a new browser gets


class KeptFile:
    """A kernel file opened once and re-read with pread(2) at offset 0: procfs, sysfs and the
    cgroup filesystem write a file's contents anew for each read from its start — the way
    top(1) reads /proc. An open(2) costs ~15 µs, a pread ~2 µs: for 200 containers a second,
    that is most of the dashboard's CPU. An fd on /proc/PID/stat also stays bound to *that*
    process: once it has exited, the read fails (ESRCH), whatever gets the PID next."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> bytes | None:
        try:
            return os.pread(self.fd, 4096, 0) or None
        except OSError:                          # ESRCH: the process is gone; ENODEV: the group
            return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def keep_open(path) -> KeptFile | None:
    try:
        return KeptFile(path)
    except OSError:
        return None


class Source:
    """A state root whose containers are shown: the host's, and each node's of a cluster
    (cluster/nodes.py: its own root, and its containers' cgroups under the node's group)."""

    def __init__(self, root, node: str = "", cgroup_parent: str | None = None):
        self.node, self.cgroup_parent = node, cgroup_parent
        self.store = open_store(root)
        self.events_offset = 0

    def cgroup_of(self, rec):
        if self.cgroup_parent is None or not rec.cgroup:
            return container_cgroup(rec)
        return open_cgroup(rec.cgroup, rec.cgroup_root, parent=self.cgroup_parent)


class Watched:
    """One container as the sampler follows it (its record re-read when state.json changes)."""

    def __init__(self, rec, stamp, source: Source):
        self.rec, self.stamp, self.source = rec, stamp, source
        self.cgroup = None                       # opened once per run (its PID identifies it)
        self.stat: KeptFile | None = None        # /proc/PID/stat of PID 1, while it runs
        self.counters: dict = {}                 # stats key → (KeptFile, key in the file, factor)
        self.limits: dict = {}                   # memory_limit, pids_limit: read at start, on change
        self.run_key = None                      # (pid, pid_start) the details belong to
        self.cpu = None                          # (cpuacct.usage ns, monotonic time) of the last tick
        self.oom_kills = None                    # oom_kill (v1 memory.oom_control, v2 memory.events) last tick
        self.history: deque = deque(maxlen=HISTORY)
        self.detail: dict = {}
        self.procs: tuple = ()
        self.pids = None                         # pids.current last tick: cgroup.procs is re-read on
        self.slot = random.randrange(PROCS_EVERY)  # a change, and every PROCS_EVERY ticks (staggered)
        self.changed = True                      # detail to send with the next tick
        self.reread = False                      # state.json changed: describe it again

    def alive(self) -> bool:
        """PID 1 of the run we follow is still there and not a zombie (procfs.is_alive, kept open)."""
        data = self.stat.read() if self.stat else None
        return bool(data) and data[data.rindex(b")") + 2:data.rindex(b")") + 3] != b"Z"

    def open_run(self) -> None:
        """At the start of a run (or when we first see it): its cgroup and the files to poll."""
        self.close_run()
        self.cgroup = self.source.cgroup_of(self.rec)
        self.stat = keep_open(f"/proc/{self.rec.pid}/stat")
        data = self.stat.read() if self.stat else None
        if self.stat and (not data or int(data[data.rindex(b")") + 2:].split()[19]) != self.rec.pid_start):
            self.stat.close()                    # exited (and the PID reused) since it was checked
        if self.cgroup is not None:
            self.counters = {k: (f, key, factor) for k, (path, key, factor) in self.cgroup.counter_files().items()
                             if (f := keep_open(path)) is not None}
            self.read_limits()

    def read_limits(self) -> None:
        if self.cgroup is not None:
            s = self.cgroup.stats()
            self.limits = {"memory_limit": s.get("memory_limit"), "pids_limit": s.get("pids_limit")}

    def close_run(self) -> None:
        for f, _, _ in self.counters.values():
            f.close()
        if self.stat:
            self.stat.close()
        self.cgroup, self.stat, self.counters, self.limits = None, None, {}, {}

    def read_counters(self) -> dict:
        out = {}
        for name, (f, key, factor) in self.counters.items():
            data = f.read()
            if data is None:
                continue
            if key is None:
                out[name] = int(data) * factor if data.strip().isdigit() else None
            else:                                   # flat-keyed: "oom_kill 1\nunder_oom 0"
                line = next((ln for ln in data.split(b"\n") if ln.startswith(key.encode() + b" ")), b"")
                out[name] = int(line.split()[1]) * factor if line else None
        return out


class Sampler:
    """tick() → the message of this second; full() → what a new browser needs first."""

    def __init__(self, root=None, clock=time.time):
        self.root = state_root(root)
        self.sources = [Source(self.root)]
        self.sources_stamp = None
        self.clock = clock
        self.watched: dict[str, Watched] = {}
        self.images: dict[str, list] = {}
        self.events: deque = deque(maxlen=EVENTS_KEPT)
        self.pending: list[dict] = []            # events the sampler itself saw (OOM kills)
        self.sources[0].events_offset = self.events_start()
        self.k8s_seen: dict[str, tuple] = {}
        self.k8s_stamp = None
        self.cluster: dict = {"nodes": [], "pods": [], "deployments": []}
        self.pods_stamp = None
        self.host: dict = {}
        # The host's namespaces: PID 1's; where /proc/1/ns cannot be read (this machine is
        # itself a container), the dashboard's own, which are the host's unless it was unshared.
        self.host_ns = {**namespace_ids("self"), **namespace_ids(1)}
        self.last: dict = {}
        self.shared: dict = {}
        self.ticks = 0
        self.lock = threading.Lock()

    # ── one tick ────────────────────────────────────────────────────────────────────────
    def tick(self) -> dict:
        now = self.clock()
        with self.lock:
            count = len(self.watched)
            self.ticks += 1
            containers = [self.sample(w, now) for w in self.refresh_records()]
            details = {w.rec.id: w.detail for w in self.watched.values() if w.changed}
            for w in self.watched.values():
                w.changed = False
            if details or len(self.watched) != count:       # namespaces come and go only so
                self.shared = self.shared_namespaces()
            pending, self.pending = self.pending, []
            self.events.extend(pending)
            events = pending + self.read_container_events() + self.read_k8s_events()
            self.read_cluster()
            self.last = {"type": "tick", "time": now, "containers": containers, "details": details,
                         "shared": self.shared, "events": events,
                         "cluster": self.cluster}
            return self.last

    def full(self) -> dict:
        """The last tick, with every detail, the history and the newest events."""
        with self.lock:
            last = self.last or {"containers": [], "shared": {}, "cluster": self.cluster}
            return {**last, "type": "full", "time": self.clock(),
                    "details": {cid: w.detail for cid, w in self.watched.items()},
                    "history": {cid: list(w.history) for cid, w in self.watched.items()},
                    "events": list(self.events), "host": self.host, "host_ns": self.host_ns}

    # ── records ───────────────────────────────────────────────────────────────────────────
    def refresh_sources(self) -> None:
        """The host's root, and each node's while a cluster exists (cluster.json changed)."""
        stamp = file_stamp(self.root / "cluster" / "cluster.json")
        if stamp == self.sources_stamp:
            return
        self.sources_stamp = stamp
        from ..cluster.nodes import ClusterStore, node_parent
        store = ClusterStore(self.root)
        nodes = ((store.load() or {}).get("nodes") or {}).values()
        known = {s.node: s for s in self.sources}
        self.sources = [self.sources[0]]
        for n in nodes:
            nroot = store.node_root(n["name"])
            if n["name"] in known:
                self.sources.append(known[n["name"]])
            elif nroot.is_dir():
                source = Source(nroot, n["name"], f"{node_parent()}/{n['cgroup']}")
                if not self.last:                # nodes there before the dashboard: from now on
                    source.events_offset = file_size(nroot / "events.log")
                self.sources.append(source)

    def refresh_records(self) -> list[Watched]:
        """Every container of every source, oldest first; state.json re-read when it changed."""
        self.refresh_sources()
        seen = {}
        for source in self.sources:
            for cid, w in self.records_of(source):
                seen[cid] = w
        for cid in self.watched.keys() - seen.keys():     # removed (`rm`): let go of its files
            self.watched[cid].close_run()
        self.watched = seen
        return sorted(seen.values(), key=lambda w: w.rec.created)

    def records_of(self, source: Source):
        try:
            ids = [n for n in os.listdir(source.store.dir) if not n.startswith(".")]
        except FileNotFoundError:
            return
        for cid in ids:
            try:
                st = os.stat(f"{source.store.dir}/{cid}/state.json")
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            w = self.watched.get(cid)
            if w is None or w.stamp != stamp:
                rec = source.store.load(cid)
                if rec is None:
                    continue
                if w is None:
                    w = Watched(rec, stamp, source)
                else:
                    w.rec, w.stamp, w.reread = rec, stamp, True
            yield cid, w

    # ── one container ─────────────────────────────────────────────────────────────────────
    def sample(self, w: Watched, now: float) -> dict:
        """The gauges of this second (and the details, when the run or its processes changed).
        A run we follow is checked through its kept /proc/PID/stat; status.current_status()
        decides whenever that, or the record, says something changed."""
        rec = w.rec
        reread, w.reread = w.reread, False
        following = w.run_key == (rec.pid, rec.pid_start) and not reread
        status = rec.status if following and rec.status in ("running", "paused") and w.alive() \
            else current_status(rec)
        row = {"id": rec.id, "name": rec.name, "status": status}
        if status not in ("running", "paused"):
            if w.run_key is not None or reread or not w.detail:     # it ended, or its exit was recorded
                w.close_run()
                w.run_key, w.cpu, w.procs = None, None, ()
                w.detail, w.changed = self.describe(w, running=False), True
            return row
        if w.run_key != (rec.pid, rec.pid_start):
            w.run_key, w.cpu, w.pids = (rec.pid, rec.pid_start), None, None
            w.oom_kills = None if self.last else -1      # kills before the dashboard started: not news
            w.open_run()
            reread = True
        if reread:
            w.read_limits()
            w.detail, w.procs, w.pids, w.changed = self.describe(w, running=True), (), None, True
        if w.cgroup is not None:
            row.update(self.read_cgroup(w))
            if row["pids"] != w.pids or self.ticks % PROCS_EVERY == w.slot:   # who is there now
                w.pids = row["pids"]
                self.follow_processes(w)
        w.history.append([round(now, 1), row.get("memory", 0), row.get("cpu", 0), row.get("pids", 0)])
        return row

    def read_cgroup(self, w: Watched) -> dict:
        s = w.read_counters()
        cpu_ns, t = s.get("cpu_usage_ns") or 0, time.monotonic()
        cpu = 0.0
        if w.cpu is not None and t > w.cpu[1]:
            cpu = max(0.0, (cpu_ns - w.cpu[0]) / 1e9 / (t - w.cpu[1]) * 100)
        w.cpu = (cpu_ns, t)
        self.note_oom_kills(w, s.get("oom_kills"))
        return {"memory": s.get("memory_usage") or 0, "memory_limit": w.limits.get("memory_limit"),
                "cpu": round(cpu, 1), "pids": s.get("pids_current") or 0, "pids_limit": w.limits.get("pids_limit")}

    def note_oom_kills(self, w: Watched, kills: int | None) -> None:
        """An event when the OOM killer chose a process of this container since the last tick —
        also one that is not PID 1, which `events` (an exit record) never shows."""
        if kills is None:
            return
        if w.oom_kills == -1:
            w.oom_kills = kills
        if kills > (w.oom_kills or 0):
            self.pending.append({"time": self.clock(), "source": "kernel", "action": "oom_kill",
                                 "name": w.rec.name, "id": w.rec.id, "warning": True,
                                 "detail": {"oom_kill": kills}})
        w.oom_kills = kills

    def follow_processes(self, w: Watched) -> None:
        """cgroup.procs (sample() calls it when pids.current moved, and every PROCS_EVERY
        ticks); /proc/PID/{stat,status,cmdline} only when the set of PIDs changed."""
        try:
            procs = tuple(w.cgroup.procs())
        except OSError:
            return
        if procs != w.procs:
            w.procs = procs
            rows = [describe_process(pid) for pid in procs]
            w.detail = {**w.detail, "processes": [
                {"pid": p["PID"], "nspid": p["NSPID"], "cmd": p["CMD"][:80]} for p in rows if p]}
            w.changed = True

    def describe(self, w: Watched, running: bool) -> dict:
        """What stays the same while one run lasts: namespaces, layers, network, limits."""
        rec = w.rec
        config = rec.config or {}
        net = rec.network or {}
        return {
            "id": rec.id, "short_id": rec.id[:12], "name": rec.name, "image": rec.image,
            "command": " ".join(rec.command)[:120], "pid": rec.pid if running else 0,
            "created": rec.created, "started_at": rec.started_at,
            "pod": config.get("pod") or "", "net_mode": str(config.get("net") or "bridge"),
            "namespaces": namespace_ids(rec.pid) if running else {},
            "layers": self.layers(rec.image),
            "upper": str(w.source.store.container_dir(rec.id) / "upper"), "node": w.source.node,
            "network": {k: net.get(k) for k in ("network", "bridge", "veth", "ifname", "ip", "prefixlen",
                                                "gateway") if net.get(k) is not None},
            "exit_code": rec.exit_code, "oom_killed": rec.oom_killed, "processes": [],
            "health": (rec.health or {}).get("Status", ""),   # --health-cmd (health.py)
        }

    def layers(self, ref: str) -> list[dict]:
        """The image's overlay lower layers, top first (cached per image reference)."""
        if ref not in self.images:
            try:
                image = image_store(self.root).get(ref)
                dirs = image.lower_dirs
                ids = list(reversed(image.layers)) or [image.id]
                self.images[ref] = [{"id": str(i)[:19], "dir": str(d)} for i, d in zip(ids, dirs)]
            except Exception:                # an image removed meanwhile: nothing to show
                self.images[ref] = []
        return self.images[ref]

    def shared_namespaces(self) -> dict:
        """'net:4026532281' → the names of the running containers in it, where more than one
        (the host's own namespaces left out: every container without its own is in them)."""
        members: dict[str, list[str]] = {}
        for w in self.watched.values():
            if w.run_key is None:
                continue
            for kind, inode in (w.detail.get("namespaces") or {}).items():
                if self.host_ns.get(kind) == inode:
                    continue                     # the host's: shown as such, not as shared
                members.setdefault(f"{kind}:{inode}", []).append(w.rec.name)
        return {k: v for k, v in members.items() if len(v) > 1}

    # ── events ─────────────────────────────────────────────────────────────────────────────
    def events_start(self) -> int:
        """Begin with the last EVENTS_KEPT lines already in events.log (a new dashboard shows
        what just happened), then follow from the end."""
        path = self.root / "events.log"
        try:
            size = path.stat().st_size
        except OSError:
            return 0
        with open(path, "rb") as f:
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
        lines = data.split(b"\n")[1 if size > 64 * 1024 else 0:-1][-EVENTS_KEPT:]
        for line in lines:
            self.add_container_event(line)
        return size

    def read_container_events(self) -> list[dict]:
        new = []
        for source in self.sources:
            try:
                with open(source.store.root / "events.log", "rb") as f:
                    f.seek(source.events_offset)
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1               # a line half written waits for the next tick
            source.events_offset += end
            new += [e for e in (self.add_container_event(line, source.node) for line in data[:end].split(b"\n")) if e]
        return new

    def add_container_event(self, line: bytes, node: str = "") -> dict | None:
        try:
            e = json.loads(line)
            attrs = e["Actor"]["Attributes"]
        except (ValueError, KeyError, TypeError):
            return None
        extra = {k: attrs[k] for k in ("exitCode", "signal", "oom") if k in attrs}
        event = {"time": e["timeNano"] / 1e9, "source": "container", "action": e["Action"],
                 "name": attrs.get("name", e["id"][:12]), "id": e["id"], "detail": extra, "node": node,
                 "warning": e["Action"] in ("oom", "kill") or extra.get("exitCode", "0") not in ("0",)}
        self.events.append(event)
        return event

    def read_k8s_events(self) -> list[dict]:
        """Kubernetes Events (Scheduled, Killing, NodeNotReady …) new or repeated since the last tick."""
        events_dir = self.root / "k8s" / "events"
        stamp = dir_stamp(events_dir)
        if stamp == self.k8s_stamp:
            return []
        self.k8s_stamp = stamp
        new = []
        for ev in object_store(self.root).list("Event"):
            key = ev["metadata"]["name"]
            mark = (ev.get("count"), ev.get("lastTimestamp"))
            if self.k8s_seen.get(key) == mark:
                continue
            self.k8s_seen[key] = mark
            obj = ev.get("involvedObject") or {}
            event = {"time": k8s_time(ev.get("lastTimestamp")), "source": "cluster",
                     "action": ev.get("reason", ""), "name": f"{obj.get('kind', '')}/{obj.get('name', '')}",
                     "id": "", "detail": {"message": ev.get("message", ""),
                                          **({"count": ev["count"]} if ev.get("count", 1) > 1 else {})},
                     "warning": ev.get("type") == "Warning"}
            new.append(event)
        new.sort(key=lambda e: e["time"])
        self.events.extend(new)
        return new

    # ── the cluster ──────────────────────────────────────────────────────────────────────
    def read_cluster(self) -> None:
        """Nodes as columns, each with the pods bound to it (re-read when the store changed)."""
        k8s = self.root / "k8s"
        stamp = (dir_stamp(k8s / "pods"), dir_stamp(k8s / "deployments"), dir_stamp(k8s / "nodes"),
                 file_stamp(self.root / "cluster" / "cluster.json"))
        if stamp == self.pods_stamp:
            return
        self.pods_stamp = stamp
        store = object_store(self.root)
        pods = store.list("Pod")
        cluster = cluster_record(self.root)
        self.cluster = {"nodes": node_list(store, pods, cluster), "pods": [pod_row(p) for p in pods],
                        "deployments": [deployment_row(d) for d in store.list("Deployment")],
                        "can_fail_nodes": cluster is not None}


def object_store(root):
    return ObjectStore(root)


def dir_stamp(path: Path):
    """The mtimes of a store directory and its namespace subdirectories: a file written
    there (by rename) changes its directory's mtime."""
    try:
        subdirs = sorted(os.scandir(path), key=lambda e: e.name)
        return (path.stat().st_mtime_ns, tuple((e.name, e.stat().st_mtime_ns) for e in subdirs if e.is_dir()))
    except OSError:
        return None


def k8s_time(text) -> float:
    try:
        return float(parse_rfc3339(text))
    except (TypeError, ValueError):
        return time.time()


def host_facts() -> dict:
    """What `doctor` finds (kernel, namespaces, cgroup layout, modules …), and the machine."""
    from ..doctor import diagnose
    report = diagnose()
    return {"findings": report.as_dicts(), "ok": report.ok, "release": os.uname().release,
            "cpus": os.cpu_count(), "memory": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "hostname": os.uname().nodename}


def pod_row(pod: dict) -> dict:
    status = pod.get("status") or {}
    meta = pod["metadata"]
    return {"name": meta["name"], "namespace": meta.get("namespace", "default"),
            "node": pod["spec"].get("nodeName") or "", "phase": status.get("phase", "Pending"),
            "ready": any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in status.get("conditions") or []),
            "deleting": bool(meta.get("deletionTimestamp")),
            "owner": next((o.get("name", "") for o in meta.get("ownerReferences") or []), "")}


def deployment_row(d: dict) -> dict:
    status = d.get("status") or {}
    return {"name": d["metadata"]["name"], "replicas": d["spec"].get("replicas", 1),
            "ready": status.get("readyReplicas", 0)}


def file_stamp(path: Path):
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def cluster_record(root) -> dict | None:
    """cluster.json of `cluster create` (cluster/nodes.py), or None: no cluster here."""
    from ..cluster.nodes import ClusterStore
    return ClusterStore(root).load()


def node_list(store, pods: list[dict], cluster: dict | None) -> list[dict]:
    """The nodes as columns: the Node objects of a cluster (Ready from their condition, which
    the heartbeats keep; a failed one is powered off), else this host — the one node of
    orchestration/ — and any node a pod names."""
    from ..cluster.lifecycle import is_ready
    nodes = {o["metadata"]["name"]: o for o in store.list("Node")}
    recorded = (cluster or {}).get("nodes") or {}
    if not nodes and not recorded:
        names = ["minicontainer"] + sorted({p["spec"].get("nodeName") for p in pods} - {None, "", "minicontainer"})
        return [{"name": n, "ready": True, "status": "Ready"} for n in names]
    out = []
    for name in sorted(nodes.keys() | recorded.keys(), key=lambda n: (recorded.get(n, {}).get("index", 999), n)):
        obj = nodes.get(name) or {"spec": {}, "status": {}}
        ready, failed = bool(nodes.get(name)) and is_ready(obj), bool(recorded.get(name, {}).get("failed"))
        status = "failed (power cut)" if failed else "Ready" if ready else "NotReady"
        if obj["spec"].get("unschedulable"):
            status += ", SchedulingDisabled"
        out.append({"name": name, "ready": ready and not failed, "status": status, "failed": failed,
                    "subnet": recorded.get(name, {}).get("subnet", "")})
    return out
