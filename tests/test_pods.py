"""Pods (orchestration/pods.py): an infra container holds the namespaces, members join them,
the pod's cgroup is the parent of each member's. Real containers, looked at from inside."""
from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = [pytest.mark.root]


@pytest.fixture
def pod(mc, mc_root):
    """pod(name) → a created pod, removed (rm -f) after the test; the pause image goes too."""
    made = []

    def create(name, *args):
        mc("pod", "create", "--name", name, *args, check=True)
        made.append(name)
        return name
    yield create
    for name in made:
        mc("pod", "rm", "-f", name)


@pytest.fixture(scope="module", autouse=True)
def no_pause_image_left(mc_root):
    yield
    from minicontainer.api import image_store
    for image in image_store(mc_root).list():
        if image.ref.startswith("minicontainer-pause"):
            image_store(mc_root).remove(image.ref)


def ns_inode(pid: int, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def test_members_share_the_infra_network_and_hostname(mc, mc_root, pod):
    name = pod(f"p{os.getpid()}")
    info = json.loads(mc("pod", "inspect", name, check=True).stdout)[0]
    assert info["status"] == "Running" and info["infra_pid"] > 0
    mc("run", "-d", "--pod", name, "--name", f"{name}-web", "busybox",
       "sh", "-c", "echo hello from the pod > /tmp/i; httpd -f -p 8080 -h /tmp", check=True)
    # localhost between two containers of one pod: the second reaches the first's port
    got = ""
    for _ in range(50):
        got = mc("run", "--rm", "--pod", name, "busybox", "wget", "-qO-", "http://127.0.0.1:8080/i").stdout
        if got:
            break
        time.sleep(0.1)
    assert got == "hello from the pod\n"
    web = json.loads(mc("inspect", f"{name}-web", check=True).stdout)
    web = web[0] if isinstance(web, list) else web
    pid = web.get("pid") or web.get("State", {}).get("Pid")
    for kind in ("net", "uts", "ipc"):                                   # the pod's, held by pause
        assert ns_inode(pid, kind) == ns_inode(info["infra_pid"], kind), kind
    assert ns_inode(pid, "pid") != ns_inode(info["infra_pid"], "pid")   # not shared (optional in k8s)
    assert mc("run", "--rm", "--pod", name, "busybox", "hostname").stdout.strip() == name
    # the member's cgroup is inside the pod's
    cgroup = open(f"/proc/{pid}/cgroup").read()
    assert f"{info['cgroup_path']}/" in cgroup, cgroup
    pods = mc("pod", "ls").stdout
    assert name in pods and "Running" in pods


def test_stop_start_and_rm(mc, pod):
    name = pod(f"q{os.getpid()}")
    mc("run", "-d", "--pod", name, "--name", f"{name}-sleep", "busybox", "sleep", "1000", check=True)
    assert "running" in mc("rm", f"{name}-sleep").stderr        # rm without -f refused
    mc("pod", "stop", "-t", "1", name, check=True)
    assert json.loads(mc("pod", "inspect", name).stdout)[0]["status"] == "Exited"
    refused = mc("run", "--rm", "--pod", name, "busybox", "true")
    assert refused.returncode == 125 and "not running" in refused.stderr
    mc("pod", "start", name, check=True)
    info = json.loads(mc("pod", "inspect", name).stdout)[0]
    assert info["status"] == "Running"
    assert [c["status"] for c in info["containers"]] == ["running"]
    assert mc("pod", "rm", name).returncode == 125                 # running: refused without -f
    mc("pod", "rm", "-f", name, check=True)
    assert name not in mc("pod", "ls").stdout
    assert f"{name}-sleep" not in mc("ps", "-a").stdout


def test_bad_input_one_line(mc, pod):
    name = pod(f"r{os.getpid()}")
    again = mc("pod", "create", "--name", name)
    assert again.returncode == 125 and "already in use" in again.stderr
    missing = mc("run", "--rm", "--pod", "no-such-pod", "busybox", "true")
    assert missing.returncode == 125 and "no such pod" in missing.stderr
    clash = mc("run", "--rm", "--pod", name, "--net", "none", "busybox", "true")
    assert clash.returncode == 125 and "conflict" in clash.stderr
    bad = mc("pod", "create", "--name", "-bad")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
