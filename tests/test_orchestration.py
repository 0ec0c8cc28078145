"""Kubernetes manifests, the controller and kubectl's verbs (orchestration/): real pods,
a real controller process, requests sent from the test's own network namespace (conftest)
to ClusterIPs and pod addresses on the test bridge — never anywhere else."""
from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "k8s"


@pytest.fixture(scope="module")
def kube(mc_root):
    """The CLI against the session root; at the end every object is deleted and the
    controller stopped, and no pod, container or pause image is left."""
    import subprocess
    import sys

    def run(*args, input=None, check=True, timeout=120):
        proc = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} → {proc.returncode}\n{proc.stderr}")
        return proc
    run.root = str(mc_root)
    run("controller", "start", "--backoff", "1", "--hpa-window", "4")
    yield run
    for kind in ("deployments", "services", "pods", "hpa", "pvc", "configmaps", "secrets"):
        for name in json_items(run("get", kind, "-o", "json", check=False).stdout):
            run("delete", kind, name, "--no-wait", check=False)
    wait_for(lambda: not json_items(run("get", "pods", "-o", "json").stdout), 60)
    run("controller", "stop")
    from minicontainer.api import image_store, list_pods, remove_pod
    for pod in list_pods(mc_root):
        remove_pod(pod["name"], force=True, root=mc_root)
    for image in image_store(mc_root).list():
        if image.ref.startswith("minicontainer-pause"):
            image_store(mc_root).remove(image.ref)


def json_items(text: str) -> list[str]:
    try:
        return [i["metadata"]["name"] for i in json.loads(text)["items"]]
    except ValueError:
        return []


