"""The kubelet: make each Pod object real on this node, and report what is.

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
    shell, roughly:  minicontainer pod create NAME; minicontainer run -d --pod NAME IMAGE CMD

sync_pod() is one reconcile step for one Pod — observe (the pod's containers and their
records), diff (against spec.containers), act (start, restart after back-off, kill on a
failed liveness probe) — and then writes status: phase, conditions, containerStatuses,
podIP. Everything it needs to remember between steps (restart counts, back-off deadlines,
probe counters) is in a small file per pod, so the controller may be killed at any line.

Restarts follow Kubernetes: restartPolicy Always | OnFailure | Never; the first restart at
once, then a back-off of 10 s doubling up to 5 min (CrashLoopBackOff while waiting), reset
after 10 min of running. `controller start --backoff S` makes the 10 s shorter (demos, tests).

Mapping of container fields onto `minicontainer run` (all through api.Container — the one run
sequence): image, command + args, env (+ valueFrom ConfigMap/Secret), workingDir,
resources.limits.memory → -m, limits.cpu → --cpus, requests.cpu → --cpu-shares,
requests.memory → --memory-reservation (kubelet's cgroup v2 MemoryQoS sets memory.min),
securityContext → -u UID:GID, --read-only, --cap-add/--cap-drop, no-new-privileges,
shareProcessNamespace → --pid container:INFRA (the pause process is the pod's PID 1),
volumeMounts → -v (emptyDir, hostPath, PVC → a named volume, configMap/secret → files).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..state import StateStore
from . import probes
from .scheduler import cpu_millis, memory_bytes
from .store import ObjectStore, now_rfc3339, parse_rfc3339

NODE = "minicontainer"
ENDPOINTS_WAIT = 5.0        # s at most, before SIGTERM, for a deleted pod to leave its Services
RESET_AFTER = 60            # × the back-off base (10 s → 10 min), as Kubernetes


class Deferred(Exception):
    """sync_pod() reached a step that waits (starting or removing a container takes a few
    hundred ms of forks and mounts) while the kubelet may not block: the controller runs this
    pod's sync in a worker process of its own instead, so fifty pods start side by side."""


def runtime_name(pod: dict) -> str:
    """The pods.py pod (and container-name prefix) of a Pod object."""
    ns = pod["metadata"].get("namespace", "default")
    name = pod["metadata"]["name"]
    return name if ns == "default" else f"{ns}.{name}"


def container_name(pod: dict, c: dict) -> str:
    return f"{runtime_name(pod)}-{c['name']}"


