"""Lab 03 — cgroups: the OOM killer, a fork bomb, CPU shares. One check per task (see README.md).

The fork bomb check watches the containers' cgroups from outside while forkbomb.sh runs
(pids.current against pids.max), and refuses to start a bomb that has no --pids-limit.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time



def test_oom(run_script, busybox):
    """oom.sh: a container over its memory limit is killed by the OOM killer (exit 137)
    de: oom.sh: ein Container über seinem Speicherlimit wird vom OOM-Killer beendet (Exit 137)

    Hint: minicontainer run --rm -m 32m busybox … — 137 is 128 + 9 (SIGKILL).
    Hinweis: minicontainer run --rm -m 32m busybox … — 137 ist 128 + 9 (SIGKILL).
    """
    result = run_script("oom.sh", timeout=120)
    status = re.findall(r"^exit status: (\d+)$", result.stdout, re.M)
    assert status, f"no line 'exit status: N' ({result.describe()})"
    assert status[-1] == "137", f"the container exited with {status[-1]}, not 137: was its memory limited?"
    assert "OOM" in result.output, "minicontainer did not report the OOM killer"


def watch_pids(stop: threading.Event, seen: list) -> None:
    """Every 50 ms: (pids_current, pids_limit) of each container's cgroup."""
    from minicontainer.cgroups import list_cgroups, open_cgroup
    while not stop.is_set():
        for cid in list_cgroups():
            cgroup = open_cgroup(cid)
            if cgroup is not None:
                try:
                    stats = cgroup.stats()
                except Exception:          # the group went away while we read it
                    continue
                seen.append((stats.get("pids_current"), stats.get("pids_limit")))
        time.sleep(0.05)


def test_forkbomb(work, run_script, busybox):
    """forkbomb.sh: a fork bomb hits the container's pids limit, and the host survives
    de: forkbomb.sh: eine Forkbombe stösst an das pids-Limit des Containers, der Host überlebt

    Hint: minicontainer run --rm --pids-limit 50 busybox sh -c "$BOMB" (and remove the TODO exit).
    Hinweis: minicontainer run --rm --pids-limit 50 busybox sh -c "$BOMB" (und das TODO-exit entfernen).
    """
    script = (work / "forkbomb.sh").read_text() if (work / "forkbomb.sh").is_file() else ""
    code = "\n".join(line.split("#")[0] for line in script.splitlines())
    limits = [int(n) for n in re.findall(r"--pids-limit[ =](\d+)", code)]
    assert limits, "forkbomb.sh has no --pids-limit: the checker will not start an unlimited fork bomb"
    assert max(limits) <= 200, f"--pids-limit {max(limits)} is too generous for this lab: use 50"
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_pids, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        result = run_script("forkbomb.sh", timeout=120)
    finally:
        stop.set()
        watcher.join()
    assert re.search(r"^exit status: \d+$", result.stdout, re.M), f"no line 'exit status: N' ({result.describe()})"
    hit = [(cur, lim) for cur, lim in seen if cur is not None and lim is not None and cur >= lim - 5]
    assert hit, "no container's cgroup reached its pids limit while forkbomb.sh ran: did the bomb start?"
    assert subprocess.run(["true"]).returncode == 0          # the host can still fork


def test_cpu_shares(run_script, busybox):
    """cpu.sh: with 1024 vs 512 shares on one CPU, heavy gets about twice the CPU time of light
    de: cpu.sh: mit 1024 zu 512 Shares auf einer CPU bekommt heavy etwa doppelt so viel CPU-Zeit wie light

    Hint: --cpu-shares 1024 / 512 AND --cpuset-cpus 0 for both: shares only count when they compete for one CPU.
    Hinweis: --cpu-shares 1024 / 512 UND --cpuset-cpus 0 für beide: Shares zählen nur, wenn beide um eine CPU konkurrieren.
    """
    result = run_script("cpu.sh", timeout=120)
    ticks = dict(re.findall(r"^(heavy|light) (\d+)$", result.stdout, re.M))
    assert set(ticks) == {"heavy", "light"}, f"expected the lines 'heavy N' and 'light N' ({result.describe()})"
    heavy, light = int(ticks["heavy"]), int(ticks["light"])
    assert heavy > 0 and light > 0, f"heavy {heavy}, light {light}: both should have run"
    ratio = heavy / light
    assert ratio >= 1.4, f"heavy/light = {heavy}/{light} = {ratio:.2f}; with 1024:512 on one CPU it should be near 2"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: cgroups(7) and the kernel's cgroup-v2.rst ("memory.max", "pids.max", "cpu.weight") answer all four.
    Hinweis: cgroups(7) und cgroup-v2.rst des Kernels („memory.max“, „pids.max“, „cpu.weight“) beantworten alle vier.
    """
    answers.expect({"q1": "c", "q2": "a", "q3": "b", "q4": "b"})
