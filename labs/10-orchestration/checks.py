"""Lab 10 — orchestration: a pod, a Deployment and its Service, self-healing, scaling, spreading.
One check per task (see README.md). Each task's script applies web.yaml itself, so any one
check runs alone (`lab check 10 -k 3`); run together, they share what the first one started —
as a student's cluster would — and only the last removes it: the objects (`delete`), their
pods, the controller, the pod lab10-pod (also when the check is stopped: SIGTERM, Ctrl-C).
"""
from __future__ import annotations

import json
import re
import time

import pytest

from minicontainer.api import msg


@pytest.fixture(scope="module")
def cluster(mc):
    """After the last check: lab10-web's objects deleted, their pods gone, the controller
    stopped, the pod lab10-pod removed."""
    yield
    mc("delete", "deployment", "lab10-web", "--no-wait")
    mc("delete", "service", "lab10-web", "--no-wait")
    deadline = time.time() + 60
    while time.time() < deadline and pods(mc):
        time.sleep(0.3)
    mc("controller", "stop")
    mc("pod", "rm", "-f", "lab10-pod")


# The controller's replicas are not leftovers (labs/conftest.py): the next check uses them, and
# `cluster` removes them through the controller after the last one.
KEEP_CONTAINERS = ("lab10-web-",)


def pods(mc) -> list[dict]:
    shown = mc("get", "pods", "-o", "json")
    items = json.loads(shown.stdout)["items"] if shown.returncode == 0 and shown.stdout.strip() else []
    return [p for p in items if p["metadata"]["name"].startswith("lab10-web-")]


def ready(mc) -> list[dict]:
    return [p for p in pods(mc) if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
            and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]


def test_pod(run_script, mc, cluster, busybox):
    """pod.sh: two containers of one pod talk over 127.0.0.1
    de: pod.sh: zwei Container eines Pods sprechen über 127.0.0.1 miteinander

    Hint: pod create, then run -d --pod for the server and run --rm --pod for wget (docs/orchestration.md, "Pods").
    Hinweis: pod create, dann run -d --pod für den Server und run --rm --pod für wget (docs/orchestration.md, „Pods“).
    Hint 2: the second container reaches the first at http://127.0.0.1:8080/: both are in the infra container's network namespace.
    Hinweis 2: der zweite Container erreicht den ersten unter http://127.0.0.1:8080/: beide sind im Netzwerk-Namespace des Infra-Containers.
    """
    result = run_script("pod.sh", timeout=120)
    assert "hello from the pod" in result.stdout, msg(
        f"pod.sh did not print the page fetched over 127.0.0.1 ({result.describe()})",
        f"pod.sh gab die über 127.0.0.1 geholte Seite nicht aus ({result.describe()})")
    shown = mc("pod", "inspect", "lab10-pod")
    assert shown.returncode == 0, msg("there is no pod lab10-pod", "es gibt keinen Pod lab10-pod")
    info = json.loads(shown.stdout)[0]
    assert any(c["name"] == "lab10-pod-web" for c in info["containers"]), msg(
        "lab10-pod has no container lab10-pod-web (run -d --pod lab10-pod --name lab10-pod-web …)",
        "lab10-pod hat keinen Container lab10-pod-web (run -d --pod lab10-pod --name lab10-pod-web …)")


def test_apply(work, mc, cluster, busybox):
    """web.yaml: a Deployment of 3 ready replicas and a Service, applied as written
    de: web.yaml: ein Deployment mit 3 bereiten Replikaten und ein Service, so angewendet wie geschrieben

    Hint: `minicontainer apply -f web.yaml` says what is wrong, one line per field; `get pods` shows READY.
    Hinweis: `minicontainer apply -f web.yaml` sagt, was falsch ist, eine Zeile pro Feld; `get pods` zeigt READY.
    Hint 2: replicas: 3; readinessProbe with httpGet (path /, port 80); after `---` a v1 Service with selector app: lab10-web.
    Hinweis 2: replicas: 3; readinessProbe mit httpGet (path /, port 80); nach `---` ein v1-Service mit selector app: lab10-web.
    """
    applied = mc("apply", "-f", work / "web.yaml")
    assert applied.returncode == 0, msg(f"apply -f web.yaml failed: {applied.stderr.strip()}",
                                        f"apply -f web.yaml schlug fehl: {applied.stderr.strip()}")
    deployment = json.loads(mc("get", "deployment", "lab10-web", "-o", "json").stdout)
    assert deployment["spec"].get("replicas") == 3, msg(
        f"lab10-web wants {deployment['spec'].get('replicas')} replicas, not 3",
        f"lab10-web will {deployment['spec'].get('replicas')} Replikate, nicht 3")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "httpGet" in (container.get("readinessProbe") or {}), msg(
        "the container has no readinessProbe with httpGet", "der Container hat keine readinessProbe mit httpGet")
    deadline = time.time() + 120
    while time.time() < deadline and len(ready(mc)) != 3:
        time.sleep(0.5)
    assert len(ready(mc)) == 3, msg(f"{len(ready(mc))} of 3 replicas are ready after 120 s (`get pods`)",
                                    f"{len(ready(mc))} von 3 Replikaten sind nach 120 s bereit (`get pods`)")
    service = mc("get", "service", "lab10-web", "-o", "json")
    assert service.returncode == 0, msg("there is no Service lab10-web in web.yaml",
                                        "es gibt keinen Service lab10-web in web.yaml")
    assert json.loads(service.stdout)["spec"].get("selector") == {"app": "lab10-web"}, msg(
        "the Service's selector is not app: lab10-web", "der Selector des Service ist nicht app: lab10-web")