class Kubelet:
    def __init__(self, store: ObjectStore, backoff_base: float = 10.0, root=None,
                 node: str = NODE, host_ip: str = "127.0.0.1"):
        self.store = store
        self.root = Path(root) if root else store.root      # where its containers live: a node's own
        self.node = node                                    # (cluster/agent.py), else the store's
        self.host_ip = host_ip
        self.containers = StateStore(self.root)
        self.backoff_base = backoff_base
        self.records: dict = {}
        self.notes_read: dict = {}                          # pod → its notes as last read or written
        self.next_due = float("inf")                        # the next probe or restart that is due
        self.notes_dir = store.dir / ".kubelet"
        self.may_block = True                               # False: blocking steps raise Deferred
        self.changed = False                                # a pod's status changed in this turn

    def blocking_step(self) -> None:
        """Called before each step that waits for containers (see Deferred)."""
        if not self.may_block:
            raise Deferred()

    def soon(self, delay: float = 0.0) -> None:
        """Ask for another turn after `delay` seconds (nothing else would wake the loop)."""
        self.next_due = min(self.next_due, time.time() + delay)

    # -- what the kubelet remembers, per pod --------------------------------------------------
    def notes(self, pod: dict) -> dict:
        try:
            text = (self.notes_dir / f"{runtime_name(pod)}.json").read_text()
            self.notes_read[runtime_name(pod)] = text
            return json.loads(text)
        except (OSError, ValueError):
            self.notes_read.pop(runtime_name(pod), None)
            return {"containers": {}}

    def save_notes(self, pod: dict, notes: dict) -> None:
        """Written only when changed: an idle turn writes nothing."""
        text = json.dumps(notes)
        if self.notes_read.get(runtime_name(pod)) == text:
            return
        self.notes_dir.mkdir(parents=True, exist_ok=True)
        path = self.notes_dir / f"{runtime_name(pod)}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        self.notes_read[runtime_name(pod)] = text

    def forget(self, pod: dict) -> None:
        (self.notes_dir / f"{runtime_name(pod)}.json").unlink(missing_ok=True)
        self.notes_read.pop(runtime_name(pod), None)

    # -- one pod --------------------------------------------------------------------------
    def sync_pod(self, pod: dict, records: dict) -> None:
        """Observe → diff → act for one Pod; records: container name → newest record."""
        from . import pods as rt
        if (pod["spec"].get("nodeName") or NODE) != self.node:
            return                                          # another node's kubelet runs it
        if pod["metadata"].get("deletionTimestamp"):
            return self.terminate(pod, records)
        if not pod["spec"].get("nodeName"):
            return                                          # the scheduler has not bound it yet
        notes = self.notes(pod)
        name = runtime_name(pod)
        self.records = records                              # updated as we start and remove
        runtime = rt.PodStore(self.root).load(name)
        infra = records.get(rt.infra_name(name))
        if runtime is None or infra is None or not self.running(infra):
            self.blocking_step()
            if notes.get("sandbox") and runtime is not None:    # the sandbox died: all again
                self.event(pod, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
                rt.remove_pod(name, force=True, root=self.root)
                runtime = None
            self.start_sandbox(pod, runtime)
            notes["sandbox"] = True
            self.save_notes(pod, notes)
            records.update(self.records_of(pod))
        if not self.init_containers_done(pod, notes, records):
            self.save_notes(pod, notes)
            return self.write_status(pod, notes, records)
        for c in pod["spec"]["containers"]:
            self.sync_container(pod, c, notes, records)
        self.save_notes(pod, notes)
        self.write_status(pod, notes, records)

    def running(self, rec) -> bool:
        from ..status import current_status
        return current_status(rec) == "running"

    def records_of(self, pod: dict) -> dict:
        """The records of the pod's sandbox and containers, by name (the names index: not
        every container's record)."""
        from .pods import find_container, infra_name
        names = [infra_name(runtime_name(pod))] + [container_name(pod, c) for c in
                                                   (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]]
        return {name: rec for name in names if (rec := find_container(self.containers, name)) is not None}

    def start_sandbox(self, pod: dict, runtime) -> None:
        from . import pods as rt
        ports = self.host_ports(pod)
        if runtime is None:
            labels = dict(pod["metadata"].get("labels") or {}, **{rt.KUBELET_LABEL: pod["metadata"]["name"]})
            rt.create_pod(runtime_name(pod), root=self.root, publish=ports, labels=labels)
        else:
            rt.start_infra(rt.PodStore(self.root), runtime)
        self.prepare_volumes(pod)

    def host_ports(self, pod: dict) -> list[str]:
        return []                                           # NodePort is the Service's (services.py)

    # -- init containers: one after the other, each to success -------------------------------
    def init_containers_done(self, pod: dict, notes: dict, records: dict) -> bool:
        for c in pod["spec"].get("initContainers") or []:
            state = notes["containers"].setdefault("init:" + c["name"], {"restarts": 0})
            if state.get("done"):
                continue
            rec = records.get(container_name(pod, c))
            if rec is None:
                if self.start_due(state):
                    self.start_container(pod, c, state)
                return False
            if self.running(rec):
                return False
            rec = self.recorded_exit(rec, records)
            if rec.exit_code == 0:
                state["done"] = True
                continue
            if pod["spec"].get("restartPolicy", "Always") == "Never":
                state["failed"] = True
                return False
            self.restart_after_backoff(pod, c, rec, state)
            return False
        return True

    # -- app containers ---------------------------------------------------------------------
    def sync_container(self, pod: dict, c: dict, notes: dict, records: dict) -> None:
        state = notes["containers"].setdefault(c["name"], {"restarts": 0})
        rec = records.get(container_name(pod, c))
        if rec is None:
            if not state.get("finished") and self.start_due(state):
                self.start_container(pod, c, state)
            return
        if self.running(rec):
            if "killing_since" in state:                    # a failed liveness probe: wait, then KILL
                if time.time() - state["killing_since"] >= self.grace(pod):
                    self.signal(rec, "KILL")
                else:
                    self.next_due = min(self.next_due, state["killing_since"] + self.grace(pod))
                return
            self.run_probes(pod, c, rec, state)
            return
        if rec.status in ("created", "restarting"):
            self.soon(0.2)                                  # its supervisor is still at work: no
            return                                          # pidfd tells when it is done
        rec = self.recorded_exit(rec, records)
        state["ready"] = False
        state.pop("killing_since", None)
        state["last_exit"] = {"exitCode": rec.exit_code, "startedAt": now_rfc3339(rec.started_at),
                              "finishedAt": now_rfc3339(rec.finished_at or time.time()),
                              "reason": "Error" if rec.exit_code else "Completed"}
        if rec.oom_killed:
            state["last_exit"]["reason"] = "OOMKilled"
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and rec.exit_code == 0):
            state["finished"] = True
            return
        self.restart_after_backoff(pod, c, rec, state)

    def recorded_exit(self, rec, records: dict):
        """The record once its supervisor has written how PID 1 ended. The pidfd wakes us the
        moment PID 1 exits, a few ms before that: waiting for it is a worker's job."""
        from ..status import OWNER_TIMEOUT, owner_alive, wait_until
        if rec.status not in ("running", "paused"):
            return rec                                      # recorded already
        self.blocking_step()

        def recorded() -> bool:
            now = self.containers.load(rec.id)
            return now is None or now.status not in ("running", "paused") or not owner_alive(now)
        wait_until(recorded, OWNER_TIMEOUT)
        rec = self.containers.load(rec.id) or rec
        records[rec.name] = rec
        return rec

    def start_due(self, state: dict) -> bool:
        """False while a failed create waits for its retry (start_retry_delay)."""
        if time.time() < state.get("retry_at", 0):
            self.next_due = min(self.next_due, state["retry_at"])
            return False
        return True

    def restart_after_backoff(self, pod: dict, c: dict, rec, state: dict) -> None:
        """The first restart at once, then 10 s, 20 s, … 5 min (Kubernetes' CrashLoopBackOff)."""
        now = time.time()
        ran = (rec.finished_at or now) - (rec.started_at or now)
        if ran > RESET_AFTER * self.backoff_base:
            state["streak"] = 0
        if "next_start" not in state:
            streak = state.get("streak", 0)
            delay = 0 if streak == 0 else min(self.backoff_base * 2 ** (streak - 1),
                                              30 * self.backoff_base)
            state["next_start"], state["delay"] = now + delay, delay
            if delay:
                self.event(pod, "BackOff", f"Back-off restarting failed container {c['name']} in "
                                           f"pod {pod['metadata']['name']}", "Warning")
        if now < state["next_start"]:
            self.next_due = min(self.next_due, state["next_start"])
            return                                          # waiting: CrashLoopBackOff
        from ..stop import remove_container
        self.blocking_step()
        remove_container(rec.id, force=True, root=self.root)
        self.records.pop(rec.name, None)
        state.pop("next_start", None)
        state["streak"] = state.get("streak", 0) + 1
        state["restarts"] += 1
        self.start_container(pod, c, state)

    def start_container(self, pod: dict, c: dict, state: dict) -> None:
        from ..container import Container
        from ..errors import MinicontainerError
        from .pods import join_pod
        self.blocking_step()
        state.update(started=time.time(), probes={}, ready=False)
        try:
            options = join_pod(self.container_options(pod, c), self.root)
            image = state.get("image") or c["image"]        # a cold-migrated pod: its carried layer
            cid = Container(image, options.pop("command"), root=self.root, **options).start()
        except MinicontainerError as e:
            state["last_exit"] = {"exitCode": getattr(e, "exit_code", 125), "reason": "StartError",
                                  "message": str(e), "finishedAt": now_rfc3339()}
            state["retry_at"] = time.time() + self.start_retry_delay(state)
            self.event(pod, "Failed", f"Error: {e}", "Warning")
            return
        state.pop("retry_at", None)
        state.pop("start_failures", None)
        if not c.get("startupProbe") and not c.get("readinessProbe"):
            state.update(ready=True, startup_done=True)     # ready as soon as PID 1 runs
        rec = self.containers.load(cid)
        if rec is not None:
            self.records[rec.name] = rec
        self.event(pod, "Created", f"Created container {c['name']}")
        self.event(pod, "Started", f"Started container {c['name']}")

    def start_retry_delay(self, state: dict) -> float:
        """A container that could not be created is tried again after the back-off (1×, 2×,
        4× … the base, at most 30×), not in a tight loop."""
        state["start_failures"] = state.get("start_failures", 0) + 1
        return min(self.backoff_base * 2 ** (state["start_failures"] - 1), 30 * self.backoff_base)

    def container_options(self, pod: dict, c: dict) -> dict:
        """A container spec as api.Container's options (see the module docstring)."""
        command = list(c.get("command") or []) + list(c.get("args") or [])
        if c.get("args") and not c.get("command"):
            command = self.image_entrypoint(c["image"]) + command
        options = {"command": command, "name": container_name(pod, c), "pod": runtime_name(pod),
                   "env": self.environment(pod, c), "workdir": c.get("workingDir"),
                   "volumes": self.volume_options(pod, c)}
        if pod["spec"].get("shareProcessNamespace"):       # one PID namespace, the pause is its
            from .pods import infra_name                    # PID 1 (and reaps for all): --pid
            options["pid"] = f"container:{infra_name(runtime_name(pod))}"    # container:INFRA
        limits = (c.get("resources") or {}).get("limits") or {}
        requests = (c.get("resources") or {}).get("requests") or {}
        cg = {}
        if "memory" in limits:
            cg["memory"] = str(memory_bytes(limits["memory"]))
        if "cpu" in limits:
            cg["cpus"] = str(cpu_millis(limits["cpu"]) / 1000)
        if "cpu" in requests:                               # as kubelet: shares = millicores × 1024 / 1000
            cg["cpu_shares"] = str(max(2, cpu_millis(requests["cpu"]) * 1024 // 1000))
        if "memory" in requests:                            # a soft limit: memory.soft_limit_in_bytes
            cg["memory_reservation"] = str(memory_bytes(requests["memory"]))    # (v1), memory.low (v2)
        options["limits"] = cg
        sc = c.get("securityContext") or {}
        if "runAsUser" in sc or "runAsGroup" in sc:
            options["user"] = f"{sc.get('runAsUser', 0)}" + (f":{sc['runAsGroup']}" if "runAsGroup" in sc else "")
        options["read_only"] = bool(sc.get("readOnlyRootFilesystem"))
        caps = sc.get("capabilities") or {}
        options["cap_add"], options["cap_drop"] = list(caps.get("add") or []), list(caps.get("drop") or [])
        if sc.get("allowPrivilegeEscalation") is True:
            options["security_opt"] = ["no-new-privileges=false"]
        return options

    def image_entrypoint(self, ref: str) -> list[str]:
        from ..storage.images import image_store
        config = image_store(self.root).get(ref).config or {}
        return list(config.get("entrypoint") or config.get("Entrypoint") or [])

    def environment(self, pod: dict, c: dict) -> list[str]:
        ns = pod["metadata"].get("namespace", "default")
        out = []
        for e in c.get("env") or []:
            if "value" in e or "valueFrom" not in e:
                out.append(f"{e['name']}={e.get('value', '')}")
                continue
            ref = e["valueFrom"].get("configMapKeyRef") or e["valueFrom"].get("secretKeyRef")
            kind = "ConfigMap" if "configMapKeyRef" in e["valueFrom"] else "Secret"
            out.append(f"{e['name']}={self.lookup(kind, ref['name'], ref['key'], ns)}")
        return out

    def lookup(self, kind: str, name: str, key: str, ns: str) -> str:
        from ..errors import ConfigError
        obj = self.store.get(kind, name, ns)
        data = secret_data(obj) if kind == "Secret" and obj else (obj or {}).get("data") or {}
        if key not in data:
            raise ConfigError(f"{kind} {name}: no key {key!r}" if obj else f'{kind.lower()} "{name}" not found')
        return data[key]

    # -- volumes ----------------------------------------------------------------------------
    def pod_dir(self, pod: dict) -> Path:
        return self.store.dir / ".pods" / runtime_name(pod)

    def prepare_volumes(self, pod: dict) -> None:
        """emptyDir: a directory for the pod's life; configMap/secret: their keys as files."""
        ns = pod["metadata"].get("namespace", "default")
        for v in pod["spec"].get("volumes") or []:
            target = self.pod_dir(pod) / "volumes" / v["name"]
            if "emptyDir" in v:
                target.mkdir(parents=True, exist_ok=True)
            elif "configMap" in v or "secret" in v:
                kind, name = ("ConfigMap", v["configMap"]["name"]) if "configMap" in v \
                    else ("Secret", v["secret"]["secretName"])
                obj = self.store.get(kind, name, ns)
                data = (secret_data(obj) if kind == "Secret" else obj.get("data") or {}) if obj else {}
                target.mkdir(parents=True, exist_ok=True)
                for key, value in data.items():
                    (target / key).write_text(value)
                    os.chmod(target / key, 0o644)           # Kubernetes' defaultMode (any uid reads)

    def volume_options(self, pod: dict, c: dict) -> list[str]:
        """volumeMounts → -v SOURCE:TARGET[:ro]."""
        from ..errors import ConfigError
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        out = []
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m["name"])
            if v is None:
                raise ConfigError(f"volumeMounts {m['name']}: no volume of that name in the pod")
            if "hostPath" in v:
                source = v["hostPath"]["path"]
            elif "persistentVolumeClaim" in v:
                source = self.claim_volume(pod, v["persistentVolumeClaim"]["claimName"])
            else:
                source = str(self.pod_dir(pod) / "volumes" / v["name"])
            ro = m.get("readOnly") or "configMap" in v or "secret" in v
            out.append(f"{source}:{m['mountPath']}" + (":ro" if ro else ""))
        return out

    def claim_volume(self, pod: dict, claim: str) -> str:
        from ..errors import ConfigError
        pvc = self.store.get("PersistentVolumeClaim", claim, pod["metadata"].get("namespace", "default"))
        if pvc is None or not (pvc.get("spec") or {}).get("volumeName"):
            raise ConfigError(f'persistentvolumeclaim "{claim}" not found or not bound yet')
        return pvc["spec"]["volumeName"]

    # -- probes ---------------------------------------------------------------------------
    def run_probes(self, pod: dict, c: dict, rec, state: dict) -> None:
        """startupProbe first; then liveness (fails → Killing, restart) and readiness."""
        now = time.time()
        counters = state.setdefault("probes", {})
        started = state.get("startup_done") or "startupProbe" not in c
        order = [("startupProbe", "Startup")] if not started else \
            [("livenessProbe", "Liveness"), ("readinessProbe", "Readiness")]
        if started:
            state["startup_done"] = True
        if "readinessProbe" not in c and started:
            state["ready"] = True
        for field, label in order:
            spec = c.get(field)
            if not spec:
                continue
            p = counters.setdefault(field, {"fail": 0, "ok": 0, "last": 0})
            due = max(state.get("started", now) + spec.get("initialDelaySeconds", 0),
                      p["last"] + spec.get("periodSeconds", 10))
            if now < due:
                self.next_due = min(self.next_due, due)
                continue
            self.next_due = min(self.next_due, now + spec.get("periodSeconds", 10))
            p["last"] = now
            ok, why = probes.run_probe(spec, c, rec, self.pod_ip(rec), self.root)
            if ok:
                p["ok"] += 1
                p["fail"] = 0
                if p["ok"] >= spec.get("successThreshold", 1):
                    if field == "readinessProbe":
                        state["ready"] = True
                    elif field == "startupProbe":
                        state["startup_done"] = True
                continue
            p["fail"] += 1
            p["ok"] = 0
            self.event(pod, "Unhealthy", f"{label} probe failed: {why}", "Warning")
            if field == "readinessProbe":
                state["ready"] = False
            elif p["fail"] >= spec.get("failureThreshold", 3):
                self.event(pod, "Killing", f"Container {c['name']} failed {label.lower()} probe, "
                                           "will be restarted")
                counters.pop(field, None)
                self.kill_container(pod, rec, state)
                return

    def pod_ip(self, rec) -> str:
        from . import pods as rt
        return pod_ip_of(self.records.get(rt.infra_name(rec.config.get("pod") or "")))

    def kill_container(self, pod: dict, rec, state: dict) -> None:
        """SIGTERM now; SIGKILL once terminationGracePeriodSeconds have passed (sync_container
        comes back to it) — the loop never blocks on one container."""
        self.signal(rec, "TERM")
        state["killing_since"] = time.time()
        self.next_due = min(self.next_due, state["killing_since"] + self.grace(pod))

    def signal(self, rec, sig: str) -> None:
        from ..errors import MinicontainerError
        from ..stop import kill_container
        try:
            kill_container(rec.id, sig, root=self.root)
        except MinicontainerError:
            pass                                            # exited meanwhile

    def grace(self, pod: dict) -> float:
        return pod["spec"].get("terminationGracePeriodSeconds", 30)

    # -- deletion -------------------------------------------------------------------------
    def terminate(self, pod: dict, records: dict) -> None:
        """A deleted pod: SIGTERM its containers, SIGKILL after the grace period (without
        waiting here: the next turns look again), then the sandbox, the pod's files and the
        object itself."""
        from . import pods as rt
        name = runtime_name(pod)
        if rt.PodStore(self.root).load(name) is not None:
            notes = self.notes(pod)
            alive = [r for n, r in records.items() if n.startswith(name + "-")
                     and n != rt.infra_name(name) and self.running(r)]
            if alive:
                if "terminating" not in notes:              # this turn takes the pod out of its
                    notes["terminating"] = time.time()      # Services' endpoints; SIGTERM next
                    self.save_notes(pod, notes)             # turn, so no new connection finds it gone
                    self.soon()
                    return
                if not notes.get("term_sent"):
                    if self.in_endpoints(pod) and time.time() - notes["terminating"] < ENDPOINTS_WAIT:
                        self.soon(0.2)
                        return                              # a Service still sends it connections
                    notes["term_sent"] = time.time()
                    self.save_notes(pod, notes)
                    for c in pod["spec"]["containers"]:
                        self.event(pod, "Killing", f"Stopping container {c['name']}")
                    for r in alive:
                        self.signal(r, "TERM")
                    self.next_due = min(self.next_due, notes["term_sent"] + self.grace(pod))
                elif time.time() - notes["term_sent"] >= self.grace(pod):
                    for r in alive:
                        self.signal(r, "KILL")
                else:                                       # their exits wake us (pidfds), the
                    self.next_due = min(self.next_due, notes["term_sent"] + self.grace(pod))
                return                                      # grace period's end does too
            self.blocking_step()
            rt.remove_pod(name, force=True, root=self.root)
        shutil.rmtree(self.pod_dir(pod), ignore_errors=True)
        self.forget(pod)
        self.store.delete("Pod", pod["metadata"]["name"], pod["metadata"].get("namespace", "default"))

    def in_endpoints(self, pod: dict) -> bool:
        """Does an Endpoints object still list the pod as ready? (It is written after the
        Service's rules, services.py: once the pod is gone from it, no new connection comes.)"""
        name = pod["metadata"]["name"]
        return any(a.get("targetRef", {}).get("name") == name
                   for ep in self.store.list("Endpoints", pod["metadata"].get("namespace", "default"))
                   for subset in ep.get("subsets") or [] for a in subset.get("addresses") or [])

    # -- status ---------------------------------------------------------------------------
    def write_status(self, pod: dict, notes: dict, records: dict) -> None:
        from . import pods as rt
        statuses = [self.container_status(pod, c, notes["containers"].get(c["name"], {}),
                                          records.get(container_name(pod, c)))
                    for c in pod["spec"]["containers"]]
        infra = records.get(rt.infra_name(runtime_name(pod)))
        inits_done = all(notes["containers"].get("init:" + c["name"], {}).get("done")
                         for c in pod["spec"].get("initContainers") or [])
        ready = inits_done and all(s["ready"] for s in statuses)
        phase = pod_phase(pod, statuses, inits_done, notes)
        status = {"phase": phase, "hostIP": self.host_ip, "podIP": pod_ip_of(infra),
                  "startTime": pod.get("status", {}).get("startTime") or now_rfc3339(),
                  "conditions": [
                      {"type": "PodScheduled", "status": "True"},
                      {"type": "Initialized", "status": str(inits_done)},
                      {"type": "ContainersReady", "status": str(ready)},
                      {"type": "Ready", "status": str(ready)}],
                  "containerStatuses": statuses}
        if status["podIP"]:
            status["podIPs"] = [{"ip": status["podIP"]}]
        if transitions_kept(status, pod.get("status") or {}) == pod.get("status"):
            return                                     # as read this turn: no locked write (a
                                                       # change by another process since: next turn)

        def change(obj):
            if transitions_kept(status, obj.get("status") or {}) != obj.get("status"):
                self.changed = True                    # the controllers above look again
            obj["status"] = status
        self.store.update("Pod", pod["metadata"]["name"], change, pod["metadata"].get("namespace", "default"))

    def container_status(self, pod: dict, c: dict, state: dict, rec) -> dict:
        out = {"name": c["name"], "image": c["image"], "ready": bool(state.get("ready")),
               "restartCount": state.get("restarts", 0), "started": False}
        if rec is not None and self.running(rec):
            out["state"] = {"running": {"startedAt": now_rfc3339(rec.started_at)}}
            out["started"] = True
            out["containerID"] = f"minicontainer://{rec.id}"
        elif "next_start" in state and state.get("delay"):
            out["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                        "message": f"back-off {state['delay']:g}s restarting failed "
                                                   f"container={c['name']} pod={pod['metadata']['name']}"}}
        elif state.get("finished") and state.get("last_exit"):
            out["state"] = {"terminated": state["last_exit"]}
        elif state.get("last_exit", {}).get("reason") == "StartError":
            out["state"] = {"waiting": {"reason": "CreateContainerError",
                                        "message": state["last_exit"]["message"]}}
        else:
            out["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if state.get("last_exit") and not state.get("finished"):
            out["lastState"] = {"terminated": state["last_exit"]}
        return out

    def event(self, pod: dict, reason: str, message: str, type_: str = "Normal") -> None:
        self.store.record_event(pod, reason, message, type_, source="kubelet")


def transitions_kept(status: dict, old: dict) -> dict:
    """STATUS with each condition's lastTransitionTime: OLD's while the condition is unchanged,
    now for one that changed. (Changes STATUS; returns it.)"""
    for cond in status["conditions"]:
        prev = next((p for p in old.get("conditions", []) if p["type"] == cond["type"]), None)
        cond["lastTransitionTime"] = prev["lastTransitionTime"] if prev and \
            prev["status"] == cond["status"] else now_rfc3339()
    return status


def pod_phase(pod: dict, statuses: list, inits_done: bool, notes: dict) -> str:
    states = [s["state"] for s in statuses]
    if any("init:" in k and v.get("failed") for k, v in notes["containers"].items()):
        return "Failed"
    if all("terminated" in s for s in states):
        return "Succeeded" if all(s["terminated"].get("exitCode") == 0 for s in states) else "Failed"
    if inits_done and any("running" in s for s in states) or any(s.get("restartCount") for s in statuses):
        return "Running"
    return "Pending"


def pod_ip_of(infra) -> str:
    if infra is None:
        return ""
    return ((infra.network or {}).get("ip") or (infra.network or {}).get("address") or "").split("/")[0]


def secret_data(obj: dict) -> dict:
    """A Secret's data is base64 (as in Kubernetes); stringData is plain text."""
    import base64
    data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data


def since(rfc: str) -> float:
    return time.time() - parse_rfc3339(rfc)
