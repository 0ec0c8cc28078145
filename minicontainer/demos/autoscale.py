"""Demo: the HorizontalPodAutoscaler adds pods under CPU load and removes them after (labs/10).

Shell equivalent:
    minicontainer apply -f burn.yaml                  # 1 replica requesting 100m CPU + an HPA (1…3, 50 %)
    minicontainer exec pod/<pod> -- timeout 25 sh -c 'while :; do :; done' &
    minicontainer get hpa -w                          # cpu: 950%/50% → 3 replicas → back to 1
See docs/orchestration.md.
"""
from __future__ import annotations

import json
import time

TITLE = "Autoscaling: more load, more pods; less load, fewer"
SUMMARY = "a CPU load makes the HPA scale a Deployment 1 → 3 → 1"

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-burn
spec:
  replicas: 1
  selector:
    matchLabels: {app: demo-burn}
  template:
    metadata:
      labels: {app: demo-burn}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: worker
        image: busybox
        command: ["sleep", "100000"]
        resources:
          requests: {cpu: 100m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: demo-burn
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: demo-burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
"""
WINDOW = 10


def run(demo) -> None:
    from .narrate import DemoError
    from .self_healing import clean_up, pause_image_refs, pods, wait_running
    demo.ensure_image("busybox")
    pause_images = pause_image_refs(demo)
    from ..api import ObjectStore, read_settings
    before = read_settings(ObjectStore(demo.state_root()))
    demo.on_exit(lambda: restore_settings(demo, before))
    demo.on_exit(lambda: clean_up(demo, "deployment", "demo-burn", "demo-burn", pause_images))
    demo.on_exit(lambda: demo.mc("delete", "hpa", "demo-burn", show=False))
    demo.say(f"""The HPA measures each pod's CPU use in its cgroup, as a percentage of what the pod
        *requests* (100m = a tenth of a CPU), and sets the Deployment's replicas to
        ceil(replicas × use / target). Scaling down waits for a stabilization window — 5 minutes
        in Kubernetes, {WINDOW} s here — so a short dip does not remove pods needed a moment later.""")
    demo.step("Apply a Deployment (1 replica) and its autoscaler")
    demo.mc("controller", "start", "--hpa-window", str(WINDOW), check=True)
    demo.mc("apply", "-f", "-", input=MANIFEST, check=True)
    wait_running(demo, "demo-burn", 1)
    demo.mc("get", "hpa")

    demo.step("Load: a busy loop in the pod for 25 s")
    first = pods(demo, "demo-burn")[0]["metadata"]["name"]
    load = demo.mc_background("exec", f"pod/{first}", "--", "timeout", "25", "sh", "-c", "while :; do :; done")
    demo.on_exit(lambda: load.poll() is None and (load.kill(), load.wait()))
    grown = watch(demo, lambda n: n == 3, 60)
    if not grown:
        raise DemoError("the autoscaler did not reach 3 replicas within 60 s")
    demo.mc("get", "pods")

    demo.step("The load stops: after the window, back to 1")
    load.wait(timeout=60)
    if not watch(demo, lambda n: n == 1, 90):
        raise DemoError("the autoscaler did not go back to 1 replica within 90 s")
    demo.mc("describe", "hpa", "demo-burn")


def watch(demo, done, timeout: float) -> bool:
    """Print `get hpa` every 3 s until done(replicas)."""
    from .self_healing import pods
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        lines = demo.mc("get", "hpa", "demo-burn", show=False).stdout.strip().splitlines()
        demo.print(f"{time.monotonic() - start:5.1f}s  {lines[-1] if lines else ''}")
        if done(len(pods(demo, "demo-burn"))):
            return True
        time.sleep(3)
    return False


def restore_settings(demo, before: dict) -> None:
    from ..api import ObjectStore, settings_path
    settings_path(ObjectStore(demo.state_root())).write_text(json.dumps(before))