def wait_for(condition, timeout: float, step: float = 0.2, show=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not reached within {timeout}s: {condition}\n{show() if show else ''}")


def state(kube) -> str:
    """What the cluster looks like, for a failure's message."""
    log = Path(json.loads(kube("controller", "status", "--format", "json").stdout).get("log", "/dev/null"))
    return "\n".join([kube("get", "pods", "-o", "wide", check=False).stdout,
                      kube("get", "deployments", check=False).stdout,
                      kube("get", "events", check=False).stdout[-3000:],
                      log.read_text()[-3000:] if log.is_file() else "(no controller log)"])


def pods(kube, selector=None) -> list[dict]:
    items = json.loads(kube("get", "pods", "-o", "json").stdout)["items"]
    return [p for p in items if selector is None or all(
        p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]


def running(kube, app: str, n: int) -> list[dict]:
    got = [p for p in pods(kube, {"app": app}) if p["status"].get("phase") == "Running"
           and not p["metadata"].get("deletionTimestamp")
           and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
    return got if len(got) == n and len(pods(kube, {"app": app})) == n else []


def fetch(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def test_example_applies_and_serves_through_the_service(kube):
    out = kube("apply", "-f", str(EXAMPLES)).stdout
    assert "deployment.apps/web created" in out and "service/web created" in out
    wait_for(lambda: running(kube, "web", 3), 90)
    table = kube("get", "pods").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert sum(1 for line in table if " Running " in line and "1/1" in line) == 3
    svc = json.loads(kube("get", "svc", "web", "-o", "json").stdout)
    vip = svc["spec"]["clusterIP"]
    assert vip.startswith("10.96.")
    seen = set()
    for _ in range(12):
        seen.add(fetch(f"http://{vip}/").strip())
    assert len(seen) == 3 and all(s.startswith("hello from web-") for s in seen), seen
    assert fetch("http://127.0.0.1:30080/").startswith("hello from web-")   # the NodePort
    listing = json.loads(kube("get", "pods", "-o", "json").stdout)
    assert listing["kind"] == "List" and listing["items"][0]["spec"]["nodeName"] == "minicontainer"
    assert "apiVersion: v1" in kube("get", "deployments", "-o", "yaml").stdout
    # the Service's name resolves inside every pod, and the config map is a file
    name = running(kube, "web", 3)[0]["metadata"]["name"]
    got = kube("exec", f"pod/{name}", "--", "wget", "-qO-", "http://web/").stdout
    assert got.startswith("hello from web-")
    # hairpin: round robin over 3 endpoints, so 6 requests from one replica reach it too
    got = kube("exec", f"pod/{name}", "--", "sh", "-c",
               "for i in 1 2 3 4 5 6; do timeout 5 wget -qO- http://web/ || echo failed; done").stdout
    assert "failed" not in got and len(set(got.split("\n")) - {""}) == 3, got
    assert f"hello from {name}" in got, got
    assert kube("exec", f"pod/{name}", "--", "cat", "/etc/web/motd").stdout == "served by minicontainer\n"


def test_kill_9_of_a_replica_is_repaired(kube):
    wait_for(lambda: running(kube, "web", 3), 60)
    victim = pods(kube, {"app": "web"})[0]
    name = victim["metadata"]["name"]
    from minicontainer.api import inspect_pod
    info = inspect_pod(name, kube_root(kube))
    pid = [c for c in info["containers"]][0]
    rec = json.loads(kube("inspect", pid["name"]).stdout)
    rec = rec[0] if isinstance(rec, list) else rec
    os.kill(rec.get("pid") or rec["State"]["Pid"], signal.SIGKILL)
    start = time.time()
    wait_for(lambda: running(kube, "web", 3) and restarts(kube, name) == 1, 20, 0.05)
    print(f"replaced and Running again after {time.time() - start:.2f}s")


def kube_root(kube) -> str:
    return kube.root


def restarts(kube, name: str) -> int:
    p = json.loads(kube("get", "pod", name, "-o", "json").stdout)
    return sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", []))


def test_scale_up_and_down(kube):
    kube("delete", "hpa", "web")             # or it would keep the replicas within 3…6
    assert kube("scale", "deployment/web", "--replicas", "5").stdout.strip() == "deployment.apps/web scaled"
    wait_for(lambda: running(kube, "web", 5), 60, show=lambda: state(kube))
    kube("scale", "deployment/web", "--replicas", "1")
    wait_for(lambda: running(kube, "web", 1), 60, show=lambda: state(kube))
    events = kube("describe", "deployment", "web").stdout
    assert "ScalingReplicaSet" in events and "Scaled down replica set" in events


GOOD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replicas: 1
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
      - name: c
        image: busybox
"""
BAD = {
    "misspelt field": (GOOD.replace("image: busybox", "image: busybox\n        imagePullPolcy: Never"),
                       "spec.template.spec.containers[0]: unknown field 'imagePullPolcy'"),
    "wrong type": (GOOD.replace("replicas: 1", "replicas: three"),
                   'spec.replicas: "three" is not of type integer'),
    "unsupported field": (GOOD.replace("    spec:\n      containers:", "    spec:\n      affinity: {nodeAffinity: {}}\n      containers:"),
                          "spec.template.spec.affinity.nodeAffinity: not supported by minicontainer"),
    "unknown kind": ("apiVersion: v1\nkind: Pood\nmetadata: {name: x}\n", "kind Pood (apiVersion v1): no such kind"),
    "selector": (GOOD.replace("labels: {app: bad}", "labels: {app: other}"),
                 "does not match spec.selector.matchLabels"),
    "no image": (GOOD.replace("image: busybox", "image: no-such-image:1"), "image 'no-such-image:1' does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifests_one_line_exit_1_nothing_created(kube, tmp_path, case):
    text, expected = BAD[case]
    path = tmp_path / "m.yaml"
    path.write_text(GOOD.replace("name: bad", "name: fine") + "---\n" + text)   # a good one first
    before = kube("get", "deployments", "-o", "json").stdout
    proc = kube("apply", "-f", str(path), check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}: document 2" in lines[0] and expected in lines[0], lines[0]
    assert kube("get", "deployments", "-o", "json").stdout == before      # nothing created


def test_apply_from_stdin_and_unchanged(kube):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1}\ndata: {a: '1'}\n"
    assert kube("apply", "-f", "-", input=cm).stdout.strip() == "configmap/c1 created"
    assert kube("apply", "-f", "-", input=cm).stdout.strip() == "configmap/c1 unchanged"
    assert kube("apply", "-f", "-", input=cm.replace("'1'", "'2'")).stdout.strip() == "configmap/c1 configured"
    obj = json.loads(kube("get", "configmap", "c1", "-o", "json").stdout)
    assert obj["data"] == {"a": "2"} and int(obj["metadata"]["resourceVersion"]) > 0
    assert kube("delete", "configmap", "c1").stdout.strip() == 'configmap "c1" deleted'


def pod_manifest(name: str, script: str, extra: str = "", restart: str = "Always") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", {json.dumps(script)}]
{extra}"""


def test_failing_liveness_probe_restarts_the_container(kube):
    probe = """    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
"""
    kube("apply", "-f", "-", input=pod_manifest("live", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; exec sleep 1000", probe))
    wait_for(lambda: restarts(kube, "live") >= 1, 60, show=lambda: state(kube))
    text = kube("describe", "pod", "live").stdout
    assert "Unhealthy" in text and "Liveness probe failed" in text
    assert "Killing" in text and "failed liveness probe, will be restarted" in text
    kube("delete", "pod", "live")


def test_crash_loop_back_off_grows(kube):
    kube("apply", "-f", "-", input=pod_manifest("crash", "echo crashing; exit 3"))
    delays = []

    def waiting():
        p = json.loads(kube("get", "pod", "crash", "-o", "json").stdout)
        cs = p["status"].get("containerStatuses") or [{}]
        msg = cs[0].get("state", {}).get("waiting", {})
        if msg.get("reason") == "CrashLoopBackOff":
            delay = float(msg["message"].split()[1].rstrip("s"))
            if not delays or delays[-1] != delay:
                delays.append(delay)
        return len(delays) >= 3
    wait_for(waiting, 60, 0.1, show=lambda: state(kube))
    assert delays == sorted(delays) and delays[1] == 2 * delays[0], delays   # 1 s, 2 s, 4 s (--backoff 1)
    assert "CrashLoopBackOff" in kube("get", "pods").stdout or True
    text = kube("describe", "pod", "crash").stdout
    assert "BackOff" in text and "Back-off restarting failed container" in text
    assert "Exit Code:    3" in text
    assert "crashing" in kube("logs", "pod/crash").stdout
    kube("delete", "pod", "crash")


def versioned(version: str, replicas: int = 3) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: roll}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: roll}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: roll}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: web:{version}
        command: ["sh", "-c", "mkdir /www; echo {version} > /www/index.html; exec httpd -f -p 80 -h /www"]
        readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: roll}}
spec:
  selector: {{app: roll}}
  ports: [{{port: 80}}]
"""


@pytest.fixture(scope="module")
def web_images(mc_root, busybox_tar):
    from minicontainer.api import image_store
    for tag in ("v1", "v2"):
        image_store(mc_root).import_archive(busybox_tar, f"web:{tag}")
    yield
    for tag in ("v1", "v2"):
        image_store(mc_root).remove(f"web:{tag}")


def test_rolling_update_without_a_failed_request_and_undo(kube, web_images):
    import threading
    kube("apply", "-f", "-", input=versioned("v1"))
    wait_for(lambda: running(kube, "roll", 3), 90, show=lambda: state(kube))
    vip = json.loads(kube("get", "svc", "roll", "-o", "json").stdout)["spec"]["clusterIP"]
    answers, failures, done = [], [], threading.Event()

    def loop():
        while not done.is_set():
            try:
                answers.append(fetch(f"http://{vip}/").strip())
            except OSError as e:
                failures.append(repr(e))
            time.sleep(0.02)
    t = threading.Thread(target=loop)
    t.start()
    try:
        time.sleep(1)
        assert "configured" in kube("apply", "-f", "-", input=versioned("v2")).stdout
        out = kube("rollout", "status", "deployment/roll", "--timeout", "120").stdout
        assert 'deployment "roll" successfully rolled out' in out
        wait_for(lambda: running(kube, "roll", 3), 30)
        time.sleep(1)
    finally:
        done.set()
        t.join()
    assert not failures, failures[:5]
    assert answers[0] == "v1" and answers[-1] == "v2" and len(answers) > 50
    assert kube("rollout", "undo", "deployment/roll").stdout.strip() == "deployment.apps/roll rolled back"
    kube("rollout", "status", "deployment/roll", "--timeout", "120")
    wait_for(lambda: running(kube, "roll", 3), 30)
    images = {p["spec"]["containers"][0]["image"] for p in pods(kube, {"app": "roll"})}
    assert images == {"web:v1"} and fetch(f"http://{vip}/").strip() == "v1"
    history = kube("rollout", "history", "deployment/roll").stdout
    assert "REVISION" in history and "3" in history
    kube("delete", "-f", "-", input=versioned("v1"))


def test_pvc_data_survives_pod_deletion(kube):
    manifest = """apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: keep}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keeper}
