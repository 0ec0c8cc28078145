"""Lab 10 — orchestration basics: restart policies, self-healing, replicas, spreading load.
One check per task (see README.md). The checker looks at the containers the scripts leave, and
removes every lab10-* container afterwards.
"""
from __future__ import annotations

import json
import re

import pytest


@pytest.fixture
def cleanup(mc):
    yield
    names = [line.split()[1] for line in mc("ps", "-a").stdout.splitlines()[1:] if len(line.split()) > 1]
    for name in names:
        if name.startswith("lab10-"):
            mc("rm", "-f", name)


def inspect(mc, name: str) -> dict | None:
    shown = mc("inspect", name)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else None


def replicas(mc) -> dict[str, dict]:
    """Running lab10-web-N containers → their inspect records."""
    names = [line.split()[1] for line in mc("ps").stdout.splitlines()[1:] if len(line.split()) > 1]
    return {n: inspect(mc, n) for n in names if re.fullmatch(r"lab10-web-\d+", n)}


def test_restart_policy(run_script, mc, cleanup, busybox):
    """restart.sh: on-failure:3 restarts a failing service three times, then gives up
    de: restart.sh: on-failure:3 startet einen scheiternden Dienst dreimal neu, dann gibt es auf

    Hint: minicontainer run -d --restart on-failure:3 …; poll `inspect -f '{{.RestartCount}} {{.State.Status}}'` until "3 exited".
    Hinweis: minicontainer run -d --restart on-failure:3 …; `inspect -f '{{.RestartCount}} {{.State.Status}}'` abfragen, bis "3 exited".
    """
    result = run_script("restart.sh", timeout=90)
    info = inspect(mc, "lab10-flaky")
    assert info, f"there is no container lab10-flaky ({result.describe()})"
    assert info["RestartPolicy"]["Name"] == "on-failure" and info["RestartPolicy"]["MaximumRetryCount"] == 3, \
        f"lab10-flaky's restart policy is {info['RestartPolicy']}, not on-failure:3"
    assert (info["RestartCount"], info["State"]["Status"]) == (3, "exited"), \
        f"lab10-flaky: {info['RestartCount']} restarts, {info['State']['Status']}"
    assert "restarts: 3" in result.stdout and "status: exited" in result.stdout, result.describe()


def test_self_healing(run_script, mc, cleanup, busybox):
    """heal.sh: a crashed service with --restart always comes back with a new PID
    de: heal.sh: ein abgestürzter Dienst mit --restart always kommt mit neuer PID zurück

    Hint: --restart always; kill -9 "$old"; poll `inspect -f '{{.State.Pid}}'` until it changes.
    Hinweis: --restart always; kill -9 "$old"; `inspect -f '{{.State.Pid}}'` abfragen, bis sie sich ändert.
    """
    result = run_script("heal.sh", timeout=90)
    old = re.search(r"^old pid: (\d+)$", result.stdout, re.M)
    new = re.search(r"^new pid: (\d+)$", result.stdout, re.M)
    assert old and new, f"no 'old pid' and 'new pid' lines ({result.describe()})"
    info = inspect(mc, "lab10-heal")
    assert info and info["State"]["Status"] == "running", "lab10-heal is not running (again)"
    assert info["RestartCount"] >= 1, "lab10-heal was never restarted: was it killed? Does it have --restart always?"
    assert old.group(1) != new.group(1) == str(info["State"]["Pid"]), \
        f"old pid {old.group(1)}, new pid {new.group(1)}, running pid {info['State']['Pid']}"


def test_replicas_reconcile(run_script, mc, cleanup, busybox):
    """replicas.sh N keeps exactly N replicas: starts the missing, removes the extra, keeps the rest
    de: replicas.sh N hält genau N Replikate: startet fehlende, entfernt überzählige, lässt den Rest

    Hint: start lab10-web-$i for i in 1..N when it is not running; rm -f each running lab10-web-K with K > N.
    Hinweis: lab10-web-$i für i in 1..N starten, wenn es nicht läuft; rm -f für jedes laufende lab10-web-K mit K > N.
    """
    first = run_script("replicas.sh", 3, timeout=90)
    three = replicas(mc)
    assert sorted(three) == ["lab10-web-1", "lab10-web-2", "lab10-web-3"], \
        f"after `replicas.sh 3` running: {sorted(three) or 'none'} ({first.describe()})"
    assert all(i["RestartPolicy"]["Name"] == "always" for i in three.values()), "replicas need --restart always"
    again = run_script("replicas.sh", 3, timeout=90)
    assert {n: i["Id"] for n, i in replicas(mc).items()} == {n: i["Id"] for n, i in three.items()}, \
        "a second `replicas.sh 3` must leave the running replicas alone (same IDs)"
    one = run_script("replicas.sh", 1, timeout=90)
    left = replicas(mc)
    assert list(left) == ["lab10-web-1"] and left["lab10-web-1"]["Id"] == three["lab10-web-1"]["Id"], \
        f"after `replicas.sh 1`: {sorted(left)} ({one.describe()})"
    assert "running: 1" in one.stdout and "running: 3" in again.stdout


def test_spread(run_script, mc, cleanup, busybox):
    """spread.sh: six requests, round robin, two answers from each of three replicas
    de: spread.sh: sechs Anfragen reihum, je zwei Antworten von drei Replikaten

    Hint: ip=$(sed -n "$(( k % 3 + 1 ))p" <<<"$ips") in the loop, then wget from "http://$ip/".
    Hinweis: ip=$(sed -n "$(( k % 3 + 1 ))p" <<<"$ips") in der Schleife, dann wget von "http://$ip/".
    """
    result = run_script("spread.sh", timeout=120)
    counts = re.findall(r"^\s*(\d+) (\S+)$", result.stdout, re.M)
    hostnames = {i["Hostname"] for i in replicas(mc).values()}
    assert sorted(counts) == sorted(("2", h) for h in hostnames) and len(hostnames) == 3, \
        f"expected '2 HOSTNAME' for each of {sorted(hostnames)} ({result.describe()})"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: the lecture's "Orchestrierung" section, and what `minicontainer kill` vs `kill -9` did in heal.sh.
    Hinweis: der Abschnitt „Orchestrierung“ der Vorlesung, und was `minicontainer kill` und `kill -9` in heal.sh taten.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
