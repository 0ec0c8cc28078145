"""Demo: cold migration — a pod moves to another node with its files, volume and name (labs/11).

Shell equivalent:
    minicontainer cluster create --nodes 2
    minicontainer apply -f web.yaml                    # one web server, a PVC at /data
    wget -qO- http://POD-IP/starts                     # its writable layer: one line per start
    minicontainer migrate pod/NAME --to node2          # stop, carry the layer, start: downtime
    wget -qO- http://NEW-IP/starts                     # two lines: the layer came along
See docs/cluster.md ("Migration", and why live migration needs CRIU).
"""
from __future__ import annotations

import json
import urllib.request

from .failover import start_cluster, wait_spread

TITLE = "Cold migration: a pod moves to another node with its files, volume and name"
SUMMARY = "migrate pod/NAME --to node2: writable layer, PVC and name kept, downtime measured"

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {name: demo-mig}
spec:
  replicas: 1
  selector: {matchLabels: {app: demo-mig}}
  template:
    metadata: {labels: {app: demo-mig}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www; hostname > /www/index.html; date >> /www/starts;
                  date >> /data/log; ln -sfn /data /www/data; exec httpd -f -p 80 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: demo-mig}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: demo-mig}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
"""


def the_pod(demo) -> dict:
    items = json.loads(demo.mc("get", "pods", "-o", "json", show=False).stdout or '{"items": []}')["items"]
    return next(p for p in items if p["metadata"].get("labels", {}).get("app") == "demo-mig")


def fetch(demo, ip: str, path: str) -> str:
    demo.show(f"wget -qO- http://{ip}/{path}")
    text = urllib.request.urlopen(f"http://{ip}/{path}", timeout=5).read().decode()
    demo.output(text)
    return text


def run(demo) -> None:
    demo.ensure_image("busybox")
    demo.say("""Compute migration moves a workload between hosts. A VM can move *live* (its memory
        copied while it runs: `demo live-migration`); a container process would need CRIU for
        that, and `criu check` fails on this kernel. So this is a *cold* migration: stop the pod,
        carry its writable layer, start it on the other node — same volumes, same name.""")
    demo.step("Two nodes, one web server on node1 (each start appends to /www/starts)")
    start_cluster(demo, "demo-mig", 2)
    demo.mc("apply", "-f", "-", input=MANIFEST, check=True)
    wait_spread(demo, "demo-mig", lambda s: sum(s.values()) == 1)
    demo.mc("get", "pods", "-o", "wide")
    pod = the_pod(demo)
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    fetch(demo, ip, "starts")

    other = "node2" if pod["spec"]["nodeName"] == "node1" else "node1"
    demo.step(f"Migrate it to {other}")
    demo.mc("migrate", f"pod/{name}", "--to", other, check=True)
    demo.mc("get", "pods", "-o", "wide")
    pod = the_pod(demo)
    demo.step(f"Same name, a new address on {other}'s subnet; the layer and the volume came along")
    fetch(demo, pod["status"]["podIP"], "")
    fetch(demo, pod["status"]["podIP"], "starts")
    fetch(demo, pod["status"]["podIP"], "data/log")
    demo.say("""Two lines in /www/starts: the file lives in the pod's writable layer, which moved
        (committed as an image layer on the old node, started from on the new one). The process
        did not move: it started again — that is what "cold" means.""")