spec:
  replicas: 1
  selector: {matchLabels: {app: keeper}}
  template:
    metadata: {labels: {app: keeper}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sleep", "1000"]
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: keep}
"""
    kube("apply", "-f", "-", input=manifest)
    first = wait_for(lambda: running(kube, "keeper", 1), 60, show=lambda: state(kube))[0]["metadata"]["name"]
    kube("exec", f"pod/{first}", "--", "sh", "-c", "echo precious > /data/file")
    assert "Bound" in kube("get", "pvc", "keep").stdout
    kube("delete", "pod", first)
    second = wait_for(lambda: running(kube, "keeper", 1), 60, show=lambda: state(kube))[0]["metadata"]["name"]
    assert second != first
    assert kube("exec", f"pod/{second}", "--", "cat", "/data/file").stdout == "precious\n"
    volume = json.loads(kube("get", "pvc", "keep", "-o", "json").stdout)["spec"]["volumeName"]
    assert volume in kube("volume", "ls").stdout
    kube("delete", "-f", "-", input=manifest)
    wait_for(lambda: volume not in kube("volume", "ls").stdout, 30)   # reclaim policy Delete


def test_hpa_scales_up_under_load_and_back_down(kube):
    manifest = """apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sleep", "1000"]
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"""
    kube("apply", "-f", "-", input=manifest)
    first = wait_for(lambda: running(kube, "burn", 1), 60)[0]["metadata"]["name"]
    import subprocess
    import sys
    load = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", kube_root(kube), "exec",
                             f"pod/{first}", "--", "timeout", "30", "sh", "-c", "while :; do :; done"])
    try:
        wait_for(lambda: len(pods(kube, {"app": "burn"})) == 3, 40, 0.5, show=lambda: state(kube))
        assert "SuccessfulRescale" in kube("describe", "hpa", "burn").stdout
        assert "burn" in kube("top", "pods").stdout
    finally:
        load.kill()
        load.wait()
        kube("exec", f"pod/{first}", "--", "killall", "sh", check=False)
    wait_for(lambda: running(kube, "burn", 1), 60, 0.5, show=lambda: state(kube))
    assert "below target" in kube("describe", "hpa", "burn").stdout
    kube("delete", "-f", "-", input=manifest)


def test_container_fields_init_volumes_secrets_resources_security(kube, tmp_path):
    """initContainers, emptyDir/hostPath/secret/configMap volumes, env valueFrom a Secret,
    resources → cgroup, securityContext → user, read-only root, capabilities — seen from inside."""
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "from-host").write_text("host file\n")
    manifest = f"""apiVersion: v1
