"""Lab 10 — orchestration basics: restart policies, self-healing, replicas, spreading load.
One check per task (see README.md). The checker looks at the containers the scripts leave, and
removes every lab10-* container afterwards.
"""
from __future__ import annotations

import json
import re

import pytest

from minicontainer.api import msg


def names(mc, *ps_args) -> list[str]:
    return [line.split()[1] for line in mc("ps", *ps_args).stdout.splitlines()[1:] if len(line.split()) > 1]


@pytest.fixture
def cleanup(mc):
    """Every lab10-* container goes afterwards, also one started before the check (one `rm`)."""
    yield
    ours = [name for name in names(mc, "-a") if name.startswith("lab10-")]
    if ours:
        mc("rm", "-f", *ours)


def inspect(mc, name: str) -> dict | None:
    shown = mc("inspect", name)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else None


def replicas(mc) -> dict[str, dict]:
    """Running lab10-web-N containers → their inspect records (one `ps`, one `inspect`)."""
    web = [n for n in names(mc) if re.fullmatch(r"lab10-web-\d+", n)]
    shown = mc("inspect", *web) if web else None
    return {n: info for n, info in zip(web, json.loads(shown.stdout))} if shown and shown.returncode == 0 else {}


def test_restart_policy(run_script, mc, cleanup, busybox):
    """restart.sh: on-failure:3 restarts a failing service three times, then gives up
    de: restart.sh: on-failure:3 startet einen fehlschlagenden Dienst dreimal neu und gibt dann auf

    Hint: Docker's restart policies (`run --help`, docs/lifecycle.md): which one restarts only after a failure, and how is the number of tries given?
    Hint 2: run -d with --restart on-failure:3, then poll `inspect -f '{{.RestartCount}} {{.State.Status}}'` until it says "3 exited".
    Hinweis: die Restart-Richtlinien von Docker (`run --help`, docs/lifecycle.md): welche startet nur nach einem Fehler neu, und wie gibt man die Zahl der Versuche an?
    Hinweis 2: run -d mit --restart on-failure:3, dann `inspect -f '{{.RestartCount}} {{.State.Status}}'` abfragen, bis "3 exited" kommt.
    """
    result = run_script("restart.sh", timeout=90)
    info = inspect(mc, "lab10-flaky")
    assert info, msg(f"there is no container lab10-flaky ({result.describe()})", f"es gibt keinen Container lab10-flaky ({result.describe()})")
    policy = info["RestartPolicy"]
    assert policy["Name"] == "on-failure" and policy["MaximumRetryCount"] == 3, msg(
        f"lab10-flaky's restart policy is {policy}, not on-failure:3", f"die Restart-Richtlinie von lab10-flaky ist {policy}, nicht on-failure:3")
    assert (info["RestartCount"], info["State"]["Status"]) == (3, "exited"), msg(
        f"lab10-flaky: {info['RestartCount']} restarts, {info['State']['Status']}",
        f"lab10-flaky: {info['RestartCount']} Neustarts, {info['State']['Status']}")
    assert "restarts: 3" in result.stdout and "status: exited" in result.stdout, \
        msg("restart.sh should print 'restarts: 3' and 'status: exited': ", "restart.sh sollte 'restarts: 3' und 'status: exited' ausgeben: ") + result.describe()


def test_self_healing(run_script, mc, cleanup, busybox):
    """heal.sh: a crashed service with --restart always comes back with a new PID
    de: heal.sh: ein abgestürzter Dienst mit --restart always kommt mit neuer PID zurück

    Hint: a crash is a process that dies without `minicontainer stop`: kill(1) its PID 1 from the host. Which restart policy brings it back whatever happened?
    Hint 2: run -d with --restart always; kill -9 the PID from `inspect -f '{{.State.Pid}}'`; poll that until it changes.
    Hinweis: ein Absturz ist ein Prozess, der ohne `minicontainer stop` stirbt: kill(1) auf seine PID 1 vom Host aus. Welche Restart-Richtlinie holt ihn in jedem Fall zurück?
    Hinweis 2: run -d mit --restart always; kill -9 auf die PID aus `inspect -f '{{.State.Pid}}'`; diese abfragen, bis sie sich ändert.
    """
    result = run_script("heal.sh", timeout=90)
    old = re.search(r"^old pid: (\d+)$", result.stdout, re.M)
    new = re.search(r"^new pid: (\d+)$", result.stdout, re.M)
    assert old and new, msg(f"no 'old pid' and 'new pid' lines ({result.describe()})",
                            f"keine Zeilen 'old pid' und 'new pid' ({result.describe()})")
    info = inspect(mc, "lab10-heal")
    assert info and info["State"]["Status"] == "running", msg("lab10-heal is not running (again)", "lab10-heal läuft nicht (wieder)")
    assert info["RestartCount"] >= 1, msg("lab10-heal was never restarted: was it killed? Does it have --restart always?",
                                          "lab10-heal wurde nie neu gestartet: wurde er beendet? Hat er --restart always?")
    assert old.group(1) != new.group(1) == str(info["State"]["Pid"]), msg(
        f"old pid {old.group(1)}, new pid {new.group(1)}, running pid {info['State']['Pid']}",
        f"alte PID {old.group(1)}, neue PID {new.group(1)}, laufende PID {info['State']['Pid']}")


