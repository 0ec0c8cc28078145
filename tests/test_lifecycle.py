"""Everything after `run` (issue 4): run -d and its supervisor, ps, logs, inspect, stop, kill,
rm, wait, pause/unpause, top, --restart, --init, names and ID prefixes, concurrency.

Real containers, started through the CLI. Every test removes what it started (the session
fixture checks that no container directory is left).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.root

HEX = set("0123456789abcdef")


def record(mc_root, ref):
    from minicontainer.state import StateStore
    return StateStore(mc_root).find(ref)


def until(condition, timeout=15.0, what="condition"):
    """Poll (no wall-clock assertion: the timeout only stops a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def ps_json(mc, *args):
    return {c["name"]: c for c in json.loads(mc("ps", *args, "--format", "json", check=True).stdout)}


# ── run -d and the supervisor ─────────────────────────────────────────────────────────────

def test_run_detached_prints_the_id_and_returns(mc, mc_root, detached):
    cid = detached("busybox", "sleep", "30", name="det1")
    assert len(cid) == 64 and set(cid) <= HEX
    rec = record(mc_root, "det1")
    assert rec.id == cid and rec.status == "running"
    from minicontainer.state import is_alive
    assert is_alive(rec.pid, rec.pid_start)
    # the supervisor: a separate process, the parent of PID 1, small (the C watcher, watch.c)
    assert is_alive(rec.supervisor_pid, rec.supervisor_start)
    assert int(open(f"/proc/{rec.pid}/stat").read().rsplit(")", 1)[1].split()[1]) == rec.supervisor_pid
    cmdline = watch_phase(rec.supervisor_pid, "minicontainer-watch-")
    assert cmdline[1:4] == [str(mc_root), cid, str(rec.pid)], cmdline
    assert pss_kb(rec.supervisor_pid) < 1024          # conmon's size, not an interpreter's (~2.6 MB)


def watch_phase(pid: int, word: str) -> list[str]:
    """The supervisor's command line once it is in its watch phase: it says "ok" before it
    execs into it (during the execve, /proc/PID/cmdline reads empty)."""
    for _ in range(100):
        cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
        if any(word in arg for arg in cmdline):
            break
        time.sleep(0.05)
    return cmdline


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def test_watch_in_python_without_gcc(mc_root, monkeypatch):
    """No gcc to build watch.c: the watch phase runs in the bare interpreter (-I -S) and
    does the same — the log, the exit status."""
    from minicontainer import supervisor
    from minicontainer.api import Container, read_logs, remove_container, wait_container
    monkeypatch.setattr(supervisor, "watch_binary", lambda root: None)
    cid = Container("busybox", ["sh", "-c", "echo out; echo err >&2; read x; exit 3"], root=mc_root,
                    net="none", name="py-watch", detach=True, interactive=True).start()
    try:
        rec = record(mc_root, "py-watch")
        cmdline = watch_phase(rec.supervisor_pid, "watch")
        assert cmdline[1:4] == ["-I", "-S", "-c"] and "watch" in cmdline
        logged = lambda: sorted(text for _, _, text in read_logs("py-watch", root=mc_root))  # noqa: E731
        until(lambda: logged() == [b"err\n", b"out\n"], what="both lines logged")
        os.kill(rec.pid, signal.SIGKILL)
        assert wait_container(cid, root=mc_root) == 137
    finally:
        remove_container("py-watch", force=True, root=mc_root)


def test_run_detached_error_is_one_line_and_leaves_nothing(mc, mc_root):
    before = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "-d", "--net", "none", "no-such-image", "true")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""
    p = mc("run", "-d", "--net", "none", "--cap-add", "NOT_A_CAP", "busybox", "true")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_run_detached_failure_in_the_child_leaves_nothing(mc, mc_root):
    """An error after fork (here: the user does not exist in the image) comes back as 125."""
    before = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "-d", "--net", "none", "-u", "nosuchuser", "busybox", "true")
    assert p.returncode == 125 and "nosuchuser" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_detached_exit_is_recorded(mc, mc_root, detached):
    detached("busybox", "sh", "-c", "exit 3", name="det-exit")
    until(lambda: record(mc_root, "det-exit").status == "exited", what="exit recorded")
    rec = record(mc_root, "det-exit")
    assert rec.exit_code == 3 and rec.finished_at >= rec.started_at > 0
    from minicontainer.cgroups import open_cgroup
    until(lambda: open_cgroup(rec.cgroup) is None, what="cgroup removed by the supervisor")


def test_run_detached_rm(mc, mc_root):
    """-d --rm: the supervisor removes everything when the container exits."""
    cid = mc("run", "-d", "--rm", "--net", "none", "busybox", "true", check=True).stdout.strip()
    until(lambda: not (mc_root / "containers" / cid).exists(), what="auto-removal")


# ── ps ────────────────────────────────────────────────────────────────────────────────────

