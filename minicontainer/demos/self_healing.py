"""Demo: a Deployment heals itself — kill -9 a replica, delete a pod, scale (labs/10).

Shell equivalent:
    minicontainer apply -f web.yaml                     # 3 replicas of busybox httpd
    kill -9 <PID 1 of one replica>; minicontainer get pods     # RESTARTS 1, Running again
    minicontainer delete pod <one>; minicontainer get pods      # a new pod takes its place
    minicontainer scale deployment/demo-web --replicas 5
See docs/orchestration.md.
"""
from __future__ import annotations

import json
import time

TITLE = "Self-healing: a controller keeps 3 replicas running"
SUMMARY = "kill -9 a replica, delete a pod, scale: the controller repairs each"

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
spec:
  replicas: 3
  selector:
    matchLabels: {app: demo-web}
  template:
    metadata:
      labels: {app: demo-web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
"""


def pods(demo, app: str) -> list[dict]:
    items = json.loads(demo.mc("get", "pods", "-o", "json", show=False).stdout or '{"items": []}')["items"]
    return [p for p in items if p["metadata"].get("labels", {}).get("app") == app]


def wait_running(demo, app: str, n: int, timeout: float = 90) -> float:
    """Seconds until exactly n pods of app are Running and ready (DemoError after timeout)."""
    from .narrate import DemoError
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        got = pods(demo, app)
        if len(got) == n and all(p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
                                 and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
                                 for p in got):
            return time.monotonic() - start
        time.sleep(0.1)
    raise DemoError(f"{app}: not {n} pods Running after {timeout:.0f} s (`minicontainer get pods`)")


def clean_up(demo, kind: str, name: str, app: str, pause_images: set) -> None:
    """Delete what the demo applied, wait for its pods, stop the controller if nothing else is
    left for it, and remove the pause image if the demo brought it."""
    demo.mc("delete", kind, name, "--no-wait", show=False)
    deadline = time.monotonic() + 60
    while pods(demo, app) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [k for k in ("deployments", "pods", "services", "hpa", "pvc")
            if json.loads(demo.mc("get", k, "-o", "json", show=False).stdout or '{"items": []}')["items"]]
    if not left:
        demo.mc("controller", "stop", show=False)
    for ref in pause_image_refs(demo) - pause_images:
        demo.mc("image", "rm", ref, show=False)


def pause_image_refs(demo) -> set:
    from ..api import image_store
    return {i.ref for i in image_store(demo.state_root()).list() if i.name == "minicontainer-pause"}


def run(demo) -> None:
    import os
    import signal
    demo.ensure_image("busybox")
    pause_images = pause_image_refs(demo)
    demo.on_exit(lambda: clean_up(demo, "deployment", "demo-web", "demo-web", pause_images))
    demo.say("""A Deployment says *what* should run: 3 replicas of a web server. A controller
        compares that with what runs — observe, diff, act — again and again. You do not start
        containers; you change the desired state, or break the actual one, and watch.""")
    demo.step("Apply the Deployment (the same YAML works with kubectl)")
    demo.output(MANIFEST)
    demo.mc("apply", "-f", "-", input=MANIFEST, check=True)
    took = wait_running(demo, "demo-web", 3)
    demo.mc("get", "pods", "-o", "wide")
    demo.print(f"(3 Running after {took:.1f} s)")

    demo.step("kill -9 the PID 1 of one replica")
    victim = pods(demo, "demo-web")[0]["metadata"]["name"]
    info = json.loads(demo.mc("pod", "inspect", victim, show=False).stdout)[0]
    member = json.loads(demo.mc("inspect", info["containers"][0]["name"], show=False).stdout)
    member = member[0] if isinstance(member, list) else member
    pid = member.get("pid") or member.get("State", {}).get("Pid")
    demo.show(f"kill -9 {pid}        # httpd of {victim}, as the host sees it")
    os.kill(pid, signal.SIGKILL)
    took = wait_running(demo, "demo-web", 3)
    demo.mc("get", "pods")
    demo.print(f"(Running again after {took:.2f} s: the controller sleeps on a pidfd of every PID 1)")
    demo.say("""RESTARTS 1: the kubelet part of the controller saw the exit at once and started the
        container again in the same pod — same name, same address. A second crash would wait 10 s,
        then 20 s, 40 s … (CrashLoopBackOff).""")

    demo.step("Delete a whole pod")
    demo.mc("delete", "pod", victim, check=True)
    wait_running(demo, "demo-web", 3)
    demo.mc("get", "pods")
    demo.say("""A new name: the ReplicaSet counted 2 where 3 are wanted, and made a new pod.""")

    demo.step("Scale to 5, then to 2")
    demo.mc("scale", "deployment/demo-web", "--replicas", "5", check=True)
    wait_running(demo, "demo-web", 5)
    demo.mc("get", "deployments")
    demo.mc("scale", "deployment/demo-web", "--replicas", "2", check=True)
    wait_running(demo, "demo-web", 2)
    demo.mc("get", "pods")
    demo.mc("get", "events")
