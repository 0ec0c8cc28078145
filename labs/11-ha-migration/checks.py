"""Lab 11 — HA and migration: a cluster of nodes, failover after a power cut, cold migration.
One check per task (see README.md). The checks share one cluster (creating one takes seconds);
at the end its objects are deleted, the controller stopped and the cluster removed.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from minicontainer.api import msg


@pytest.fixture(scope="module")
def lab_cluster(mc):
    """Afterwards: lab11-web's objects deleted, the controller stopped, the cluster removed."""
    yield
    mc("delete", "deployment", "lab11-web", "--no-wait")
    mc("delete", "service", "lab11-web", "--no-wait")
    mc("delete", "pvc", "lab11-data", "--no-wait")
    mc("controller", "stop")
    mc("cluster", "rm")


def nodes(mc) -> dict:
    shown = mc("node", "ls", "--format", "json")
    return {n["name"]: n for n in json.loads(shown.stdout)} if shown.returncode == 0 else {}


def need_cluster(mc) -> None:
    """The later tasks need a cluster even when cluster.sh is not done yet."""
    if len(nodes(mc)) != 3:
        mc("cluster", "rm")
        made = mc("cluster", "create", "--nodes", "3", "--memory", "512Mi", "--node-timeout", "3")
        if made.returncode != 0:
            pytest.fail(msg(f"cannot create a cluster: {made.stderr.strip()}",
                            f"kann keinen Cluster anlegen: {made.stderr.strip()}"), pytrace=False)


def need_web(mc, work) -> None:
    """failover and migrate need web.yaml's six replicas running (task 2)."""
    applied = mc("apply", "-f", work / "web.yaml")
    shown = mc("get", "deployment", "lab11-web", "-o", "json")
    if applied.returncode != 0 or shown.returncode != 0 or json.loads(shown.stdout)["spec"].get("replicas") != 6:
        pytest.fail(msg("finish web.yaml first (task 2): six replicas of lab11-web",
                        "zuerst web.yaml fertigstellen (Aufgabe 2): sechs Replikate von lab11-web"), pytrace=False)
    deadline = time.time() + 120
    while time.time() < deadline and len(ready(mc)) < 6:
        time.sleep(0.5)


