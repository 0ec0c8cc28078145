"""Probes: is the container alive, ready, started? The kubelet asks in one of three ways.

    https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/

    exec        run a command inside the container (`minicontainer exec`): exit 0 = success
    httpGet     GET http://POD_IP:PORT/PATH from the node: a status 200–399 = success
    tcpSocket   connect(POD_IP, PORT) from the node: the connection accepted = success

Each has timeoutSeconds (default 1): no answer in time is a failure. The node reaches a pod's
address over the bridge, as Kubernetes' kubelet reaches pod IPs over the node's network.
"""
from __future__ import annotations

import socket
import subprocess
import sys


def named_port(spec_port, container: dict) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(spec_port, int) or str(spec_port).isdigit():
        return int(spec_port)
    for p in container.get("ports") or []:
        if p.get("name") == spec_port:
            return int(p["containerPort"])
    return 0


def run_probe(spec: dict, container: dict, rec, pod_ip: str, root) -> tuple[bool, str]:
    """(success, why not) for one probe of `container` (its spec), running as record `rec`."""
    timeout = spec.get("timeoutSeconds", 1)
    if "exec" in spec:
        command = spec["exec"]["command"]
        try:
            proc = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root),
                                   "exec", rec.id, *command], capture_output=True, text=True,
                                  timeout=timeout + 2)            # + the CLI's own start-up
        except subprocess.TimeoutExpired:
            return False, f"command {command!r} timed out after {timeout}s"
        if proc.returncode == 0:
            return True, ""
        output = (proc.stdout + proc.stderr).strip().splitlines()
        return False, f"command {command!r} exited with {proc.returncode}" + (f": {output[-1]}" if output else "")
    if "httpGet" in spec:
        port = named_port(spec["httpGet"]["port"], container)
        path = spec["httpGet"].get("path", "/")
        return http_get(pod_ip, port, path, timeout)
    if "tcpSocket" in spec:
        port = named_port(spec["tcpSocket"]["port"], container)
        try:
            with socket.create_connection((pod_ip, port), timeout=timeout):
                return True, ""
        except OSError as e:
            return False, f"dial tcp {pod_ip}:{port}: {e.strerror or e}"
    return True, ""


def http_get(ip: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    import http.client
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "kube-probe/minicontainer"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "http://{ip}:{port}{path}": {getattr(e, "strerror", None) or e}'
    finally:
        conn.close()
    if 200 <= status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {status}"