def test_ps(mc, detached):
    detached("busybox", "sleep", "30", name="ps-up")
    detached("busybox", "sh", "-c", "exit 4", name="ps-done")
    until(lambda: ps_json(mc, "-a")["ps-done"]["status"] == "exited", what="exit")
    running = mc("ps", check=True).stdout.splitlines()
    assert running[0].split() == ["CONTAINER", "ID", "NAME", "IMAGE", "COMMAND", "STATUS", "PID", "RESTARTS"]
    line = next(l for l in running if "ps-up" in l)
    assert " Up " in line and "busybox:latest" in line and "sleep 30" in line
    assert not any("ps-done" in l for l in running)                # only running ones without -a
    everything = mc("ps", "-a", check=True).stdout
    assert "Exited (4)" in next(l for l in everything.splitlines() if "ps-done" in l)
    data = ps_json(mc, "-a")
    assert data["ps-up"]["status_text"].startswith("Up ") and data["ps-up"]["restart_count"] == 0
    assert data["ps-done"]["exit_code"] == 4 and data["ps-done"]["status_text"].startswith("Exited (4) ")


def test_status_wording():
    from minicontainer.status import human_duration
    assert [human_duration(s) for s in (0.2, 1, 3, 61, 150, 3600, 7200, 3 * 86400)] == [
        "Less than a second", "1 second", "3 seconds", "About a minute", "2 minutes",
        "About an hour", "2 hours", "3 days"]


# ── logs ──────────────────────────────────────────────────────────────────────────────────

def test_logs(mc, mc_root, detached):
    detached("busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; "
             "printf 'no newline'", name="logs1")
    until(lambda: record(mc_root, "logs1").status == "exited", what="exit")
    p = mc("logs", "logs1", check=True)
    assert p.stdout == "out1\nout2\nout3\nout4\nout5\nno newline"
    assert p.stderr == "err1\nerr2\nerr3\nerr4\nerr5\n"
    tail = mc("logs", "--tail", "3", "logs1", check=True)            # the last 3 of 11 lines
    assert tail.stdout.endswith("no newline") and (tail.stdout + tail.stderr).count("\n") == 2
    stamped = mc("logs", "-t", "logs1", check=True).stdout.splitlines()
    assert stamped[0].endswith("Z out1") and stamped[0][:4].isdigit() and "T" in stamped[0]
    # the file is the CRI format (Kubernetes, Podman's k8s-file)
    lines = (mc_root / "containers" / record(mc_root, "logs1").id / "container.log").read_text().splitlines()
    assert any(l.split(" ", 3)[1:] == ["stdout", "F", "out1"] for l in lines)
    assert any(l.split(" ", 3)[1:] == ["stdout", "P", "no newline"] for l in lines)  # a partial line
    # (stdout and stderr are two pipes: the order *between* them is only as good as the reads)


def test_logs_follow(mc_root, detached):
    detached("busybox", "sh", "-c", "echo first; sleep 0.5; echo second; sleep 0.5; echo third",
             name="logs-f")
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "logs", "-f",
                        "logs-f"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "first\nsecond\nthird\n"   # returned when it exited


def test_logs_of_a_foreground_container_are_empty(mc):
    mc("run", "--net", "none", "--name", "fg-logs", "busybox", "echo", "to the terminal", check=True)
    try:
        assert mc("logs", "fg-logs", check=True).stdout == ""
    finally:
        mc("rm", "fg-logs", check=True)


# ── inspect ───────────────────────────────────────────────────────────────────────────────

def test_inspect(mc, mc_root, detached):
    cid = detached("busybox", "sleep", "30", name="insp")
    data = json.loads(mc("inspect", "insp", check=True).stdout)
    assert isinstance(data, list) and len(data) == 1
    c = data[0]
    rec = record(mc_root, "insp")
    assert c["Id"] == cid and c["Name"] == "insp" and c["Path"] == "sleep" and c["Args"] == ["30"]
    assert c["State"]["Running"] and c["State"]["Status"] == "running" and c["State"]["Pid"] == rec.pid
    assert c["State"]["OOMKilled"] is False and c["RestartCount"] == 0
    for ns in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
        inode = int(os.readlink(f"/proc/{rec.pid}/ns/{ns}").split("[")[1].rstrip("]"))
        assert c["Namespaces"][ns] == inode
    assert c["Namespaces"]["pid"] != os.stat("/proc/self/ns/pid").st_ino
    assert c["Cgroup"]["Path"].endswith(f"/{cid}") and all(os.path.isdir(d) for d in c["Cgroup"]["Dirs"])
    assert f"{c['Cgroup']['Path']}\n" in open(f"/proc/{rec.pid}/cgroup").read()   # as the kernel says
    root = [m for m in c["Mounts"] if m["Destination"] == "/"]
    assert root and root[0]["Type"] == "overlay"
    assert {"/proc", "/dev", "/sys"} <= {m["Destination"] for m in c["Mounts"]}
    assert c["Supervisor"]["Running"] and c["Config"]["image"] == "busybox:latest"
    assert mc("inspect", "-f", "{{.State.Pid}}", "insp", check=True).stdout == f"{rec.pid}\n"
    assert json.loads(mc("inspect", "--format", "{{json .RestartPolicy}}", "insp", check=True).stdout) == \
        {"Name": "no", "MaximumRetryCount": 0}
    mc("kill", "insp", check=True)
    until(lambda: json.loads(mc("inspect", "insp").stdout)[0]["State"]["ExitCode"] == 137, what="exit")
    c = json.loads(mc("inspect", "insp", check=True).stdout)[0]
    assert c["State"]["Status"] == "exited" and not c["State"]["Running"] and c["State"]["Pid"] == 0


