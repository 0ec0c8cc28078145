"""Lab 12 — snapshots and migration: VM vs container.
One check per task (see README.md). The VM (lab12) lives from vm.sh to the end of the checks;
the checker removes it, the lab12-* containers and the lab12-data volume afterwards.
The checks read the VM's console log (<state root>/vms/lab12/console.log) themselves: the
counter the guest prints once a second is the witness of what happened to its RAM.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from minicontainer.api import msg

VM = "lab12"
TICK = re.compile(r"tick (\d+)")


@pytest.fixture(scope="module", autouse=True)
def cleanup(mc):
    yield
    for name in ("lab12-counter", "lab12-counter-2"):
        mc("rm", "-f", name)
    mc("volume", "rm", "lab12-data")
    mc("vm", "rm", "-f", VM, timeout=120)


def vm_info(mc) -> dict:
    shown = mc("vm", "inspect", VM)
    assert shown.returncode == 0, msg(f"there is no VM {VM}: run vm.sh first ({shown.stderr.strip()})",
                                      f"es gibt keine VM {VM}: zuerst vm.sh ausführen ({shown.stderr.strip()})")
    return json.loads(shown.stdout)


def ticks(state_root, after: int = 0) -> list[int]:
    log = state_root / "vms" / VM / "console.log"
    return [int(n) for n in TICK.findall(log.read_bytes()[after:].decode(errors="replace"))] if log.exists() else []


def log_size(state_root) -> int:
    log = state_root / "vms" / VM / "console.log"
    return log.stat().st_size if log.exists() else 0


def test_vm(run_script, mc):
    """vm.sh creates the VM lab12 and starts it; its counter ticks
    de: vm.sh erstellt die VM lab12 und startet sie; ihr Zähler tickt

    Hint: minicontainer vm create lab12 --memory 256; minicontainer vm start lab12 --wait; then wait for a "tick N" line in the console log.
    Hinweis: minicontainer vm create lab12 --memory 256; minicontainer vm start lab12 --wait; dann auf eine Zeile "tick N" im Konsolen-Log warten.
    """
    result = run_script("vm.sh", timeout=300)
    info = vm_info(mc)
    assert info["status"] == "running", msg(f"{VM} is {info['status']}, not running ({result.describe()})",
                                            f"{VM} ist {info['status']}, nicht running ({result.describe()})")
    assert re.search(r"^ticking: \d+$", result.stdout, re.M), \
        msg(f"no line 'ticking: N' ({result.describe()})", f"keine Zeile 'ticking: N' ({result.describe()})")


def test_snapshot(run_script, mc, state_root):
    """snapshot.sh: an internal snapshot, a few seconds later a restore: the counter goes back
    de: snapshot.sh: ein interner Snapshot, ein paar Sekunden später ein Restore: der Zähler geht zurück

    Hint: minicontainer vm snapshot create lab12 before; sleep 4; minicontainer vm snapshot restore lab12 before; read the last "tick N" of the console log before and after.
    Hinweis: minicontainer vm snapshot create lab12 before; sleep 4; minicontainer vm snapshot restore lab12 before; das letzte "tick N" im Konsolen-Log vorher und nachher lesen.
    """
    vm_info(mc)
    start = log_size(state_root)
    result = run_script("snapshot.sh", timeout=180)
    at = re.search(r"^snapshot at tick: (\d+)$", result.stdout, re.M)
    after = re.search(r"^after restore: (\d+)$", result.stdout, re.M)
    assert at and after, msg(f"no lines 'snapshot at tick: N' and 'after restore: M' ({result.describe()})",
                             f"keine Zeilen 'snapshot at tick: N' und 'after restore: M' ({result.describe()})")
    seen = ticks(state_root, start)
    went_back = any(b < a for a, b in zip(seen, seen[1:]))
    assert went_back, msg(f"the console's counter never went back: {seen}", f"der Zähler auf der Konsole ging nie zurück: {seen}")
    assert int(after.group(1)) <= int(at.group(1)) + 2, \
        msg(f"after the restore the counter is at {after.group(1)}, the snapshot was taken at {at.group(1)}",
            f"nach dem Restore steht der Zähler bei {after.group(1)}, der Snapshot war bei {at.group(1)}")


def test_live_migration(run_script, mc, state_root):
    """migrate.sh migrates the running VM live and prints QEMU's downtime; the counter does not stop
    de: migrate.sh migriert die laufende VM live und gibt QEMUs Downtime aus; der Zähler hält nicht an

    Hint: out=$(minicontainer vm migrate lab12 --to localhost); echo "$out"; the line "downtime … ms" holds the number.
    Hinweis: out=$(minicontainer vm migrate lab12 --to localhost); echo "$out"; die Zeile "downtime … ms" enthält die Zahl.
    """
    pid = vm_info(mc)["pid"]
    start = log_size(state_root)
    result = run_script("migrate.sh", timeout=180)
    assert re.search(r"^vm downtime: \d+ ms$", result.stdout, re.M), \
        msg(f"no line 'vm downtime: N ms' ({result.describe()})", f"keine Zeile 'vm downtime: N ms' ({result.describe()})")
    assert vm_info(mc)["pid"] != pid, msg("the VM still runs in the same QEMU process: it was not migrated",
                                               "die VM läuft noch im selben QEMU-Prozess: sie wurde nicht migriert")
    deadline = time.monotonic() + 30
    while len(seen := ticks(state_root, start)) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    steps = [b - a for a, b in zip(seen, seen[1:])]
    assert steps and all(1 <= s <= 2 for s in steps), \
        msg(f"the counter did not go on smoothly: {seen}", f"der Zähler lief nicht gleichmässig weiter: {seen}")


def test_container_cold_migration(run_script, mc, busybox):
    """container.sh moves a counting container cold: stop, start a new one on the same volume
    de: container.sh verschiebt einen zählenden Container kalt: stoppen, einen neuen auf demselben Volume starten

    Hint: run -d --name lab12-counter -v lab12-data:/data …; stop it; run -d --name lab12-counter-2 -v lab12-data:/data …; time from stop to the second start.
    Hinweis: run -d --name lab12-counter -v lab12-data:/data …; stoppen; run -d --name lab12-counter-2 -v lab12-data:/data …; die Zeit vom Stopp bis zum zweiten Start messen.
    """
    result = run_script("container.sh", timeout=120)
    assert re.search(r"^container downtime: [0-9.]+ s$", result.stdout, re.M), \
        msg(f"no line 'container downtime: S s' ({result.describe()})",
            f"keine Zeile 'container downtime: S s' ({result.describe()})")
    running = mc("inspect", "-f", "{{.State.Status}}", "lab12-counter-2").stdout.strip()
    assert running == "running", msg(f"lab12-counter-2 is not running ({running or 'missing'})",
                                     f"lab12-counter-2 läuft nicht ({running or 'fehlt'})")
    old = mc("inspect", "-f", "{{.State.Status}}", "lab12-counter").stdout.strip()
    assert old in ("exited", ""), msg(f"lab12-counter still runs ({old}): a cold migration stops it first",
                                      f"lab12-counter läuft noch ({old}): eine kalte Migration stoppt ihn zuerst")
    before = re.search(r"^count before: (\d+)$", result.stdout, re.M)
    deadline = time.monotonic() + 15            # the new counter needs a moment to write its first number
    while True:
        shown = mc("exec", "lab12-counter-2", "cat", "/data/count")
        count = shown.stdout.strip() or shown.stderr.strip()
        if not before or (count.isdigit() and int(count) > int(before.group(1))) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert before and count.isdigit() and int(count) > int(before.group(1)), \
        msg(f"the new container should count on from the volume (before: {before and before.group(1)}, now: {count})",
            f"der neue Container sollte vom Volume aus weiterzählen (vorher: {before and before.group(1)}, jetzt: {count})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: compare what survived in each case: the RAM (VM) or only the files (container); read docs/vms.md.
    Hinweis: vergleiche, was jeweils überlebt hat: das RAM (VM) oder nur die Dateien (Container); lies docs/vms.md.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