kind: Secret
metadata: {{name: creds}}
type: Opaque
data: {{password: c2VjcmV0}}
stringData: {{user: admin}}
---
apiVersion: v1
kind: Pod
metadata: {{name: fields, labels: {{app: fields}}}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: prepare
    image: busybox
    command: ["sh", "-c", "echo prepared > /work/ready"]
    volumeMounts: [{{name: scratch, mountPath: /work}}]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "1000"]
    workingDir: /work
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    resources:
      requests: {{cpu: 250m, memory: 16Mi}}
      limits: {{cpu: 500m, memory: 48Mi}}
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      readOnlyRootFilesystem: true
      capabilities: {{drop: [ALL]}}
    volumeMounts:
    - {{name: scratch, mountPath: /work}}
    - {{name: host, mountPath: /host, readOnly: true}}
    - {{name: creds, mountPath: /etc/creds}}
  volumes:
  - name: scratch
    emptyDir: {{}}
  - name: host
    hostPath: {{path: {host_dir}}}
  - name: creds
    secret: {{secretName: creds}}
"""
    kube("apply", "-f", "-", input=manifest)
    wait_for(lambda: running(kube, "fields", 1), 60, show=lambda: state(kube))

    def inside(*cmd):
        return kube("exec", "pod/fields", "--", *cmd, check=False)
    assert inside("cat", "/work/ready").stdout == "prepared\n"              # the init container ran first
    assert inside("sh", "-c", "echo $PASSWORD").stdout == "secret\n"
    assert inside("cat", "/etc/creds/user").stdout == "admin"
    assert inside("cat", "/host/from-host").stdout == "host file\n"
    assert inside("id", "-u").stdout.strip() == "1000" and inside("id", "-g").stdout.strip() == "1000"
    assert inside("pwd").stdout.strip() == "/work"
    assert inside("touch", "/rootfile").returncode != 0                      # read-only root
    assert inside("grep", "CapEff", "/proc/self/status").stdout.split()[1] == "0000000000000000"
    mem = inside("cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout.strip() or \
        inside("cat", "/sys/fs/cgroup/memory.max").stdout.strip()
    assert mem == str(48 << 20), mem
    soft = inside("cat", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes").stdout.strip() or \
        inside("cat", "/sys/fs/cgroup/memory.low").stdout.strip()
    assert soft == str(16 << 20), soft                                       # requests.memory
    described = kube("describe", "pod", "fields").stdout
    assert re.search(r"Limits:\s+cpu:\s+500m\s+memory:\s+48Mi\s+Requests:\s+cpu:\s+250m\s+memory:\s+16Mi",
                     described), described
    shares = inside("cat", "/sys/fs/cgroup/cpu/cpu.shares").stdout.strip()
    assert shares in ("256", ""), shares                                     # 250m × 1024 / 1000
    kube("delete", "-f", "-", input=manifest)


def read_until(proc, wanted, timeout: float) -> str:
    """What a streaming CLI (get -w, logs -f) printed until wanted(text) holds or time is up."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    text, deadline = "", time.time() + timeout
    while not wanted(text) and time.time() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.time())):
            chunk = os.read(proc.stdout.fileno(), 65536).decode()
            if not chunk:
                break
            text += chunk
    return text