# ── stop, kill, wait ──────────────────────────────────────────────────────────────────────

def test_stop_sends_sigterm_first(mc, mc_root, detached):
    detached("busybox", "sh", "-c", "trap 'echo bye; exit 42' TERM; while true; do sleep 0.1; done",
             name="stop-trap")
    until(lambda: "sh" in open(f"/proc/{record(mc_root, 'stop-trap').pid}/cmdline").read(), what="start")
    time.sleep(0.2)                                   # let sh install its trap
    assert mc("stop", "stop-trap", check=True).stdout == "stop-trap\n"
    rec = record(mc_root, "stop-trap")
    assert rec.status == "exited" and rec.exit_code == 42      # recorded when stop returns
    assert mc("logs", "stop-trap", check=True).stdout == "bye\n"


def test_stop_kills_after_the_timeout(mc, mc_root, detached):
    """PID 1 without a SIGTERM handler ignores SIGTERM (pid_namespaces(7)): SIGKILL after -t."""
    detached("busybox", "sleep", "30", name="stop-ign")
    assert mc("stop", "-t", "1", "stop-ign", check=True).returncode == 0
    assert record(mc_root, "stop-ign").exit_code == 137


def test_kill(mc, mc_root, detached):
    detached("busybox", "sh", "-c", "trap 'echo got USR1' USR1; while true; do sleep 0.1; done", name="kill1")
    time.sleep(0.3)
    assert mc("kill", "-s", "USR1", "kill1", check=True).stdout == "kill1\n"
    until(lambda: "got USR1" in mc("logs", "kill1").stdout, what="trap output")
    assert record(mc_root, "kill1").status == "running"           # USR1 did not stop it
    assert mc("kill", "kill1", check=True).returncode == 0           # default: SIGKILL
    assert mc("wait", "kill1", check=True).stdout == "137\n"
    p = mc("kill", "kill1")
    assert p.returncode == 1 and "not running" in p.stderr
    assert "invalid signal" in mc("kill", "-s", "NOPE", "kill1").stderr


def test_wait(mc, detached):
    detached("busybox", "sh", "-c", "sleep 0.3; exit 7", name="wait1")
    detached("busybox", "sh", "-c", "exit 2", name="wait2")
    assert mc("wait", "wait1", "wait2", check=True).stdout == "7\n2\n"
    assert mc("wait", "wait1", check=True).stdout == "7\n"        # already exited: at once


# ── rm ────────────────────────────────────────────────────────────────────────────────────

def test_rm(mc, mc_root):
    """rm -f of a container on the default bridge: its supervisor exits as PID 1 dies (it
    sees the removing mark) and rm tears down itself — cgroup, veth, lease, record — and
    still reports the exit as Docker does (kill's status in a `die` event, then `destroy`)."""
    start = time.time()
    cid = mc("run", "-d", "--name", "rm1", "busybox", "sleep", "30", check=True).stdout.strip()
    rec = record(mc_root, "rm1")
    p = mc("rm", "rm1")
    assert p.returncode == 1 and "is running" in p.stderr and "rm -f" in p.stderr
    assert mc("rm", "-f", "rm1", check=True).stdout == "rm1\n"
    from minicontainer.cgroups import open_cgroup
    from minicontainer.state import is_alive
    assert not (mc_root / "containers" / cid).exists()
    assert open_cgroup(cid) is None
    assert not is_alive(rec.pid, rec.pid_start) and not is_alive(rec.supervisor_pid, rec.supervisor_start)
    assert not (mc_root / "networks" / "bridge" / "leases" / f"{cid}.json").exists()
    assert rec.network["veth"] not in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                                     text=True).stdout
    events = [json.loads(line) for line in mc("events", "--since", str(start), "--until", str(time.time() + 0.5),
                                              "--filter", f"container={cid}", "--format", "json",
                                              check=True).stdout.splitlines()]
    assert [e["Action"] for e in events][-2:] == ["die", "destroy"], events
    assert events[-2]["Actor"]["Attributes"]["exitCode"] == "137"
    assert "no such container" in mc("rm", "rm1").stderr


