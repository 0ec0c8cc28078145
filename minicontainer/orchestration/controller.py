"""The controller process: one small loop that makes the store's desired state real.

    minicontainer controller status|stop|start [--backoff S] [--hpa-window S]
    python -m minicontainer.orchestration.controller --root ROOT       (what apply starts)

Kubernetes runs a controller manager, a scheduler, a kubelet per node and kube-proxy, each
watching the API server. Here one process plays all four, started on demand by `apply`
(and every verb that changes the store) and ended by `controller stop` — there is no daemon
otherwise. Each turn of the loop:

    observe   read the objects (store.py) and the containers' records (state.py)
    diff+act  controllers.py (deployments, replica sets, scheduling, claims, autoscalers),
              kubelet.py (each pod: start, restart with back-off, probes, status),
              services.py (endpoints, the nft table, every pod's /etc/hosts)
    sleep     in poll(2) on a pidfd of every container's PID 1 (pidfd_open(2)): a container
              that dies wakes the loop at once; so does SIGUSR1, which the CLI sends after
              changing the store; otherwise it wakes when the next probe, back-off or
              autoscaler turn is due (at most 30 s apart), or at once when this turn
              changed a pod's status (a Deployment may take its next rollout step)

Starting or removing a container waits for forks, mounts and a supervisor, a few hundred
ms. The loop never waits: when a pod's sync comes to such a step (kubelet.Deferred), the
pod's whole sync runs in a worker — a fork of this process, one per pod, up to WORKERS at a
time — and the worker's pidfd wakes the loop when it is done. So fifty replicas start side
by side, each through the same run sequence (runtime.py) as `minicontainer run`.

It keeps nothing that matters in memory: kill -9 it at any line and the next command starts
a new one that carries on from the store.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback

from ..state import is_alive, proc_start_time, state_root
from .store import ObjectStore

IDLE_TICK = 30.0            # nothing due: container exits and the CLI wake us anyway (a
                            # resync against missed events, as the kubelet's 1 min syncFrequency)
WORKERS = 8                 # pods synced side by side (each worker starts one pod's containers)


# ── managing the process (the CLI's side) ──────────────────────────────────────────────────

def info_path(store: ObjectStore):
    return store.dir / "controller.json"


def read_info(store: ObjectStore) -> dict | None:
    try:
        info = json.loads(info_path(store).read_text())
    except (OSError, ValueError):
        return None
    return info if is_alive(info.get("pid", 0), info.get("start", 0)) else None


def settings_path(store: ObjectStore):
    return store.dir / "controller-settings.json"


def read_settings(store: ObjectStore) -> dict:
    try:
        return json.loads(settings_path(store).read_text())
    except (OSError, ValueError):
        return {}


def ensure_controller(root=None, **settings) -> dict:
    """Start the controller unless it runs; settings (backoff, hpa_window) are kept in the
    store and apply from then on. Then nudge it (SIGUSR1) to look at the store at once."""
    store = ObjectStore(root)
    with store.locked():
        if settings:
            current = read_settings(store)
            current.update({k: v for k, v in settings.items() if v is not None})
            settings_path(store).write_text(json.dumps(current))
        info = read_info(store)
        if info is None:
            info = spawn(store)
        elif settings:
            os.kill(info["pid"], signal.SIGHUP)            # re-read the settings
    nudge(info)
    return info


def nudge(info: dict | None) -> None:
    if info:
        try:
            os.kill(info["pid"], signal.SIGUSR1)
        except ProcessLookupError:
            pass


def spawn(store: ObjectStore) -> dict:
    """Start the controller process and wait until it has written its info file."""
    pid = daemonize(["-m", "minicontainer.orchestration.controller", "--root", str(store.root)],
                    store.dir / "controller.log")
    deadline = time.time() + 10
    while time.time() < deadline:                        # until it has written its info
        info = read_info_unlocked(store)
        if info and info["pid"] == pid:
            return info
        time.sleep(0.02)
    return {"pid": pid, "start": proc_start_time(pid)}


def daemonize(args: list[str], log, env: dict | None = None) -> int:
    """Double fork, new session: `python ARGS` as nobody's child, without a terminal, its
    output appended to LOG; → its pid (the controller, and a cluster's node agents)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0), os.dup2(fd, 1), os.dup2(fd, 2)
                os.write(w, b"%d\n" % os.getpid())
                os.close(w)
                package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                env = dict(os.environ if env is None else env, PYTHONPATH=os.pathsep.join(
                    filter(None, (package_parent, os.environ.get("PYTHONPATH")))))
                os.execve(sys.executable, [sys.executable, *args], env)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    with os.fdopen(r) as f:
        return int(f.read().strip() or 0)


def read_info_unlocked(store: ObjectStore) -> dict | None:
    return read_info(store)


def controller_status(root=None) -> dict:
    """Running or not; PID, uptime, CPU seconds, memory (PSS), the settings."""
    store = ObjectStore(root)
    info = read_info(store)
    if info is None:
        return {"running": False, "settings": read_settings(store)}
    pid = info["pid"]
    out = {"running": True, "pid": pid, "uptime": time.time() - info.get("started_at", time.time()),
           "settings": read_settings(store), "log": str(store.dir / "controller.log")}
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["pss_kb"] = int(line.split()[1])
    except OSError:
        pass
    return out


def stop_controller(root=None, timeout: float = 10) -> bool:
    """SIGTERM; the loop ends after its current step. The pods keep running (as in Kubernetes,
    a control plane that is down stops nothing); the next apply starts a new controller."""
    store = ObjectStore(root)
    info = read_info(store)
    if info is None:
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline and is_alive(info["pid"], info["start"]):
        time.sleep(0.05)
    if is_alive(info["pid"], info["start"]):
        os.kill(info["pid"], signal.SIGKILL)
    return True


# ── the loop (the controller's side) ──────────────────────────────────────────────────────

class Controller:
    def __init__(self, root):
        from .kubelet import Kubelet
        from .services import Proxy
        self.store = ObjectStore(root)
        self.settings = read_settings(self.store)
        self.kubelet = Kubelet(self.store, float(self.settings.get("backoff", 10)))
        self.proxy = Proxy()
        self.pidfds: dict[tuple[int, int], int] = {}
        self.gone: set[tuple[int, int]] = set()
        self.turn_records: dict | None = None
        self.cpu_samples: dict[str, tuple[float, int]] = {}
        self.usage: dict[str, float] = {}
        self.last_hpa = 0.0
        self.stopping = False
        self.reload = False
        self.workers: dict[str, tuple[int, int]] = {}        # pod → (worker PID, its pidfd)
        self.retry: dict[str, tuple[int, float]] = {}       # pod → (failed workers, next try)
        self.kubelet.may_block = False
        self.preloaded = False
        self.hosts_written: dict[str, str] = {}             # container ID → the hosts text it got

    def reconcile(self) -> None:
        """One turn: every controller once. Errors of one object are logged, not fatal."""
        from . import controllers as c
        store = self.store
        self.kubelet.next_due = float("inf")
        self.kubelet.changed = False
        self.reap_workers()
        from ..cluster.lifecycle import sync_nodes          # a cluster's nodes: heartbeats, failover
        self.kubelet.next_due = self.guard(sync_nodes, store) or self.kubelet.next_due
        from ..vm.ha import restart_failed_vms              # HA: VMs of a node that is NotReady
        self.guard(restart_failed_vms, store.root)
        for pvc in store.list("PersistentVolumeClaim"):
            self.guard(c.sync_claim, store, pvc)
        self.guard(c.remove_released_volumes, store)
        for d in store.list("Deployment"):
            self.guard(c.sync_deployment, store, d)
        deployments = {d["metadata"]["uid"] for d in store.list("Deployment")}
        for rs in store.list("ReplicaSet"):
            if not any(r["uid"] in deployments for r in rs["metadata"].get("ownerReferences") or []):
                store.delete("ReplicaSet", rs["metadata"]["name"], rs["metadata"]["namespace"])
                continue                                    # its Deployment is gone: garbage
            self.guard(c.sync_replicaset, store, rs)
        sets = {rs["metadata"]["uid"] for rs in store.list("ReplicaSet")}
        pods = store.list("Pod")
        for p in pods:
            owners = p["metadata"].get("ownerReferences") or []
            if owners and not any(r["uid"] in sets for r in owners) and c.active(p):
                c.request_deletion(store, p)
        c.sync_scheduling(store, [p for p in pods if not p["metadata"].get("deletionTimestamp")])
        records = self.turn_records = {r.name: r for r in self.kubelet.containers.list()}
        pods = store.list("Pod")
        for p in pods:
            self.guard(self.sync_pod, p, records)
        self.remove_orphan_pods(pods=pods)
        self.guard(self.sync_services, records)
        hpas = store.list("HorizontalPodAutoscaler")
        period = float(self.settings.get("hpa_period", 3))
        if hpas:
            self.kubelet.next_due = min(self.kubelet.next_due, self.last_hpa + period)
        if hpas and time.time() - self.last_hpa >= period:
            self.last_hpa = time.time()
            self.sample_cpu()
            window = self.settings.get("hpa_window")
            for hpa in hpas:
                self.guard(c.sync_hpa, store, hpa, lambda p: self.usage.get(p["metadata"]["name"]),
                           None if window is None else float(window))

    # -- pods, side by side -------------------------------------------------------------------
    def sync_pod(self, pod: dict, records: dict) -> None:
        """The kubelet's sync of one pod, here; or, when it must wait for containers, in a
        worker process (kubelet.Deferred) — unless one is at this pod already."""
        from .kubelet import Deferred, runtime_name
        key = runtime_name(pod)
        if key in self.workers:
            return                                          # its worker's exit wakes us
        retry_at = self.retry.get(key, (0, 0.0))[1]
        if time.time() < retry_at:
            self.kubelet.next_due = min(self.kubelet.next_due, retry_at)
            return
        try:
            self.kubelet.sync_pod(pod, records)
        except Deferred:
            if len(self.workers) < WORKERS:
                self.start_worker(key, pod, records)
            # else: a busy worker's exit wakes us, and this pod gets its turn then

    def start_worker(self, key: str, pod: dict, records: dict, work=None) -> None:
        """fork(2): the child has this process's modules and the turn's records already.
        It runs work(pod, records): the kubelet's sync_pod unless told otherwise."""
        if not self.preloaded:
            self.preload()
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_IGN)      # `controller stop` lets a start finish
                self.kubelet.may_block = True
                (work or self.kubelet.sync_pod)(pod, records)
                code = 0
            except BaseException as e:
                print(f"{time.strftime('%H:%M:%S')} pod {key}: {type(e).__name__}: {e}", flush=True)
                if os.environ.get("MINICONTAINER_DEBUG"):
                    traceback.print_exc()
            finally:
                os._exit(code)
        self.workers[key] = (pid, os.pidfd_open(pid))

    def preload(self) -> None:
        """Before the first worker: import the run sequence, compile the default seccomp
        profile and build the pause image here, once. Each worker, and each supervisor it
        forks, inherits all three — otherwise every container start would import the same
        modules again (about half its CPU time), compile the same BPF program (~20 ms; it is
        cached per process: security.compile_default_profile), and the first workers would
        each compile pause.c."""
        from .. import container, runtime, security, stop, supervisor  # noqa: F401  (for the forks)
        from ..network import attach, nat, steps, veth  # noqa: F401  (a pod's sandbox: a veth)
        from ..storage import overlay  # noqa: F401
        from .pods import pause_image
        from ..errors import MinicontainerError
        self.preloaded = True
        try:
            security.resolve()                              # the default capabilities' filter
        except MinicontainerError:
            pass                                            # each start says why (a missing cap)
        pause_image(self.kubelet.root)

    def reap_workers(self) -> None:
        """waitpid(2) the workers that are done; a failed one's pod waits before the next try
        (1 s, doubling up to 30 s), so a broken pod does not fork in a tight loop."""
        for key, (pid, fd) in list(self.workers.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
            os.close(fd)
            del self.workers[key]
            if os.waitstatus_to_exitcode(status) == 0:
                self.retry.pop(key, None)
            else:
                failures = self.retry.get(key, (0, 0.0))[0] + 1
                self.retry[key] = (failures, time.time() + min(2 ** (failures - 1), 30))

    def guard(self, fn, *args):
        try:
            return fn(*args)
        except Exception as e:                              # one object's trouble is logged
            print(f"{time.strftime('%H:%M:%S')} {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            if os.environ.get("MINICONTAINER_DEBUG"):
                traceback.print_exc()

    def sync_services(self, records: dict) -> None:
        from . import services as s
        pods = self.store.list("Pod")
        programmed, subsets = [], []
        services = self.store.list("Service")
        for svc in services:
            s.allocate(self.store, svc)
            rules, subset = s.sync_endpoints(self.store, svc, pods)
            programmed.append((svc, rules))
            subsets.append((svc, subset))
        self.proxy.sync(programmed, self.bridge())          # the rules first, then the objects
        changed = [s.write_endpoints(self.store, svc, subset) for svc, subset in subsets]
        if any(changed):                                    # a cluster's nodes (their kube-proxy)
            from ..cluster.members import wake_agents       # program them next
            wake_agents(self.store)
        for ep in self.store.list("Endpoints"):
            if not any(x["metadata"]["name"] == ep["metadata"]["name"] for x in services):
                self.store.delete("Endpoints", ep["metadata"]["name"], ep["metadata"]["namespace"])
        self.write_hosts(pods, services, records)

    def bridge(self) -> str | None:
        from ..cluster.network import service_bridge
        from ..network import DEFAULT_NETWORK, NetworkStore
        if service_bridge(self.store.root):                 # a cluster: its pods are behind its underlay
            return service_bridge(self.store.root)
        try:
            return NetworkStore(self.store.root / "networks").get(DEFAULT_NETWORK).bridge
        except Exception:
            return None

    def write_hosts(self, pods: list[dict], services: list[dict], records: dict | None = None) -> None:
        """Every container of every pod gets the pod's hosts file (Services by name).
        records: the turn's container records, if read already (a container a worker starts
        later gets its file in the turn that the worker's exit wakes)."""
        from .kubelet import runtime_name
        from .services import hosts_text
        from ..network.hosts import write_in_place
        if records is None:
            records = {r.name: r for r in self.kubelet.containers.list()}
        by_pod = {}
        for r in records.values():
            if r.config.get("pod"):
                by_pod.setdefault(r.config["pod"], []).append(r)
        written = {}
        for p in pods:
            text = hosts_text(p, services)
            for r in by_pod.get(runtime_name(p), []):
                if self.hosts_written.get(r.id) == text:    # this process wrote it: not read again
                    written[r.id] = text
                    continue
                path = self.kubelet.containers.container_dir(r.id) / "hosts"
                if path.is_symlink():                       # the network's shared file (hosts.py):
                    continue                                # never a pod's text for everyone
                try:
                    if path.read_text() != text:
                        write_in_place(path, text)
                    written[r.id] = text
                except OSError:
                    pass
        self.hosts_written = written                        # (a removed container: forgotten)

    def remove_orphan_pods(self, keep: frozenset = frozenset(), pods: list[dict] | None = None) -> None:
        """Runtime pods the kubelet made whose Pod object is gone (a kill -9 mid-delete);
        keep: runtime names to leave alone (a cluster node's sandbox for a pod migrating in).
        pods: the turn's Pod objects if read already (before their syncs: a sync removes the
        runtime pod before the object). Only a runtime pod without one is read."""
        from . import pods as rt
        from .kubelet import runtime_name
        names = {runtime_name(p) for p in (self.store.list("Pod") if pods is None else pods)
                 if (p["spec"].get("nodeName") or self.kubelet.node) == self.kubelet.node} | keep
        runtime = rt.PodStore(self.kubelet.root)
        for path in runtime.dir.glob("*.json") if runtime.dir.is_dir() else ():
            pod = runtime.load(path.stem) if path.stem not in names else None
            if pod and pod.get("labels", {}).get(rt.KUBELET_LABEL):
                self.guard(rt.remove_pod, pod["name"], True, self.kubelet.root)

    def sample_cpu(self) -> None:
        """Each pod's CPU use in millicores, from its cgroup's counter between two samples."""
        from ..cgroups import open_cgroup
        from . import pods as rt
        now = time.time()
        for pod in rt.PodStore(self.store.root).list():
            cg = open_cgroup(pod["cgroup"])
            used = (cg.stats().get("cpu_usage_ns") or 0) if cg else None
            if used is None:
                continue
            before = self.cpu_samples.get(pod["name"])
            self.cpu_samples[pod["name"]] = (now, used)
            if before and now > before[0]:
                self.usage[pod["name"]] = (used - before[1]) / 1e6 / (now - before[0])

    # -- waiting ----------------------------------------------------------------------------
    def watch_containers(self) -> list[int]:
        """A pidfd per running container's PID 1: readable the moment it exits. The turn's
        records, when it read them (a container a worker starts meanwhile is watched from the
        turn that the worker's exit wakes)."""
        wanted = {}
        records = self.turn_records.values() if self.turn_records is not None else self.kubelet.containers.list()
        self.turn_records = None
        for r in records:
            if r.status == "running" and r.config.get("pod"):
                wanted[(r.pid, r.pid_start)] = r
        for key in list(self.pidfds):
            if key not in wanted:
                os.close(self.pidfds.pop(key))
        for key in wanted:
            if key not in self.pidfds:
                try:
                    self.pidfds[key] = os.pidfd_open(key[0])
                except OSError:                             # gone already: one more turn sees
                    if key not in self.gone:                # it gone (once: a record nobody
                        self.kubelet.soon()                 # updates must not spin the loop)
                    self.gone.add(key)
        self.gone &= set(wanted)
        return list(self.pidfds.values()) + [fd for _, fd in self.workers.values()]

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        self.stopping = self.stopping or STOP_EARLY[0]
        while not self.stopping:
            if self.reload:
                self.reload = False
                self.settings = read_settings(self.store)
                self.kubelet.backoff_base = float(self.settings.get("backoff", 10))
            self.reconcile()
            poller = select.poll()
            poller.register(wake_r, select.POLLIN)
            for fd in self.watch_containers():
                poller.register(fd, select.POLLIN)
            if self.kubelet.changed:                        # a pod's status changed: the
                self.kubelet.soon()                         # controllers above it look again
            wait = min(IDLE_TICK, max(0.0, self.kubelet.next_due - time.time()))
            poller.poll(1000 * wait)
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass


STOP_EARLY = [False]         # a SIGTERM before the loop's own handlers were installed


def main(argv: list[str]) -> None:
    # First: a nudge (SIGUSR1, SIGHUP) may come the moment our info file exists, and their
    # default action would end us.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: STOP_EARLY.__setitem__(0, True))
    root = argv[argv.index("--root") + 1] if "--root" in argv else None
    store = ObjectStore(state_root(root))
    store.dir.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "start": proc_start_time(os.getpid()), "started_at": time.time()}
    tmp = info_path(store).with_name(".controller.json.tmp")
    tmp.write_text(json.dumps(me))
    os.replace(tmp, info_path(store))
    print(f"{time.strftime('%H:%M:%S')} controller {os.getpid()} started", flush=True)
    try:
        Controller(store.root).run()
    finally:
        info = read_info(store)
        if info and info["pid"] == os.getpid():
            info_path(store).unlink(missing_ok=True)
        print(f"{time.strftime('%H:%M:%S')} controller {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