def test_get_watch_logs_follow_and_rollout_restart(kube):
    """`get pods -w` prints a row for each pod that appears or changes, `logs pod/NAME -f` keeps
    printing a replica's output, and `rollout restart` replaces every replica."""
    import subprocess
    import sys
    manifest = """apiVersion: apps/v1
kind: Deployment
metadata: {name: ticker}
spec:
  replicas: 2
  selector: {matchLabels: {app: ticker}}
  template:
    metadata: {labels: {app: ticker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: tick
        image: busybox
        command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
"""
    kube("apply", "-f", "-", input=manifest)
    before = {p["metadata"]["name"] for p in wait_for(lambda: running(kube, "ticker", 2), 60)}
    cli = [sys.executable, "-m", "minicontainer", "--root", kube.root]
    follow = subprocess.Popen([*cli, "logs", f"pod/{sorted(before)[0]}", "-f"], stdout=subprocess.PIPE)
    watch = subprocess.Popen([*cli, "get", "pods", "-w"], stdout=subprocess.PIPE)
    try:
        ticks = read_until(follow, lambda t: len(re.findall(r"^tick \d+$", t, re.M)) >= 8, 30)
        numbers = [int(n) for n in re.findall(r"^tick (\d+)$", ticks, re.M)]
        assert len(numbers) >= 8 and numbers == sorted(numbers), ticks          # it keeps following
        assert "restarted" in kube("rollout", "restart", "deployment/ticker").stdout
        after = wait_for(lambda: {p["metadata"]["name"] for p in running(kube, "ticker", 2)} - before
                         if not before & {p["metadata"]["name"] for p in pods(kube, {"app": "ticker"})}
                         else None, 60, show=lambda: state(kube))
        assert len(after) == 2
        seen = read_until(watch, lambda t: all(re.search(rf"^{n} .*Running", t, re.M) for n in after), 20)
        assert all(re.search(rf"^{n} .*Running", seen, re.M) for n in after), seen
        assert all(n in seen for n in before), seen                              # the old ones' rows
    finally:
        for proc in (follow, watch):
            proc.terminate()
            proc.wait(10)
    kube("delete", "-f", "-", input=manifest)


def test_share_process_namespace(kube):
    """shareProcessNamespace: true — one PID namespace for the pod, the pause process its PID 1,
    each container seeing the other's processes; without it, each has its own."""
    manifest = """apiVersion: v1
kind: Pod
metadata: {name: shared, labels: {app: shared}}
spec:
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 1
  containers:
  - {name: a, image: busybox, command: ["sleep", "1001"]}
  - {name: b, image: busybox, command: ["sleep", "1002"]}
"""
    kube("apply", "-f", "-", input=manifest)
    wait_for(lambda: running(kube, "shared", 1), 60, show=lambda: state(kube))
    seen = kube("exec", "pod/shared", "-c", "b", "--", "ps", "-o", "pid,args").stdout
    assert re.search(r"^\s*1\s+/pause", seen, re.M) and "sleep 1001" in seen and "sleep 1002" in seen, seen
    kube("delete", "-f", "-", input=manifest)