def test_rm_f_of_several(mc, mc_root):
    """rm -f A B C: a paused one and a restarting one go too, a name that does not exist is
    reported in its line (exit 1), and the others are still removed — records, cgroups,
    supervisors, leases."""
    names = ["rmb1", "rmb2", "rmb3"]
    for name in names[:2]:
        mc("run", "-d", "--name", name, "busybox", "sleep", "30", check=True)
    mc("run", "-d", "--name", "rmb3", "--restart", "always", "busybox", "sh", "-c", "exit 3", check=True)
    mc("pause", "rmb2", check=True)
    recs = [record(mc_root, n) for n in names]
    p = mc("rm", "-f", "rmb1", "no-such-one", "rmb2", "rmb3")
    assert p.returncode == 1, p.stderr
    assert p.stdout.split() == ["rmb1", "rmb2", "rmb3"]
    assert p.stderr.count("\n") == 1 and "no such container: no-such-one" in p.stderr
    from minicontainer.cgroups import open_cgroup
    from minicontainer.state import is_alive
    for rec in recs:
        assert not (mc_root / "containers" / rec.id).exists()
        assert open_cgroup(rec.id) is None
        until(lambda: not is_alive(rec.supervisor_pid, rec.supervisor_start), 10, "the supervisor gone")
        assert not is_alive(rec.pid, rec.pid_start)
        assert not (mc_root / "networks" / "bridge" / "leases" / f"{rec.id}.json").exists()


# ── pause, unpause, top ───────────────────────────────────────────────────────────────────

def test_pause_unpause(mc, mc_root, detached):
    cid = detached("busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; done",
                   name="pz")
    mc("pause", "pz", check=True)
    assert ps_json(mc)["pz"]["status"] == "paused" and "(Paused)" in mc("ps", check=True).stdout
    from minicontainer.cgroups import open_cgroup
    cg = open_cgroup(cid)
    states = [open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] for pid in cg.procs()]
    assert states and all(s in ("D", "S", "T", "t") for s in states), states   # frozen, not running
    upper = mc_root / "containers" / cid / "upper" / "tmp" / "n"
    frozen = upper.read_text()
    time.sleep(0.2)
    assert upper.read_text() == frozen                               # no progress while frozen
    assert "already paused" in mc("pause", "pz").stderr
    p = mc("exec", "pz", "true")
    assert p.returncode == 125 and "paused" in p.stderr
    mc("unpause", "pz", check=True)
    until(lambda: upper.read_text() != frozen, what="progress after unpause")
    assert ps_json(mc)["pz"]["status"] == "running"
    assert "not paused" in mc("unpause", "pz").stderr


def test_top(mc, mc_root, detached):
    detached("busybox", "sh", "-c", "sleep 30 & sleep 31; true", name="top1")
    until(lambda: len(mc("top", "top1").stdout.splitlines()) == 4, what="three processes")
    rows = [l.split(None, 6) for l in mc("top", "top1", check=True).stdout.splitlines()]
    assert rows[0] == ["UID", "PID", "PPID", "NSPID", "STAT", "TIME", "CMD"]
    rec = record(mc_root, "top1")
    by_pid = {int(r[1]): r for r in rows[1:]}
    assert by_pid[rec.pid][3] == "1"                                  # PID 1 inside, a host PID outside
    assert {r[6] for r in rows[1:]} == {"sh -c sleep 30 & sleep 31; true", "sleep 30", "sleep 31"}
    assert all(os.path.exists(f"/proc/{pid}") for pid in by_pid)     # host PIDs


# ── names and IDs ─────────────────────────────────────────────────────────────────────────

def test_names_ids_and_prefixes(mc, detached):
    cid = detached("busybox", "sleep", "30", name="named1")
    for ref in (cid, cid[:12], cid[:5], "named1"):
        assert json.loads(mc("inspect", ref, check=True).stdout)[0]["Id"] == cid
        assert mc("top", ref, check=True).returncode == 0
    p = mc("run", "-d", "--net", "none", "--name", "named1", "busybox", "true")
    assert p.returncode == 125 and "already in use" in p.stderr
    assert "no such container" in mc("inspect", "nope-" + cid).stderr


def test_ambiguous_prefix(mc_root):
    from minicontainer.errors import ContainerError
    from minicontainer.state import ContainerRecord, StateStore
    store = StateStore(mc_root)
    recs = [ContainerRecord(id="ab" + c * 62, name=f"amb{c}", image="x", command=["x"], created=time.time())
            for c in "12"]
    try:
        for r in recs:
            store.container_dir(r.id).mkdir()
            store.save(r)
        with pytest.raises(ContainerError, match="matches 2 containers"):
            store.find("ab")
        assert store.find("ab1").name == "amb1"
    finally:
        for r in recs:
            store.delete(r)


# ── --restart ─────────────────────────────────────────────────────────────────────────────

