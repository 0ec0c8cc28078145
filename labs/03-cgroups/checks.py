"""Lab 03 — cgroups: the OOM killer, a fork bomb, CPU shares. One check per task (see README.md).

The fork bomb check watches the containers' cgroups from outside while forkbomb.sh runs
(pids.current against pids.max), and refuses to start a bomb that has no --pids-limit.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time

from minicontainer.api import msg


def ran_with(mc_calls, *options: str) -> list[list[str]]:
    """The `minicontainer run` command lines of the scripts that used one of `options`."""
    return [words for words in mc_calls("run")
            if any(w == o or w.startswith(o + "=") or (o == "-m" and w[:2] == "-m" and w[2:3].isdigit())
                   for w in words for o in options)]


def test_oom(run_script, busybox, mc_calls):
    """oom.sh: a container over its memory limit is killed by the OOM killer (exit 137)
    de: oom.sh: ein Container über seinem Speicherlimit wird vom OOM-Killer beendet (Exit 137)

    Hint: which `minicontainer run` option limits memory (`run --help`, docs/cgroups.md)? An exit status above 128 means "killed by signal (status − 128)".
    Hint 2: -m 32m on the container, and a command that needs more than that; 137 is 128 + 9 (SIGKILL, the OOM killer's signal).
    Hinweis: welche Option von `minicontainer run` begrenzt den Speicher (`run --help`, docs/cgroups.md)? Ein Exit-Status über 128 heisst "durch Signal (Status − 128) beendet".
    Hinweis 2: -m 32m für den Container und ein Befehl, der mehr braucht; 137 ist 128 + 9 (SIGKILL, das Signal des OOM-Killers).
    """
    result = run_script("oom.sh", timeout=120)
    status = re.findall(r"^exit status: (\d+)$", result.stdout, re.M)
    assert status, msg(f"no line 'exit status: N' ({result.describe()})", f"keine Zeile 'exit status: N' ({result.describe()})")
    assert status[-1] == "137", msg(f"the container exited with {status[-1]}, not 137: was its memory limited?",
                                    f"der Container endete mit {status[-1]}, nicht 137: war sein Speicher begrenzt?")
    assert "OOM" in result.output, msg("minicontainer did not report the OOM killer",
                                       "minicontainer hat den OOM-Killer nicht gemeldet")
    assert ran_with(mc_calls, "-m", "--memory"), msg(
        "oom.sh printed the lines, but no `minicontainer run -m …` ran: the kernel must do the killing",
        "oom.sh gibt die Zeilen aus, aber kein `minicontainer run -m …` lief: töten muss der Kernel")


def watch_pids(stop: threading.Event, seen: list) -> None:
    """Every 50 ms: (pids_current, pids_limit) of each container's cgroup."""
    from minicontainer.api import list_cgroups, open_cgroup
    while not stop.is_set():
        for cid in list_cgroups():
            cgroup = open_cgroup(cid)
            if cgroup is not None:
                try:
                    stats = cgroup.stats()
                except (OSError, ValueError):          # the group went away while we read it
                    continue
                seen.append((stats.get("pids_current"), stats.get("pids_limit")))
        time.sleep(0.05)


def test_forkbomb(written, run_script, busybox):
    """forkbomb.sh: a fork bomb hits the container's pids limit, and the host survives
    de: forkbomb.sh: eine Forkbombe stösst an das pids-Limit des Containers, der Host überlebt

    Hint: the pids controller (docs/cgroups.md, `run --help`): a cgroup can cap how many processes it holds; fork(2) then fails with EAGAIN inside, and only there.
    Hint 2: give the bomb's `minicontainer run` the option --pids-limit 50, then remove the TODO exit line.
    Hinweis: der pids-Controller (docs/cgroups.md, `run --help`): eine cgroup kann die Zahl ihrer Prozesse deckeln; fork(2) scheitert dann mit EAGAIN, aber nur darin.
    Hinweis 2: dem `minicontainer run` der Bombe die Option --pids-limit 50 geben, dann die TODO-Zeile mit exit entfernen.
    """
    script = written("forkbomb.sh").read_text()
    code = "\n".join(line.split("#")[0] for line in script.splitlines())
    limits = [int(n) for n in re.findall(r"--pids-limit[ =](\d+)", code)]
    assert limits, msg("forkbomb.sh has no --pids-limit: the checker will not start an unlimited fork bomb",
                       "forkbomb.sh hat kein --pids-limit: der Checker startet keine unbegrenzte Forkbombe")
    assert max(limits) <= 200, msg(f"--pids-limit {max(limits)} is too generous for this lab: use 50",
                                   f"--pids-limit {max(limits)} ist für dieses Labor zu grosszügig: nimm 50")
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_pids, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        result = run_script("forkbomb.sh", timeout=120)
    finally:
        stop.set()
        watcher.join()
    assert re.search(r"^exit status: \d+$", result.stdout, re.M), msg(
        f"no line 'exit status: N' ({result.describe()})", f"keine Zeile 'exit status: N' ({result.describe()})")
    hit = [(cur, lim) for cur, lim in seen if cur is not None and lim is not None and cur >= lim - 5]
    assert hit, msg("no container's cgroup reached its pids limit while forkbomb.sh ran: did the bomb start?",
                    "die cgroup keines Containers erreichte ihr pids-Limit, während forkbomb.sh lief: ist die Bombe gestartet?")
    assert subprocess.run(["true"]).returncode == 0          # the host can still fork


def test_cpu_shares(run_script, busybox, mc_calls):
    """cpu.sh: with 1024 vs 512 shares on one CPU, heavy gets about twice the CPU time of light
    de: cpu.sh: mit 1024 zu 512 Shares auf einer CPU bekommt heavy etwa doppelt so viel CPU-Zeit wie light

    Hint: shares are a weight, not a limit: they only matter when processes compete for the same CPU. With two CPUs, do your two containers compete?
    Hint 2: --cpu-shares 1024 for heavy and 512 for light, AND --cpuset-cpus 0 for both, so that they share one CPU.
    Hinweis: Shares sind ein Gewicht, keine Grenze: sie zählen nur, wenn Prozesse um dieselbe CPU konkurrieren. Konkurrieren deine zwei Container bei zwei CPUs?
    Hinweis 2: --cpu-shares 1024 für heavy und 512 für light, UND --cpuset-cpus 0 für beide, damit sie sich eine CPU teilen.
    """
    result = run_script("cpu.sh", timeout=120)
    ticks = dict(re.findall(r"^(heavy|light) (\d+)$", result.stdout, re.M))
    assert set(ticks) == {"heavy", "light"}, msg(f"expected the lines 'heavy N' and 'light N' ({result.describe()})",
                                                 f"erwartet die Zeilen 'heavy N' und 'light N' ({result.describe()})")
    heavy, light = int(ticks["heavy"]), int(ticks["light"])
    assert heavy > 0 and light > 0, msg(f"heavy {heavy}, light {light}: both should have run",
                                        f"heavy {heavy}, light {light}: beide hätten laufen sollen")
    assert len(ran_with(mc_calls, "--cpu-shares")) >= 2, msg(
        "cpu.sh printed the lines, but did not run two containers with --cpu-shares",
        "cpu.sh gibt die Zeilen aus, hat aber keine zwei Container mit --cpu-shares gestartet")
    ratio = heavy / light
    assert ratio >= 1.4, msg(f"heavy/light = {heavy}/{light} = {ratio:.2f}; with 1024:512 on one CPU it should be near 2",
                             f"heavy/light = {heavy}/{light} = {ratio:.2f}; mit 1024:512 auf einer CPU sollte es nahe 2 sein")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: cgroups(7) and the kernel's cgroup-v2.rst ("memory.max", "pids.max", "cpu.weight") answer all four.
    Hinweis: cgroups(7) und cgroup-v2.rst des Kernels („memory.max“, „pids.max“, „cpu.weight“) beantworten alle vier.
    """
    answers.expect({"q1": "c", "q2": "a", "q3": "b", "q4": "b"})