def ready(mc) -> list[dict]:
    shown = mc("get", "pods", "-o", "json")
    items = json.loads(shown.stdout)["items"] if shown.returncode == 0 and shown.stdout.strip() else []
    return [p for p in items if p["metadata"]["name"].startswith("lab11-web-")
            and not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def test_cluster(run_script, mc, lab_cluster, busybox):
    """cluster.sh: three Ready nodes, each its own network namespace, pod subnet and agent
    de: cluster.sh: drei bereite Knoten, jeder mit eigenem Netzwerk-Namespace, Pod-Subnetz und Agent

    Hint: `minicontainer cluster create --help`; docs/cluster.md, "Nodes".
    Hinweis: `minicontainer cluster create --help`; docs/cluster.md, „Nodes“.
    Hint 2: cluster create --nodes 3 --cpus 1 --memory 512Mi --node-timeout 3, then node ls.
    Hinweis 2: cluster create --nodes 3 --cpus 1 --memory 512Mi --node-timeout 3, dann node ls.
    """
    mc("cluster", "rm")
    result = run_script("cluster.sh", timeout=120)
    found = nodes(mc)
    assert sorted(found) == ["node1", "node2", "node3"], msg(
        f"expected the nodes node1, node2, node3, found {sorted(found)} ({result.describe()})",
        f"erwartet: die Knoten node1, node2, node3, gefunden: {sorted(found)} ({result.describe()})")
    assert all(n["status"] == "Ready" and n["agent_pid"] for n in found.values()), msg(
        "not every node is Ready with a running agent (`minicontainer node ls`)",
        "nicht jeder Knoten ist bereit mit laufendem Agenten (`minicontainer node ls`)")
    assert all(n["memory"] == 512 << 20 and n["cpu_millis"] == 1000 for n in found.values()), msg(
        "each node should have 1 CPU and 512Mi (--cpus, --memory)",
        "jeder Knoten sollte 1 CPU und 512Mi haben (--cpus, --memory)")
    assert "node1" in result.stdout and "Ready" in result.stdout, msg(
        f"cluster.sh did not print the nodes ({result.describe()})",
        f"cluster.sh gab die Knoten nicht aus ({result.describe()})")


def test_spread(work, mc, lab_cluster, busybox):
    """web.yaml: six ready replicas, spread two per node, with the claim lab11-data at /data
    de: web.yaml: sechs bereite Replikate, je zwei pro Knoten, mit dem Claim lab11-data unter /data

    Hint: the scheduler scores least-allocated: equal pods spread evenly (docs/cluster.md, "The scheduler").
    Hinweis: der Scheduler bewertet «am wenigsten belegt»: gleiche Pods verteilen sich gleichmässig (docs/cluster.md, „The scheduler“).
    Hint 2: replicas: 6; volumeMounts [{name: data, mountPath: /data}]; volumes [{name: data, persistentVolumeClaim: {claimName: lab11-data}}].
    Hinweis 2: replicas: 6; volumeMounts [{name: data, mountPath: /data}]; volumes [{name: data, persistentVolumeClaim: {claimName: lab11-data}}].
    """
    need_cluster(mc)
    applied = mc("apply", "-f", work / "web.yaml")
    assert applied.returncode == 0, msg(f"apply -f web.yaml failed: {applied.stderr.strip()}",
                                        f"apply -f web.yaml schlug fehl: {applied.stderr.strip()}")
    wanted = json.loads(mc("get", "deployment", "lab11-web", "-o", "json").stdout)["spec"].get("replicas")
    assert wanted == 6, msg(f"lab11-web wants {wanted} replicas, not 6", f"lab11-web will {wanted} Replikate, nicht 6")
    deadline = time.time() + 120
    while time.time() < deadline and len(ready(mc)) != 6:
        time.sleep(0.5)
    pods = ready(mc)
    assert len(pods) == 6, msg(f"{len(pods)} of 6 replicas are ready after 120 s (`get pods -o wide`)",
                               f"{len(pods)} von 6 Replikaten sind nach 120 s bereit (`get pods -o wide`)")
    per_node = sorted(sum(1 for p in pods if p["spec"]["nodeName"] == n) for n in ("node1", "node2", "node3"))
    assert per_node == [2, 2, 2], msg(f"the replicas are spread {per_node}, not 2/2/2",
                                      f"die Replikate sind {per_node} verteilt, nicht 2/2/2")
    volumes = pods[0]["spec"].get("volumes") or []
    assert any((v.get("persistentVolumeClaim") or {}).get("claimName") == "lab11-data" for v in volumes), msg(
        "the pods do not use the claim lab11-data", "die Pods verwenden den Claim lab11-data nicht")


def test_failover(run_script, work, mc, lab_cluster, busybox):
    """failover.sh: after a power cut on node2 its replicas run on the other nodes
    de: failover.sh: nach einem Stromausfall auf node2 laufen seine Replikate auf den anderen Knoten

    Hint: a failed node is noticed by its missing heartbeats, after the node timeout (docs/cluster.md, "Failover").
    Hinweis: ein ausgefallener Knoten fällt durch fehlende Heartbeats auf, nach dem Node-Timeout (docs/cluster.md, „Failover“).
    Hint 2: `minicontainer node fail node2`; then wait until 6 lines of `get pods -o wide` are 1/1 Running and none ends in node2.
    Hinweis 2: `minicontainer node fail node2`; dann warten, bis 6 Zeilen von `get pods -o wide` 1/1 Running sind und keine auf node2 endet.
    """
    need_cluster(mc)
    need_web(mc, work)
    result = run_script("failover.sh", timeout=240)
    pods = ready(mc)
    assert len(pods) == 6 and not any(p["spec"]["nodeName"] == "node2" for p in pods), msg(
        f"expected 6 ready replicas, none on node2 ({result.describe()})",
        f"erwartet: 6 bereite Replikate, keines auf node2 ({result.describe()})")
    assert nodes(mc)["node2"]["status"].startswith("NotReady"), msg(
        "node2 is not NotReady: was its power cut (`node fail`)?",
        "node2 ist nicht NotReady: wurde ihm der Strom abgestellt (`node fail`)?")
    failed = re.search(r"^failed: (\d+) of (\d+)$", result.stdout, re.M)
    assert re.search(r"^failover: [\d.]+$", result.stdout, re.M) and failed and int(failed.group(2)) > 0, msg(
        f"expected the lines 'failover: S' and 'failed: F of T' ({result.describe()})",
        f"erwartet: die Zeilen 'failover: S' und 'failed: F of T' ({result.describe()})")


def test_migrate(run_script, work, mc, lab_cluster, busybox):
    """migrate.sh: a pod moves from node1 to node3, keeping its name and its volume
    de: migrate.sh: ein Pod zieht von node1 auf node3 um und behält Namen und Volume

    Hint: cold migration: stop, carry the writable layer, start on the other node (docs/cluster.md, "Migration").
    Hinweis: kalte Migration: anhalten, die beschreibbare Schicht mitnehmen, auf dem anderen Knoten starten (docs/cluster.md, „Migration“).
    Hint 2: `minicontainer migrate pod/$pod --to node3`.
    Hinweis 2: `minicontainer migrate pod/$pod --to node3`.
    """
    need_cluster(mc)
    need_web(mc, work)
    result = run_script("migrate.sh", timeout=120)
    moved = re.search(r"^moved: (\S+)$", result.stdout, re.M)
    assert moved, msg(f"no 'moved: POD' line ({result.describe()})", f"keine Zeile 'moved: POD' ({result.describe()})")
    pod = next((p for p in ready(mc) if p["metadata"]["name"] == moved.group(1)), None)
    assert pod is not None and pod["spec"]["nodeName"] == "node3", msg(
        f"pod {moved.group(1)} is not ready on node3 (`get pods -o wide`)",
        f"Pod {moved.group(1)} ist nicht bereit auf node3 (`get pods -o wide`)")
    assert "downtime" in result.stdout, msg(f"migrate's line with the downtime is missing ({result.describe()})",
                                            f"die Zeile von migrate mit der Ausfallzeit fehlt ({result.describe()})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/cluster.md: what is simulated, failover, migration, and why live migration needs CRIU.
    Hinweis: docs/cluster.md: was simuliert ist, Failover, Migration, und warum Live-Migration CRIU braucht.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b", "q5": "a"})