def test_restart_on_failure_with_a_maximum(mc, mc_root, detached):
    detached("--restart", "on-failure:2", "busybox", "sh", "-c", "echo attempt; exit 3", name="rs1")
    until(lambda: record(mc_root, "rs1").restart_count == 2 and record(mc_root, "rs1").status == "exited"
          and not mc_owner_alive(mc_root, "rs1"), what="two restarts, then the end")
    rec = record(mc_root, "rs1")
    assert rec.exit_code == 3
    assert mc("logs", "rs1", check=True).stdout == "attempt\n" * 3
    assert "Exited (3)" in mc("ps", "-a", check=True).stdout
    assert next(l for l in mc("ps", "-a").stdout.splitlines() if "rs1" in l).split()[-1] == "2"


def mc_owner_alive(mc_root, ref):
    from minicontainer.status import owner_alive
    return owner_alive(record(mc_root, ref))


def test_restart_on_failure_not_after_success(mc, mc_root, detached):
    detached("--restart", "on-failure", "busybox", "true", name="rs-ok")
    until(lambda: not mc_owner_alive(mc_root, "rs-ok"), what="supervisor done")
    assert record(mc_root, "rs-ok").restart_count == 0


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_restart_always_until_stopped(mc, mc_root, detached, policy):
    detached("--restart", policy, "busybox", "sh", "-c", "sleep 0.2", name=f"rs-{policy}")
    until(lambda: record(mc_root, f"rs-{policy}").restart_count >= 2, what="restarts")
    mc("stop", "-t", "1", f"rs-{policy}", check=True)
    rec = record(mc_root, f"rs-{policy}")
    assert rec.status == "exited" and not mc_owner_alive(mc_root, f"rs-{policy}")
    count = rec.restart_count
    time.sleep(0.5)
    assert record(mc_root, f"rs-{policy}").restart_count == count    # a stop is final


def test_restart_backoff_doubles():
    from minicontainer.state import ContainerRecord
    from minicontainer.supervisor import restart_delay

    class Store:
        def container_dir(self, cid):
            from pathlib import Path
            return Path("/nonexistent")
    rec = ContainerRecord(id="x", name="x", image="i", command=["c"], created=0, exit_code=1,
                          started_at=100, finished_at=101, config={"restart": "always"})
    delays, streak = [], 0
    for _ in range(12):
        delay, streak = restart_delay(Store(), rec, streak)
        delays.append(delay)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0
    rec.finished_at = 200                                             # it ran 100 s: start over
    assert restart_delay(Store(), rec, streak)[0] == 0.1
    rec.config = {"restart": "no"}
    assert restart_delay(Store(), rec, 0)[0] is None


def test_restart_options_are_checked(mc):
    for args, text in ((["--restart", "sometimes"], "invalid --restart"),
                       (["--restart", "always", "--rm", "-d"], "conflict"),
                       (["--restart", "always"], "needs -d")):
        p = mc("run", *args, "busybox", "true")
        assert p.returncode == 125 and text in p.stderr, p.stderr


# ── --init ────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("init", [False, True])
def test_init_reaps_orphans(mc, detached, init):
    """The orphan of `(sleep 0.1 &)` is re-parented to PID 1. `sleep` as PID 1 never waits for
    it: a zombie stays. With --init, init is PID 1 and reaps it."""
    name = f"reap-{init}"
    detached(*(["--init"] if init else []), "busybox", "sh", "-c", "(sleep 0.1 &); exec sleep 30", name=name)
    time.sleep(0.5)
    procs = mc("exec", name, "ps", "-o", "pid,stat,args", check=True).stdout.splitlines()[1:]
    zombies = [p for p in procs if p.split()[1].startswith("Z")]
    first = procs[0].split(None, 2)
    if init:
        assert first[0] == "1" and first[2] == "/dev/init -- sh -c (sleep 0.1 &); exec sleep 30"
        assert zombies == []
    else:
        assert first[2] == "sleep 30" and len(zombies) == 1


def test_init_forwards_sigterm(mc, mc_root, detached):
    """`sleep` as PID 1 ignores SIGTERM; as init's child it gets it: stop is quick, status 143."""
    detached("--init", "busybox", "sleep", "30", name="init-stop")
    mc("stop", "-t", "20", "init-stop", check=True)
    assert record(mc_root, "init-stop").exit_code == 143


def test_init_exit_status(mc):
    assert mc("run", "--rm", "--net", "none", "--init", "busybox", "sh", "-c", "exit 9").returncode == 9
    assert mc("run", "--rm", "--net", "none", "--init", "busybox", "nosuchcmd").returncode == 127


# ── concurrency and PID reuse ─────────────────────────────────────────────────────────────