def test_heal(run_script, mc, cluster, busybox):
    """heal.sh: kill -9 of a replica's PID 1, and the controller starts it again
    de: heal.sh: kill -9 auf PID 1 eines Replikats, und der Controller startet es wieder

    Hint: a crash is a signal the process cannot catch, sent from the host to the PID the host sees (`minicontainer inspect`).
    Hint 2: the container of pod P is named P-httpd: `minicontainer inspect -f '{{.State.Pid}}' P-httpd`, then kill -9.
    Hinweis: ein Absturz ist ein Signal, das der Prozess nicht abfangen kann, vom Host an die PID, die der Host sieht (`minicontainer inspect`).
    Hinweis 2: der Container von Pod P heisst P-httpd: `minicontainer inspect -f '{{.State.Pid}}' P-httpd`, dann kill -9.
    """
    result = run_script("heal.sh", timeout=180)
    killed = re.search(r"^killed: (\S+)$", result.stdout, re.M)
    assert killed, msg(f"no 'killed: POD' line ({result.describe()})",
                       f"keine Zeile 'killed: POD' ({result.describe()})")
    pod = json.loads(mc("get", "pod", killed.group(1), "-o", "json").stdout or "{}")
    restarts = sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses", []))
    assert restarts >= 1, msg(f"pod {killed.group(1)} was never restarted: was its PID 1 killed?",
                              f"Pod {killed.group(1)} wurde nie neu gestartet: wurde seine PID 1 beendet?")
    assert re.search(r"^restarts: [1-9]", result.stdout, re.M) and "running: 3" in result.stdout, msg(
        f"expected 'restarts: 1' and 'running: 3' ({result.describe()})",
        f"erwartet: 'restarts: 1' und 'running: 3' ({result.describe()})")


def test_scale(run_script, mc, cluster, busybox):
    """scale.sh N: exactly N ready replicas, up and down
    de: scale.sh N: genau N bereite Replikate, hinauf und hinunter

    Hint: change the desired state (docs/orchestration.md, kubectl's verbs), then wait for the actual one in `get pods`.
    Hint 2: `minicontainer scale deployment/lab10-web --replicas N`; a Terminating pod still counts until it is gone.
    Hinweis: den Soll-Zustand ändern (docs/orchestration.md, die Befehle von kubectl), dann in `get pods` auf den Ist-Zustand warten.
    Hinweis 2: `minicontainer scale deployment/lab10-web --replicas N`; ein Pod in Terminating zählt, bis er weg ist.
    """
    up = run_script("scale.sh", 5, timeout=180)
    assert "running: 5" in up.stdout and len(ready(mc)) == 5, msg(
        f"after `scale.sh 5`: {len(ready(mc))} ready ({up.describe()})",
        f"nach `scale.sh 5`: {len(ready(mc))} bereit ({up.describe()})")
    down = run_script("scale.sh", 2, timeout=180)
    assert "running: 2" in down.stdout and len(pods(mc)) == 2, msg(
        f"after `scale.sh 2`: {len(pods(mc))} pods ({down.describe()})",
        f"nach `scale.sh 2`: {len(pods(mc))} Pods ({down.describe()})")


def test_spread(run_script, mc, cluster, busybox):
    """spread.sh: six requests to the Service's ClusterIP, two answers from each of three replicas
    de: spread.sh: sechs Anfragen an die ClusterIP des Service, je zwei Antworten von drei Replikaten

    Hint: a Service has one virtual address (`minicontainer get svc`); each new connection to it goes to the next ready pod.
    Hint 2: the CLUSTER-IP column of `get svc lab10-web`; six wget in one client container (`run --rm busybox sh -c …`), then sort | uniq -c.
    Hinweis: ein Service hat eine virtuelle Adresse (`minicontainer get svc`); jede neue Verbindung dorthin geht zum nächsten bereiten Pod.
    Hinweis 2: die Spalte CLUSTER-IP von `get svc lab10-web`; sechs wget in einem Client-Container (`run --rm busybox sh -c …`), dann sort | uniq -c.
    """
    result = run_script("spread.sh", timeout=180)
    counts = re.findall(r"^\s*(\d+) (\S+)$", result.stdout, re.M)
    names = {p["metadata"]["name"] for p in ready(mc)}
    assert len(names) == 3 and sorted(counts) == sorted(("2", n) for n in names), msg(
        f"expected '2 NAME' for each of {sorted(names)} ({result.describe()})",
        f"erwartet: '2 NAME' für jeden von {sorted(names)} ({result.describe()})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/orchestration.md, "Objects, the store, and reconcile loops" and the mapping table.
    Hinweis: docs/orchestration.md, „Objects, the store, and reconcile loops“ und die Tabelle der Objekte.
    """
    answers.expect({"q1": "a", "q2": "b", "q3": "c", "q4": "b", "q5": "a"})