def test_replicas_reconcile(run_script, mc, cleanup, busybox):
    """replicas.sh N keeps exactly N replicas: starts the missing, removes the extra, keeps the rest
    de: replicas.sh N hält genau N Replikate: startet fehlende, entfernt überzählige, lässt die übrigen in Ruhe

    Hint: a reconcile loop compares what runs (`minicontainer ps`) with what should run, and changes only the difference: nothing when they agree.
    Hint 2: for i in 1..N start lab10-web-$i (run -d, --restart always) if it is not running; rm -f every running lab10-web-K with K > N.
    Hinweis: eine Abgleichsschleife vergleicht, was läuft (`minicontainer ps`), mit dem, was laufen soll, und ändert nur den Unterschied: nichts, wenn beides übereinstimmt.
    Hinweis 2: für i in 1..N lab10-web-$i starten (run -d, --restart always), falls es nicht läuft; rm -f für jedes laufende lab10-web-K mit K > N.
    """
    first = run_script("replicas.sh", 3, timeout=90)
    three = replicas(mc)
    running = ", ".join(sorted(three)) or msg("none", "keine")
    assert sorted(three) == ["lab10-web-1", "lab10-web-2", "lab10-web-3"], msg(
        f"after `replicas.sh 3` running: {running} ({first.describe()})", f"nach `replicas.sh 3` laufen: {running} ({first.describe()})")
    assert all(i["RestartPolicy"]["Name"] == "always" for i in three.values()), msg(
        "replicas need --restart always", "Replikate brauchen --restart always")
    again = run_script("replicas.sh", 3, timeout=90)
    assert {n: i["Id"] for n, i in replicas(mc).items()} == {n: i["Id"] for n, i in three.items()}, msg(
        "a second `replicas.sh 3` must leave the running replicas alone (same IDs)",
        "ein zweites `replicas.sh 3` muss die laufenden Replikate in Ruhe lassen (gleiche IDs)")
    one = run_script("replicas.sh", 1, timeout=90)
    left = replicas(mc)
    assert list(left) == ["lab10-web-1"] and left["lab10-web-1"]["Id"] == three["lab10-web-1"]["Id"], msg(
        f"after `replicas.sh 1`: {sorted(left)} ({one.describe()})", f"nach `replicas.sh 1`: {sorted(left)} ({one.describe()})")
    assert "running: 1" in one.stdout and "running: 3" in again.stdout, msg(
        "replicas.sh should end with the line 'running: N'", "replicas.sh sollte mit der Zeile 'running: N' enden")


def test_spread(run_script, mc, cleanup, busybox, written):
    """spread.sh: six requests, round robin, two answers from each of three replicas
    de: spread.sh: sechs Anfragen reihum, je zwei Antworten von drei Replikaten

    Hint: round robin sends request k to replica (k mod 3) + 1; spread.sh already has the three addresses, one per line, in $ips.
    Hint 2: in the loop, pick line (k % 3 + 1) of $ips (sed -n "Np"), then busybox wget -q -O - "http://$ip/"; `sort | uniq -c` counts the answers.
    Hinweis: Round Robin schickt Anfrage k an Replikat (k mod 3) + 1; spread.sh hat die drei Adressen schon, eine pro Zeile, in $ips.
    Hinweis 2: in der Schleife Zeile (k % 3 + 1) von $ips nehmen (sed -n "Np"), dann busybox wget -q -O - "http://$ip/"; `sort | uniq -c` zählt die Antworten.
    """
    try:
        written("replicas.sh")
    except pytest.fail.Exception:
        pytest.fail(msg("spread.sh starts its three replicas with replicas.sh, which is not written yet: do task 3 first",
                        "spread.sh startet seine drei Replikate mit replicas.sh, und das ist noch nicht geschrieben: "
                        "zuerst Aufgabe 3 lösen"), pytrace=False)
    result = run_script("spread.sh", timeout=120)
    counts = re.findall(r"^\s*(\d+) (\S+)$", result.stdout, re.M)
    hostnames = {i["Hostname"] for i in replicas(mc).values()}
    assert len(hostnames) == 3, msg(
        f"spread.sh should leave three replicas running (it calls replicas.sh 3); running: {len(hostnames)} ({result.describe()})",
        f"spread.sh sollte drei laufende Replikate hinterlassen (es ruft replicas.sh 3 auf); laufen: {len(hostnames)} ({result.describe()})")
    assert sorted(counts) == sorted(("2", h) for h in hostnames), msg(
        f"expected '2 HOSTNAME' for each of {sorted(hostnames)} ({result.describe()})",
        f"erwartet '2 HOSTNAME' für jeden von {sorted(hostnames)} ({result.describe()})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: the lecture's "Orchestrierung" section, and what `minicontainer kill` vs `kill -9` did in heal.sh.
    Hinweis: der Abschnitt „Orchestrierung“ der Vorlesung, und was `minicontainer kill` und `kill -9` in heal.sh taten.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
