"""Kubernetes manifests, the controller and kubectl's verbs (orchestration/): real pods,
a real controller process, requests sent from the test's own network namespace (conftest)
to ClusterIPs and pod addresses on the test bridge — never anywhere else."""
from __future__ import annotations

import json
import os
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
    listing = json.loads(kube("get", "pods", "-o", "json").stdout)
    assert listing["kind"] == "List" and listing["items"][0]["spec"]["nodeName"] == "minicontainer"
    assert "apiVersion: v1" in kube("get", "deployments", "-o", "yaml").stdout
    # the Service's name resolves inside every pod, and the config map is a file
    name = running(kube, "web", 3)[0]["metadata"]["name"]
    got = kube("exec", f"pod/{name}", "--", "wget", "-qO-", "http://web/").stdout
    assert got.startswith("hello from web-")
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
    return kube("controller", "status", "--format", "json") and os.environ.get("MINICONTAINER_ROOT") or \
        json.loads(kube("controller", "status", "--format", "json").stdout)["log"].rsplit("/k8s/", 1)[0]


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
    "unsupported field": (GOOD.replace("    spec:\n      containers:", "    spec:\n      affinity: {}\n      containers:"),
                          "spec.template.spec.affinity: not supported by minicontainer"),
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
