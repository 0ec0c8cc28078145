"""Pods: containers that share one network, IPC and UTS namespace and one cgroup.

    podman pod create|start|stop|rm|ps|inspect, podman run --pod; Kubernetes' Pod
    man 7 namespaces, man 2 setns, man 7 cgroups

A pod is what Kubernetes schedules: a few containers that must live side by side — a web
server and its log shipper — and talk over localhost. Built from what one container has:

    pod create web          mkdir …/minicontainer/pod-ID              the pod's cgroup
                            run -d --name web-infra --cgroup-parent pod-ID minicontainer-pause /pause
                                                                       the infra container: its PID 1
                                                                       holds the namespaces (pause.c)
                            bridge link set dev VETH hairpin on        so the pod reaches itself
                                                                       through a Service (veth.py)
    run --pod web IMG       run --net container:web-infra             joins the infra's netns,
                                                                       and its uts and ipc (by path)
                                --cgroup-parent pod-ID                 its group inside the pod's

The infra process owns the namespaces, so a member may exit and start again and still find
its neighbours at 127.0.0.1. The pod's cgroup is the parent of every member's group: its
memory and CPU counters add up the pod (`top pods`), and one kill of the pod's group ends it.

Records live in <root>/pods/<name>.json; the containers are ordinary container records whose
config names the pod (`minicontainer ps` shows them). Above this module sits the controller's
kubelet (orchestration/kubelet.py), which realises a Kubernetes Pod as one of these.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from ..errors import ConfigError, ContainerError
from ..state import StateStore, dir_lock, is_alive, state_root, validate_name

PAUSE_SOURCE = Path(__file__).with_name("pause.c")
PAUSE_IMAGE = "minicontainer-pause"         # tag: the hash of pause.c, so a new pause.c re-imports
INFRA_SUFFIX = "-infra"
KUBELET_LABEL = "io.kubernetes.pod.name"    # a pod the controller's kubelet made for a Pod object


class PodStore:
    """Pod records under <root>/pods, one JSON file per pod, changed under a flock."""

    def __init__(self, root=None):
        self.root = state_root(root)
        self.dir = self.root / "pods"

    def locked(self):
        return dir_lock(self.dir)

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def load(self, name: str) -> dict | None:
        try:
            return json.loads(self.path(name).read_text())
        except (OSError, ValueError):
            return None

    def save(self, pod: dict) -> None:
        tmp = self.dir / f".{pod['name']}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(pod, indent=1))
        os.replace(tmp, self.path(pod["name"]))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def list(self) -> list[dict]:
        if not self.dir.is_dir():
            return []
        pods = (self.load(p.stem) for p in sorted(self.dir.glob("*.json")))
        return [p for p in pods if p]

    def find(self, ref: str) -> dict:
        """A pod by name, full ID or unique ID prefix. A name is one file (every pod's
        record is read only for an ID)."""
        pod = self.load(ref) if ref and "/" not in ref and not ref.startswith(".") else None
        if pod is not None:
            return pod
        pods = self.list()
        for pod in pods:
            if pod["name"] == ref or pod["id"] == ref:
                return pod
        matches = [p for p in pods if p["id"].startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        raise ContainerError(f"no such pod: {ref} (see `minicontainer pod ls`)")


# ── the infra container ──────────────────────────────────────────────────────────────────

def pause_image(root: Path) -> str:
    """The infra image: one static binary, /pause (built from pause.c with gcc on first use,
    like --init's), imported as minicontainer-pause:<hash>."""
    from ..init import find_static_binary
    from ..storage.images import ImageStore
    binary = find_static_binary(root, PAUSE_SOURCE, "minicontainer-pause", "a pod")
    ref = f"{PAUSE_IMAGE}:{binary.name.rsplit('-', 1)[1]}"
    images = ImageStore(root / "images")
    if not images.exists(ref):
        import tarfile
        tar_path = root / "bin" / f".pause.{os.getpid()}.tar"
        with tarfile.open(tar_path, "w") as tar:
            info = tar.gettarinfo(str(binary), arcname="pause")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(binary, "rb") as f:
                tar.addfile(info, f)
        try:
            images.import_archive(tar_path, ref)
        finally:
            tar_path.unlink(missing_ok=True)
    return ref


def infra_name(pod_name: str) -> str:
    return pod_name + INFRA_SUFFIX


# ── the verbs ────────────────────────────────────────────────────────────────────────────

def create_pod(name: str | None = None, *, root=None, publish=(), net: str = "bridge",
               labels: dict | None = None, start: bool = True) -> dict:
    """`pod create`: record, cgroup, infra container. On any failure nothing is left."""
    store = PodStore(root)
    pod_id = secrets.token_hex(32)
    name = name or f"pod-{pod_id[:12]}"
    validate_name(name)
    with store.locked():
        if store.load(name) is not None:
            raise ContainerError(f"the pod name {name!r} is already in use: choose another, or "
                                 f"`minicontainer pod rm {name}`")
        pod = {"id": pod_id, "name": name, "created": time.time(), "cgroup": f"pod-{pod_id[:12]}",
               "labels": dict(labels or {}), "publish": list(publish), "net": net,
               "infra": "", "hostname": name}
        store.save(pod)                     # recorded before the cgroup exists (design.md)
    try:
        create_pod_cgroup(pod)
        if start:
            start_infra(store, pod)
    except BaseException:
        remove_pod(name, force=True, root=root)
        raise
    return pod


def create_pod_cgroup(pod: dict):
    """mkdir …/minicontainer/pod-ID in every hierarchy (no limits of its own: Kubernetes
    sums the containers' limits into it; here each container's group carries its own)."""
    if os.geteuid() != 0:
        raise ConfigError("pods need root for now: their cgroup and shared namespaces")
    from ..cgroups import create_cgroup
    return create_cgroup(pod["cgroup"])


def start_infra(store: PodStore, pod: dict) -> None:
    """Run the pause container detached: its PID 1 holds the pod's namespaces."""
    from ..container import Container
    sstore = StateStore(store.root)
    old = find_container(sstore, infra_name(pod["name"]))
    if old is not None:                     # a stopped pod: a fresh infra with the same name
        from ..stop import remove_container
        remove_container(old.id, force=True, root=store.root)
    infra = Container(pause_image(store.root), ["/pause"], root=store.root,
                      name=infra_name(pod["name"]), net=pod["net"], publish=pod["publish"],
                      hostname=pod["hostname"], cgroup_parent=pod["cgroup"])
    pod["infra"] = infra.start()
    veth = (infra.record.network or {}).get("veth") if infra.record else None
    if veth:                                # on a bridge: the pod may call itself via a Service
        from ..network.veth import set_hairpin
        set_hairpin(veth)
    with store.locked():
        store.save(pod)


def member_options(ref: str, root=None) -> dict:
    """`run --pod NAME`: the options that put a container into the pod's namespaces and
    cgroup. The pod must be running (its infra process holds what we join)."""
    store = PodStore(root)
    pod = store.find(ref)
    infra = find_container(StateStore(store.root), infra_name(pod["name"]))
    if infra is None or not is_alive(infra.pid, infra.pid_start):
        raise ContainerError(f"pod {pod['name']} is not running: `minicontainer pod start {pod['name']}`")
    return {"net": f"container:{infra.name}", "cgroup_parent": pod["cgroup"],
            "hostname": pod["hostname"], "pod": pod["name"]}


def join_pod(options: dict, root=None) -> dict:
    """Container options, plus what puts the container into the pod options["pod"] names
    (member_options); a network of its own (--net, -p) is refused: the pod's is shared."""
    joined = member_options(options["pod"], root)
    if options.get("net", "bridge") not in ("bridge", joined["net"]) or options.get("publish"):
        raise ConfigError("--pod and --net/-p conflict: a pod's containers share its "
                          "network (publish ports with `pod create -p`)")
    return {**options, **joined}


def find_container(store: StateStore, name: str):
    """The record named NAME: one lookup in the names index (reading every record made each
    of fifty pods' starts cost O(all containers)); a store made before the index, a scan."""
    if (store.dir / ".names").is_dir():
        return store.holder(name)
    return next((rec for rec in store.list() if rec.name == name), None)


def pod_members(store: StateStore, pod: dict) -> list:
    """The pod's containers (without the infra container), oldest first."""
    recs = [r for r in store.list() if r.config.get("pod") == pod["name"]
            and r.name != infra_name(pod["name"])]
    return sorted(recs, key=lambda r: r.created)


def pod_status(store: StateStore, pod: dict) -> str:
    """Running while the infra runs; Exited once it and every member have ended."""
    from ..status import current_status
    infra = find_container(store, infra_name(pod["name"]))
    if infra is not None and current_status(infra) == "running":
        return "Running"
    members = pod_members(store, pod)
    if any(current_status(r) == "running" for r in members):
        return "Degraded"
    return "Exited" if infra is not None else "Created"


def list_pods(root=None) -> list[dict]:
    """`pod ls`: each pod with its status and number of containers (the infra one included)."""
    store = PodStore(root)
    sstore = StateStore(store.root)
    from ..status import human_duration
    return [dict(pod, status=pod_status(sstore, pod), containers=len(pod_members(sstore, pod)) + 1,
                 created_text=human_duration(time.time() - pod["created"]) + " ago")
            for pod in store.list()]


def inspect_pod(ref: str, root=None) -> dict:
    """`pod inspect`: the record, the status, the infra container and the members."""
    from ..status import current_status
    store = PodStore(root)
    pod = store.find(ref)
    sstore = StateStore(store.root)
    infra = find_container(sstore, infra_name(pod["name"]))
    members = [{"id": r.id, "name": r.name, "status": current_status(r)}
               for r in pod_members(sstore, pod)]
    return dict(pod, status=pod_status(sstore, pod),
                infra_pid=infra.pid if infra and current_status(infra) == "running" else 0,
                cgroup_path=f"/{cgroup_parent_dir()}/{pod['cgroup']}", containers=members)


def cgroup_parent_dir() -> str:
    from ..cgroups.base import PARENT
    return PARENT


def start_pod(ref: str, root=None) -> dict:
    """`pod start`: the infra container, then every member that is not running (a member is
    started again from its recorded options, as a new container with the same name)."""
    from ..status import current_status
    store = PodStore(root)
    pod = store.find(ref)
    sstore = StateStore(store.root)
    infra = find_container(sstore, infra_name(pod["name"]))
    if infra is None or current_status(infra) != "running":
        from ..cgroups import open_cgroup
        if open_cgroup(pod["cgroup"]) is None:
            create_pod_cgroup(pod)
        start_infra(store, pod)
    for rec in pod_members(sstore, pod):
        if current_status(rec) != "running":
            restart_member(sstore, rec)
    return pod


def restart_member(sstore: StateStore, rec) -> str:
    from ..container import Container
    from ..stop import remove_container
    from ..supervisor import config_of
    config = config_of(rec)
    remove_container(rec.id, force=True, root=sstore.root)
    options = {k: v for k, v in config.__dict__.items() if k not in ("image", "command")}
    options = join_pod(options, sstore.root) if options.get("pod") else options
    return Container(config.image, config.command, root=sstore.root, **options).start()


def stop_pod(ref: str, timeout: float = 10, root=None) -> dict:
    """`pod stop`: the members first (SIGTERM, then SIGKILL after timeout), the infra last."""
    from ..status import current_status
    from ..stop import stop_container
    store = PodStore(root)
    pod = store.find(ref)
    sstore = StateStore(store.root)
    for rec in pod_members(sstore, pod):
        if current_status(rec) in ("running", "restarting", "paused"):
            stop_container(rec.id, timeout, root=store.root)
    infra = find_container(sstore, infra_name(pod["name"]))
    if infra is not None and current_status(infra) == "running":
        stop_container(infra.id, timeout, root=store.root)
    return pod


def remove_pod(ref: str, *, force: bool = False, root=None) -> dict:
    """`pod rm`: refused while running unless forced; members, infra, cgroup, record."""
    from ..cgroups import open_cgroup
    from ..stop import remove_container
    store = PodStore(root)
    pod = store.find(ref)
    sstore = StateStore(store.root)
    status = pod_status(sstore, pod)
    if status in ("Running", "Degraded") and not force:
        raise ContainerError(f"pod {pod['name']} is running: `minicontainer pod stop {pod['name']}` "
                             "first, or use --force")
    for rec in pod_members(sstore, pod):
        remove_container(rec.id, force=True, root=store.root)
    infra = find_container(sstore, infra_name(pod["name"]))
    if infra is not None:
        remove_container(infra.id, force=True, root=store.root)
    if os.geteuid() == 0:
        cgroup = open_cgroup(pod["cgroup"])
        if cgroup is not None:
            cgroup.remove()
    with store.locked():
        store.delete(pod["name"])
    return pod