def test_parallel_run_and_rm(mc, mc_root):
    """20 parallel `run -d` (5 names, 4 tries each) and `rm -f` calls: each name is taken once,
    every record stays readable, and in the end nothing is left."""
    names = [f"par{i % 5}" for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        runs = list(pool.map(lambda n: mc("run", "-d", "--net", "none", "--name", n, "busybox",
                                          "sleep", "30"), names))
        ok = [p for p in runs if p.returncode == 0]
        assert len(ok) == 5, [p.stderr for p in runs]
        assert all("already in use" in p.stderr for p in runs if p.returncode != 0)
        from minicontainer.state import StateStore
        recs = StateStore(mc_root).list()
        assert sorted(r.name for r in recs if r.name.startswith("par")) == [f"par{i}" for i in range(5)]
        mixed = list(pool.map(lambda i: mc("rm", "-f", f"par{i % 5}") if i % 2 else
                              mc("run", "-d", "--net", "none", "--name", f"par{5 + i}", "busybox", "sleep", "30"),
                              range(20)))
        assert all(p.returncode == 0 or "no such container" in p.stderr for p in mixed), \
            [p.stderr for p in mixed if p.returncode]
    for d in (mc_root / "containers").iterdir():                        # every record is whole JSON
        if not d.name.startswith("."):
            json.loads((d / "state.json").read_text())
    leftovers = [r.name for r in StateStore(mc_root).list() if r.name.startswith("par")]
    assert mc("rm", "-f", *leftovers, check=True).returncode == 0 if leftovers else True
    assert not [r for r in StateStore(mc_root).list() if r.name.startswith("par")]


def test_reused_pid_is_never_signalled(mc, mc_root, detached):
    """A record whose PID now belongs to another process (other start time) is left alone."""
    detached("busybox", "sleep", "30", name="reuse")
    rec = record(mc_root, "reuse")
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        from minicontainer.state import StateStore
        StateStore(mc_root).update(rec.id, pid=bystander.pid)          # pid_start stays PID 1's
        assert "not running" in mc("kill", "reuse").stderr
        assert bystander.poll() is None                                  # still alive
        from minicontainer.stop import signal_process
        assert not signal_process(bystander.pid, rec.pid_start, signal.SIGKILL)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
        os.kill(rec.pid, signal.SIGKILL)                                 # the real PID 1
        until(lambda: record(mc_root, "reuse").status == "exited", what="exit recorded")


# ── the supervisor under stress: restarts, a vanished CLI, races with the verbs ───────────

def test_supervisor_closes_the_streams_it_finished(mc_root, detached):
    """A stream at EOF is closed at once: the pipes are inheritable, and a forgotten one
    would outlive every phase — two per restart, until os.pipe() fails. The container closes
    its output early, so the watcher sees EOF while PID 1 still runs; the supervisor's
    descriptors are counted in the watch phase of each restart (the count most often seen:
    the steady state after EOF)."""
    from collections import Counter
    detached("--restart", "always", "busybox", "sh", "-c", "exec >&- 2>&-; sleep 0.5; exit 1",
             name="fd-leak")
    counts = {}

    def sample() -> bool:
        rec = record(mc_root, "fd-leak")
        try:
            phase = open(f"/proc/{rec.supervisor_pid}/cmdline").read().split("\0")
            count = len(os.listdir(f"/proc/{rec.supervisor_pid}/fd"))
        except OSError:
            return False
        again = record(mc_root, "fd-leak")
        in_watch = "watch" in phase or os.path.basename(phase[0]).startswith("minicontainer-watch-")
        if in_watch and again.status == "running" and again.restart_count == rec.restart_count:
            counts.setdefault(rec.restart_count, Counter())[count] += 1
        return rec.restart_count >= 4
    until(sample, timeout=30, what="four restarts")
    steady = {n: c.most_common(1)[0][0] for n, c in counts.items()}
    assert 1 in steady and 3 in steady and steady[3] == steady[1], counts


def test_supervisor_outlives_the_cli(mc_root, monkeypatch):
    """The CLI killed during `run -d` (Ctrl-C, a timeout) closes the report pipe: the
    supervisor's "ok" must not kill it (its PID 1 would run unwatched, nobody would record
    the exit). Fault injection: Container.start() runs in this process, and its report
    reader closes the pipe at once, as a dying CLI does."""
    from minicontainer import supervisor
    from minicontainer.api import Container, read_logs, remove_container, wait_container
    from minicontainer.errors import MinicontainerError
    from minicontainer.state import StateStore

    def cli_gone(report_r):
        os.close(report_r)
        return ""
    monkeypatch.setattr(supervisor, "read_report", cli_gone)
    with pytest.raises(MinicontainerError):
        Container("busybox", ["sh", "-c", "sleep 0.5; echo still watched; exit 3"], root=mc_root,
                  net="none", name="cli-gone").start()
    until(lambda: any(r.name == "cli-gone" for r in StateStore(mc_root).list()), what="the record")
    try:
        assert wait_container("cli-gone", root=mc_root) == 3
        assert [text for _, _, text in read_logs("cli-gone", root=mc_root)] == [b"still watched\n"]
    finally:
        remove_container("cli-gone", force=True, root=mc_root)


def test_stop_signals_the_pid_1_a_restart_records(mc, mc_root, detached):
    """`stop` while the supervisor restarts: when stop reads the record it still names the
    old, dead PID 1; the new one is recorded a moment later. Simulated on a running container:
    its record is set back to "restarting" with a dead PID until stop has begun, then restored."""
    import threading
    from minicontainer.state import StateStore
    detached("busybox", "sleep", "30", name="stop-rs")
    rec, store = record(mc_root, "stop-rs"), StateStore(mc_root)
    gone = subprocess.Popen(["true"])
    gone.wait()
    store.update(rec.id, status="restarting", pid=gone.pid)

    def new_pid_1_recorded():
        until(lambda: (mc_root / "containers" / rec.id / "stopped").exists(), what="stop's mark")
        time.sleep(0.2)                                   # stop has read the old record by now
        store.update(rec.id, status="running", pid=rec.pid, pid_start=rec.pid_start)
    restore = threading.Thread(target=new_pid_1_recorded)
    restore.start()
    try:
        mc("stop", "-t", "1", "stop-rs", check=True)
    finally:
        restore.join()
    now = record(mc_root, "stop-rs")
    assert now.status == "exited" and now.exit_code == 137


def test_a_stop_during_the_start_is_not_lost(mc_root, monkeypatch):
    """`stop` while the supervisor starts PID 1 (its signal went to the old one): launch
    sees the stop mark after start() and kills the new PID 1; --restart always does not
    restart it. Fault injection: the mark is made inside start(), in this process."""
    from minicontainer import runtime
    from minicontainer.api import Container, remove_container
    real_start = runtime.start

    def start_and_stop(ctx):
        real_start(ctx)
        os.close(os.open(ctx.store.container_dir(ctx.record.id) / "stopped", os.O_CREAT | os.O_WRONLY))
    monkeypatch.setattr(runtime, "start", start_and_stop)
    Container("busybox", ["sleep", "30"], root=mc_root, net="none", name="stop-start",
              restart="always", detach=True).start()
    try:
        until(lambda: record(mc_root, "stop-start").status == "exited"
              and not mc_owner_alive(mc_root, "stop-start"), what="the kill recorded")
        rec = record(mc_root, "stop-start")
        assert rec.exit_code == 137 and rec.restart_count == 0
    finally:
        remove_container("stop-start", force=True, root=mc_root)


def small_phase(*argv) -> list[str]:
    """The command line of a small supervisor phase, as exec_phase makes it."""
    from minicontainer.supervisor import SMALL_BOOT
    return [sys.executable, "-I", "-S", "-c", SMALL_BOOT, *map(str, argv)]


def test_backoff_sees_a_stop_that_came_before_its_handler(tmp_path):
    """A stop between writing "restarting" and the back-off's SIGUSR1 handler: the wake-up
    was ignored, so the back-off checks the mark itself instead of sleeping a minute.
    (No record: the start phase then has nothing to do.)"""
    (tmp_path / "containers" / "c1").mkdir(parents=True)
    (tmp_path / "containers" / "c1" / "stopped").touch()
    assert subprocess.run(small_phase("backoff", tmp_path, "c1", 60, 0), timeout=20).returncode == 0


def test_a_late_wake_up_does_not_kill_the_next_phase(tmp_path):
    """stop's SIGUSR1 ends the back-off; one more, arriving while the start phase's
    interpreter boots, must find SIGUSR1 still ignored (a handler is reset by execve; SIG_IGN
    is kept). The back-off is started as the exited phase leaves it: SIGUSR1 ignored."""
    (tmp_path / "containers" / "c2").mkdir(parents=True)
    p = subprocess.Popen(small_phase("backoff", tmp_path, "c2", 0.2, 0),
                         preexec_fn=lambda: signal.signal(signal.SIGUSR1, signal.SIG_IGN))
    while p.poll() is None:                               # stop wakes the owner on every poll
        os.kill(p.pid, signal.SIGUSR1)
        time.sleep(0.001)
    assert p.returncode == 0


def test_logs_follow_reads_the_end_of_a_removed_log(mc_root):
    """--rm: the last output and the removal of the directory can fall between two polls of
    `logs -f`; the log opened once is still read to its end. Simulated with a record whose
    "container" writes its last line and is removed while the first one is shown."""
    from minicontainer.logs import follow_logs
    from minicontainer.state import StateStore, proc_start_time
    from minicontainer.supervisor import format_entries
    store = StateStore(mc_root)
    rec = store.create("busybox:latest", ["sh"], "logs-gone", supervisor_pid=os.getpid(),
                       supervisor_start=proc_start_time(os.getpid()))
    log = store.container_dir(rec.id) / "container.log"
    log.write_bytes(format_entries(b"stdout", b"first\n"))
    shown = []

    def emit(ts, stream, text):
        shown.append(text)
        if text == b"first\n":
            with open(log, "ab") as f:
                f.write(format_entries(b"stdout", b"last\n"))
            store.delete(rec)
    try:
        follow_logs(rec.id, emit, root=mc_root)
    finally:
        store.delete(rec)
    assert shown == [b"first\n", b"last\n"]


def test_wait_reads_the_exit_of_a_removed_container(mc, mc_root, monkeypatch):
    """--rm: the exit recorded and the record removed between two polls of `wait` — it reads
    the status from the supervisor's exit file, which it holds open. Polls are made slow
    (3 s) so that both fall in between."""
    from minicontainer import stop
    cid = mc("run", "-d", "--rm", "--net", "none", "busybox", "sh", "-c", "sleep 0.5; exit 5",
             check=True).stdout.strip()
    monkeypatch.setattr(stop, "POLL", 3.0)
    assert stop.wait_container(cid, root=mc_root) == 5
    assert not (mc_root / "containers" / cid).exists()


def test_exit_and_restarting_are_one_update(mc_root, monkeypatch):
    """A restart is recorded with the exit, in one locked update, before anything is torn
    down: a plain `rm` never sees "exited" and tears down under the supervisor's feet. And the
    exit is recorded before the record is parsed into a context (which may fail). The phase
    runs in this process; teardown and the next phase are replaced by probes."""
    from minicontainer import runtime, supervisor
    from minicontainer.state import StateStore
    store = StateStore(mc_root)
    rec = store.create("busybox:latest", ["true"], "rs-one", config={"restart": "always", "detach": True})
    store.update(rec.id, status="running", started_at=time.time())
    seen, phases = [], []
    real_context_for = supervisor.context_for

    def context_for(*args):
        seen.append(store.load(rec.id))
        return real_context_for(*args)
    monkeypatch.setattr(supervisor, "context_for", context_for)
    monkeypatch.setattr(runtime, "teardown", lambda ctx: seen.append(store.load(ctx.record.id)))
    monkeypatch.setattr(supervisor, "exec_phase", lambda phase, *args, **kwargs: phases.append(phase))
    try:
        supervisor.exited(str(mc_root), rec.id, 3, 0)
    finally:
        store.delete(rec)
    assert [(r.status, r.exit_code, r.restart_count) for r in seen] == [("restarting", 3, 1)] * 2
    assert phases == ["backoff"]


def test_a_failed_restart_is_logged_and_recorded(mc, mc_root, detached):
    """A restart that fails after the output pipes are attached (here: execve, the command
    deleted itself) says why in supervisor.log — not in the container's closed stderr pipe —
    and records execve's status, 127."""
    cid = detached("--restart", "on-failure:3", "busybox", "/bin/sh", "-c", "rm /bin/sh; exit 1",
                   name="rs-fail")
    until(lambda: record(mc_root, "rs-fail").status == "exited" and not mc_owner_alive(mc_root, "rs-fail"),
          what="the failed restart")
    rec = record(mc_root, "rs-fail")
    assert rec.exit_code == 127 and rec.restart_count == 1
    log = (mc_root / "containers" / cid / "supervisor.log").read_text()
    assert "minicontainer: restart failed: exec /bin/sh: no such file or directory" in log, log


@pytest.mark.parametrize("verb,status", [("pause", "running"), ("unpause", "paused")])
def test_pause_checks_and_changes_under_the_lock(mc_root, monkeypatch, verb, status):
    """An exit the supervisor records while pause freezes (or unpause thaws) must win; with
    the check outside the lock "paused" overwrote it and the container looked dead. The
    cgroup is a fake whose freeze/thaw lets a concurrent update try to run."""
    import threading
    from minicontainer import freezer
    from minicontainer.state import StateStore, proc_start_time
    store = StateStore(mc_root)
    sleeper = subprocess.Popen(["sleep", "30"])
    rec = store.create("busybox:latest", ["sleep"], f"lock-{verb}", supervisor_pid=os.getpid(),
                       supervisor_start=proc_start_time(os.getpid()))
    store.update(rec.id, status=status, pid=sleeper.pid, pid_start=proc_start_time(sleeper.pid))
    exits = []

    class Cgroup:
        def freeze(self):
            exits.append(threading.Thread(target=store.update, args=(rec.id,),
                                          kwargs={"status": "exited", "exit_code": 0}))
            exits[0].start()
            exits[0].join(0.3)                            # it waits for the lock, if pause holds it
        thaw = freeze
    monkeypatch.setattr(freezer, "container_cgroup", lambda rec: Cgroup())
    try:
        getattr(freezer, f"{verb}_container")(rec.id, root=mc_root)
        exits[0].join()
        assert store.load(rec.id).status == "exited"
    finally:
        sleeper.kill()
        sleeper.wait()
        store.delete(rec)


def test_supervisor_keeps_no_inherited_descriptor(mc, mc_root):
    """A descriptor the CLI inherited (a shell's 3>file, a harness's pipe) is not kept by the
    supervisor for the container's life: here the write end of a pipe, which then reads EOF."""
    r, w = os.pipe()
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "-d",
                        "--net", "none", "--name", "fd-inherit", "busybox", "sleep", "30"],
                       pass_fds=(w,), capture_output=True, text=True, timeout=60)
    os.close(w)
    try:
        assert p.returncode == 0, p.stderr
        os.set_blocking(r, False)
        assert os.read(r, 1) == b""                       # no writer left
    finally:
        os.close(r)
        mc("rm", "-f", "fd-inherit")
