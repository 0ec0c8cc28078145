"""What a Docker user types (issue 15): create, start [-a] [-i], restart, rename, port, attach;
ps -q / --filter / --format; -l, --entrypoint, --env-file, --cidfile, --stop-signal,
--stop-timeout; snapshot restore then start.

Real containers through the CLI, checked against Docker's documented behaviour: exit
statuses, output shapes, and what the container sees.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root


def until(condition, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def status(mc, name):
    return mc("inspect", "--format", "{{.State.Status}}", name, check=True).stdout.strip()


# ── create, start, restart ────────────────────────────────────────────────────────────────

def test_create_then_start_runs_it_detached(mc, mc_root, named):
    name = named("cs")
    p = mc("create", "--net", "none", "--name", name, "busybox", "sh", "-c", "echo hi; sleep 300", check=True)
    cid = p.stdout.strip()
    assert len(cid) == 64
    assert status(mc, name) == "created"
    row = json.loads(mc("ps", "-a", "--format", "json", check=True).stdout)
    assert [r["Status"] for r in row if r["Names"] == name] == ["Created"]
    assert mc("ps", "-q", check=True).stdout.split().count(cid[:12]) == 0   # not running: not in ps
    # gc does not take a created container for an orphan
    mc("gc", check=True)
    assert status(mc, name) == "created"
    assert mc("start", name, check=True).stdout.strip() == name
    assert status(mc, name) == "running"
    until(lambda: "hi" in mc("logs", name).stdout, what="its output")
    assert mc("start", name).returncode == 0                 # starting a running one: nothing to do
    mc("stop", "-t", "0", name, check=True)
    assert status(mc, name) == "exited"


def test_start_again_keeps_the_files_and_restart_restarts(mc, named):
    name = named("again")
    mc("run", "-d", "--net", "none", "--name", name, "busybox", "sh", "-c",
       "echo run >> /runs; sleep 300", check=True)
    mc("stop", "-t", "0", name, check=True)
    mc("start", name, check=True)
    until(lambda: mc("exec", name, "cat", "/runs").stdout == "run\nrun\n", what="second run")
    pid = json.loads(mc("inspect", name, check=True).stdout)[0]["State"]["Pid"]
    assert mc("restart", "-t", "0", name, check=True).stdout.strip() == name
    new = json.loads(mc("inspect", name, check=True).stdout)[0]["State"]
    assert new["Running"] and new["Pid"] != pid
    assert mc("exec", name, "cat", "/runs", check=True).stdout == "run\nrun\nrun\n"


def test_start_attached_gives_output_and_exit_status(mc, named):
    name = named("att")
    mc("create", "--net", "none", "--name", name, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3",
       check=True)
    p = mc("start", "-a", name)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    assert status(mc, name) == "exited"
    p = mc("start", "-a", name)                               # again: same files, same command
    assert p.returncode == 3


def test_start_interactive_reads_stdin(mc, named):
    name = named("inter")
    mc("create", "-i", "--net", "none", "--name", name, "busybox", "sh", "-c", "read x; echo got $x",
       check=True)
    p = mc("start", "-a", "-i", name, input="hello\n")
    assert (p.returncode, p.stdout) == (0, "got hello\n")


def test_snapshot_restore_then_start_brings_back_the_files(mc, named):
    name = named("roll")
    mc("create", "--net", "none", "--name", name, "busybox", "sh", "-c",
       "cat /n 2>/dev/null || echo 0; echo $(( $(cat /n 2>/dev/null || echo 0) + 1 )) > /n", check=True)
    assert mc("start", "-a", name, check=True).stdout == "0\n"
    mc("snapshot", "create", name, "after1", check=True)
    assert mc("start", "-a", name, check=True).stdout == "1\n"
    assert mc("start", "-a", name, check=True).stdout == "2\n"
    mc("snapshot", "restore", name, "after1", check=True)
    assert mc("start", "-a", name, check=True).stdout == "1\n"     # the restored files


# ── rename, port, attach ──────────────────────────────────────────────────────────────────

def test_rename(mc, named):
    a, b, c = named("ra"), named("rb"), named("rc")
    mc("create", "--net", "none", "--name", a, "busybox", "true", check=True)
    mc("create", "--net", "none", "--name", b, "busybox", "true", check=True)
    p = mc("rename", a, b)
    assert p.returncode == 125 and "already in use" in p.stderr and len(p.stderr.splitlines()) == 1
    p = mc("rename", a, "bad name")
    assert p.returncode == 125 and "invalid container name" in p.stderr
    mc("rename", a, c, check=True)
    assert status(mc, c) == "created" and mc("inspect", a).returncode == 125


def test_port_lists_published_ports(mc, named):
    name = named("port")
    mc("run", "-d", "--name", name, "-p", "18080:80", "-p", "127.0.0.1:18053:53/udp", "busybox",
       "sleep", "300", check=True)
    assert mc("port", name, check=True).stdout.splitlines() == \
        ["80/tcp -> 0.0.0.0:18080", "53/udp -> 127.0.0.1:18053"]
    assert mc("port", name, "80", check=True).stdout == "0.0.0.0:18080\n"
    assert mc("port", name, "53/udp", check=True).stdout == "127.0.0.1:18053\n"
    p = mc("port", name, "81")
    assert p.returncode == 125 and "no public port" in p.stderr
    row = json.loads(mc("ps", "--format", "{{json .}}", "--filter", f"name=^{name}$", check=True).stdout)
    assert "0.0.0.0:18080->80/tcp" in row["Ports"]


def test_attach_follows_new_output_and_returns_the_exit_status(mc, mc_root, named):
    name = named("attach")
    mc("run", "-d", "--net", "none", "--name", name, "busybox", "sh", "-c",
       "echo before; sleep 4; echo after; exit 4", check=True)
    until(lambda: "before" in mc("logs", name).stdout, what="first line")
    p = mc("attach", name)
    assert p.returncode == 4 and p.stdout == "after\n"
    p = mc("attach", name)
    assert p.returncode == 125 and "not running" in p.stderr


def test_attach_passes_ctrl_c_on(mc_root, mc, named):
    name = named("sigp")
    mc("run", "-d", "--net", "none", "--name", name, "busybox", "sh", "-c",
       "trap 'echo got INT; exit 9' INT; while :; do sleep 0.1; done", check=True)
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "attach", name],
                            stdout=subprocess.PIPE, text=True)
    def proxying() -> bool:                          # its handler for SIGTERM is set with SIGINT's
        status = open(f"/proc/{proc.pid}/status").read()
        caught = int(status.split("SigCgt:")[1].split()[0], 16)
        return bool(caught & (1 << (signal.SIGTERM - 1)))
    until(proxying, timeout=30, what="attach's signal proxy")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert (proc.returncode, out) == (9, "got INT\n")


# ── ps ────────────────────────────────────────────────────────────────────────────────────

def test_rm_f_of_ps_aq_removes_everything(tmp_path, busybox_tar):
    """The habit `minicontainer rm -f $(minicontainer ps -aq)`, in a root of its own."""
    from minicontainer.api import image_store
    image_store(tmp_path).import_archive(busybox_tar, "busybox")
    base = [sys.executable, "-m", "minicontainer", "--root", str(tmp_path)]
    subprocess.run(base + ["run", "-d", "--net", "none", "busybox", "sleep", "300"], check=True,
                   capture_output=True)
    subprocess.run(base + ["create", "--net", "none", "busybox", "true"], check=True, capture_output=True)
    subprocess.run(base + ["run", "--net", "none", "busybox", "true"], check=True, capture_output=True)
    cli = " ".join(base)
    p = subprocess.run(f"{cli} rm -f $({cli} ps -aq)", shell=True, capture_output=True, text=True)
    assert p.returncode == 0 and len(p.stdout.split()) == 3, p.stderr
    assert subprocess.run(base + ["ps", "-aq"], capture_output=True, text=True).stdout == ""


def test_ps_filters_and_formats(mc, named):
    web, db, old = named("web"), named("db"), named("old")
    mc("run", "-d", "--net", "none", "--name", web, "-l", "tier=front", "-l", "team=a", "busybox", "sleep", "300",
       check=True)
    mc("run", "-d", "--net", "none", "--name", db, "--label", "tier=back", "busybox", "sleep", "300", check=True)
    mc("run", "--net", "none", "--name", old, "-l", "tier=front", "busybox", "sh", "-c", "exit 2", check=False)

    def names(*args):
        return set(mc("ps", *args, "--format", "{{.Names}}", check=True).stdout.split()) & {web, db, old}
    assert names() == {web, db}
    assert names("-a") == {web, db, old}
    assert names("--filter", "label=tier=front") == {web}               # running only, without -a
    assert names("-a", "--filter", "label=tier=front") == {web, old}
    assert names("-a", "--filter", "label=team") == {web}
    assert names("--filter", "status=exited") == {old}                  # a status shows it, as Docker
    assert names("--filter", "exited=2") == {old}
    assert names("-a", "--filter", "name=" + db) == {db}
    assert names("-a", "--filter", "ancestor=busybox") == {web, db, old}
    assert names("-a", "--filter", "ancestor=busybox:nope") == set()
    cid = mc("inspect", "--format", "{{.Id}}", db, check=True).stdout.strip()
    assert names("-a", "--filter", f"id={cid[:10]}") == {db}
    assert names("-a", "--filter", "status=running", "--filter", "status=exited") == {web, db, old}
    assert names("-a", "--filter", "status=running", "--filter", "label=tier=back") == {db}
    # -q: short IDs, one per line; --no-trunc: the full ones
    assert cid[:12] in mc("ps", "-q", check=True).stdout.split()
    assert cid in mc("ps", "-q", "--no-trunc", check=True).stdout.split()
    # Go templates and table
    line = mc("ps", "--filter", f"name=^{db}$", "--format", "{{.ID}}|{{.Image}}|{{.State}}|{{.Label \"tier\"}}",
              check=True).stdout
    assert line == f"{cid[:12]}|busybox:latest|running|back\n"
    out = mc("ps", "--filter", f"name=^{db}$", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Status}}",
             check=True).stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAMES", "STATUS"] and out[1].startswith(cid[:12] + "   ")
    assert out[1].split()[2] == "Up"
    rows = json.loads(mc("ps", "-a", "--filter", "label=tier", "--format", "json", check=True).stdout)
    assert {r["Names"] for r in rows} >= {web, db, old} and {r["name"] for r in rows} >= {web, db, old}
    assert next(r for r in rows if r["Names"] == web)["Labels"] == "tier=front,team=a"
    assert mc("ps", "-n", "1", "--format", "{{.Names}}", check=True).stdout == f"{old}\n"
    assert mc("ps", "-l", "-q", check=True).stdout.strip() == \
        mc("inspect", "--format", "{{.Id}}", old, check=True).stdout.strip()[:12]


@pytest.mark.parametrize("args, words", [
    (["--filter", "colour=red"], "invalid --filter"),
    (["--filter", "status=sleeping"], "status=sleeping"),
    (["--format", "{{.Nope}}"], "no field"),
    (["--format", "{{range .}}"], "not understood"),
])
def test_ps_bad_filter_or_format_is_one_line(mc, named, args, words):
    mc("create", "--net", "none", "--name", named("pbad"), "busybox", "true", check=True)
    p = mc("ps", "-a", *args)
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ── run/create flags ──────────────────────────────────────────────────────────────────────

def test_labels_in_inspect(mc, named):
    name = named("lab")
    mc("create", "--net", "none", "--name", name, "-l", "a=1", "--label", "b", "busybox", "true", check=True)
    labels = json.loads(mc("inspect", "--format", "{{json .Config.labels}}", name, check=True).stdout)
    assert labels == {"a": "1", "b": ""}


def test_entrypoint_replaces_the_images_and_drops_its_cmd(mc, named, mc_root):
    from minicontainer.api import commit_container, image_store
    base = named("epbase")
    mc("create", "--net", "none", "--name", base, "busybox", "true", check=True)
    image = commit_container(base, "ep-image:1", root=mc_root)
    store = image_store(mc_root)
    data = json.loads((store.root / "ep-image" / "1" / "image.json").read_text())
    data.setdefault("config", {}).update(entrypoint=["echo", "from-entrypoint"], cmd=["from-cmd"])
    (store.root / "ep-image" / "1" / "image.json").write_text(json.dumps(data))
    try:
        assert mc("run", "--rm", "--net", "none", image.ref, check=True).stdout == "from-entrypoint from-cmd\n"
        assert mc("run", "--rm", "--net", "none", "--entrypoint", "echo", image.ref, check=True).stdout == "\n"
        assert mc("run", "--rm", "--net", "none", "--entrypoint", "echo", image.ref, "x", "y",
                  check=True).stdout == "x y\n"
        assert mc("run", "--rm", "--net", "none", "--entrypoint", "", image.ref, "echo", "plain",
                  check=True).stdout == "plain\n"
    finally:
        store.remove(image.ref)


def test_env_file(mc, mc_root, tmp_path):
    f = tmp_path / "env"
    f.write_text("# a comment\n\nA=1\nB=two words\nC=\"quoted\"\nHOMEVAR\n")
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run",
                        "--rm", "--net", "none", "--env-file", str(f), "-e", "A=override", "busybox", "sh", "-c",
                        "echo $A/$B/$C/$HOMEVAR"], env={**os.environ, "HOMEVAR": "mine"},
                       capture_output=True, text=True)
    assert p.stdout == "override/two words/\"quoted\"/mine\n", p.stderr
    p = mc("run", "--rm", "--net", "none", "--env-file", str(tmp_path / "missing"), "busybox", "true")
    assert p.returncode == 125 and "missing" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_cidfile(mc, named, tmp_path):
    cidfile = tmp_path / "cid"
    name = named("cid")
    mc("run", "-d", "--net", "none", "--name", name, "--cidfile", str(cidfile), "busybox", "sleep", "300",
       check=True)
    assert cidfile.read_text() == mc("inspect", "--format", "{{.Id}}", name, check=True).stdout.strip()
    p = mc("create", "--net", "none", "--cidfile", str(cidfile), "busybox", "true")
    assert p.returncode == 125 and "exists" in p.stderr
    other = tmp_path / "cid2"
    p = mc("run", "--rm", "--net", "none", "--cidfile", str(other), "busybox", "true", check=True)
    assert len(other.read_text()) == 64


def test_stop_signal_and_stop_timeout(mc, named):
    name = named("stopsig")
    mc("run", "-d", "--net", "none", "--name", name, "--stop-signal", "USR1", "busybox", "sh", "-c",
       "trap 'exit 7' USR1; while :; do sleep 0.1; done", check=True)
    time.sleep(0.5)
    mc("stop", name, check=True)
    assert json.loads(mc("inspect", name, check=True).stdout)[0]["State"]["ExitCode"] == 7
    slow = named("stoptime")
    mc("run", "-d", "--net", "none", "--name", slow, "--stop-timeout", "1", "busybox", "sleep", "60", check=True)
    t0 = time.monotonic()
    mc("stop", slow, check=True)                   # sleep as PID 1 ignores TERM: KILL after 1 s
    assert json.loads(mc("inspect", slow, check=True).stdout)[0]["State"]["ExitCode"] == 137
    assert time.monotonic() - t0 < 9               # (not the default 10 s: not a timing assertion)
    p = mc("create", "--net", "none", "--stop-signal", "NOPE", "busybox", "true")
    assert p.returncode == 125 and "invalid signal" in p.stderr


def test_create_errors_leave_nothing(mc, mc_root):
    before = sorted(os.listdir(mc_root / "containers"))
    for args in (["no-such-image"], ["--cap-add", "NOPE", "busybox"], ["-m", "lots", "busybox"],
                 ["--stop-timeout", "soon", "busybox"], ["-v", "relative:dir", "busybox"]):
        p = mc("create", "--net", "none", *args, "true")
        assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
    p = mc("start", "no-such-container")
    assert p.returncode == 1 and "no such container" in p.stderr
    assert sorted(os.listdir(mc_root / "containers")) == before


# ── housekeeping: container prune, image tag/history/save/load, logs --since/--until, info ──

def test_container_prune_removes_only_stopped_ones(tmp_path, busybox_tar):
    from minicontainer.api import image_store
    image_store(tmp_path).import_archive(busybox_tar, "busybox")
    base = [sys.executable, "-m", "minicontainer", "--root", str(tmp_path)]

    def mc(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True)
    up = mc("run", "-d", "--net", "none", "busybox", "sleep", "300").stdout.strip()
    made = mc("create", "--net", "none", "busybox", "true").stdout.strip()
    mc("run", "--net", "none", "busybox", "true")
    try:
        p = mc("container", "prune")
        assert p.returncode == 125 and "-f" in p.stderr                   # asks first (no tty: refuses)
        p = mc("container", "prune", "-f")
        assert p.returncode == 0 and made in p.stdout and "Total: 2 containers" in p.stdout
        assert mc("ps", "-aq", "--no-trunc").stdout.split() == [up]
    finally:
        mc("rm", "-f", up)


def test_image_tag_history_save_load(mc, tmp_path):
    ref = f"tagged/bb:{os.getpid()}"
    mc("image", "tag", "busybox", ref, check=True)
    try:
        same = json.loads(mc("image", "inspect", ref, check=True).stdout)
        base = json.loads(mc("image", "inspect", "busybox", check=True).stdout)
        assert same["layers"] == base["layers"] and same["config"] == base["config"]
        rows = json.loads(mc("image", "history", "--format", "json", ref, check=True).stdout)
        assert len(rows) == len(base["layers"]) and rows[0]["ID"] == base["layers"][-1][:12]
        assert mc("image", "history", ref, check=True).stdout.startswith("IMAGE")
        archive = tmp_path / "saved.tar"
        mc("image", "save", "-o", str(archive), ref, check=True)
        mc("image", "rm", ref, check=True)
        p = mc("image", "load", "-i", str(archive), check=True)
        assert p.stdout.strip() == f"Loaded image: {ref}"
        assert mc("run", "--rm", "--net", "none", ref, "echo", "ok", check=True).stdout == "ok\n"
    finally:
        mc("image", "rm", ref)
    p = mc("image", "tag", "no-such-image", "x")
    assert p.returncode == 125 and "no such image" in p.stderr


def test_logs_since_and_until(mc, named):
    name = named("logwin")
    mc("run", "-d", "--net", "none", "--name", name, "busybox", "sh", "-c",
       "echo early; sleep 2; echo late; sleep 300", check=True)
    until(lambda: "late" in mc("logs", name).stdout, what="both lines")
    stamps = [line.split()[0] for line in mc("logs", "-t", name, check=True).stdout.splitlines()]
    assert len(stamps) == 2
    assert mc("logs", "--since", stamps[1], name, check=True).stdout == "late\n"
    assert mc("logs", "--until", stamps[1], name, check=True).stdout == "early\n"
    assert mc("logs", "--since", "1h", name, check=True).stdout == "early\nlate\n"
    assert mc("logs", "--since", str(int(time.time()) + 60), name, check=True).stdout == ""
    p = mc("logs", "--since", "yesterday-ish", name)
    assert p.returncode == 125 and "invalid time" in p.stderr


def test_system_info(mc):
    data = json.loads(mc("system", "info", "--format", "json", check=True).stdout)
    assert data["Driver"] == "overlay" and data["OSType"] == "linux" and data["Images"] >= 1
    assert data["CgroupVersion"] in ("1", "2") and data["NCPU"] == os.cpu_count()
    assert mc("system", "info", "--format", "{{.Driver}}", check=True).stdout == "overlay\n"
    assert "KernelVersion:" in mc("system", "info", check=True).stdout


def test_dns_and_add_host(mc, named):
    out = mc("run", "--rm", "--net", "none", "--dns", "192.0.2.53", "--dns", "192.0.2.54", "--dns-search",
             "example.org", "--add-host", "db.example:192.0.2.7", "--add-host", "v6=2001:db8::1", "busybox",
             "sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts", check=True).stdout
    resolv, hosts = out.split("---\n")
    servers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert servers == ["192.0.2.53", "192.0.2.54"] and "search example.org" in resolv
    assert "192.0.2.7\tdb.example\n" in hosts and "2001:db8::1\tv6\n" in hosts
    # on a bridge the hosts file is rewritten when a neighbour comes or goes: the line stays
    name = named("addhost")
    mc("run", "-d", "--name", name, "--add-host", "db.example:192.0.2.7", "busybox", "sleep", "300", check=True)
    neighbour = named("neighbour")
    mc("run", "-d", "--name", neighbour, "busybox", "sleep", "300", check=True)
    hosts = mc("exec", name, "cat", "/etc/hosts", check=True).stdout
    assert neighbour in hosts and "192.0.2.7\tdb.example\n" in hosts
    for bad in (["--add-host", "nocolon"], ["--add-host", "x:notanip"], ["--dns", "dns.example"],
                ["--add-host", "x:192.0.2.1", "--net", "container:" + name]):
        p = mc("run", "--rm", *bad, "busybox", "true")
        assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, (bad, p.stderr)


def test_platform_and_pull(mc):
    import platform
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert mc("run", "--rm", "--net", "none", "--platform", f"linux/{arch}", "--pull", "never", "busybox",
              "true").returncode == 0
    assert mc("run", "--rm", "--net", "none", "--pull", "missing", "busybox", "true").returncode == 0
    p = mc("run", "--rm", "--net", "none", "--platform", "linux/s390x", "busybox", "true")
    assert p.returncode == 125 and "linux/s390x" in p.stderr and "no emulator" in p.stderr
    p = mc("create", "--net", "none", "--pull", "always", "busybox", "true")
    assert p.returncode == 125 and "no registry" in p.stderr


def test_events(mc, named):
    start = time.time()
    name = named("ev")
    mc("run", "-d", "--net", "none", "--name", name, "-l", "app=ev", "busybox", "sleep", "300", check=True)
    mc("kill", name, check=True)
    until(lambda: status(mc, name) == "exited", what="exit recorded")
    mc("rm", name, check=True)
    mc("run", "--rm", "--net", "none", "--name", name + "-fg", "busybox", "sh", "-c", "exit 3", check=False)
    end = time.time() + 0.5
    p = mc("events", "--since", str(start), "--until", str(end), "--filter", f"container={name}", check=True)
    lines = p.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["create", "start", "kill", "die", "destroy"], lines
    assert lines[0].split()[1] == "container" and f"name={name}" in lines[0] and "app=ev" in lines[0]
    assert "exitCode=137" in lines[3]
    events = [json.loads(line) for line in mc("events", "--since", str(start), "--until", str(end), "--filter",
                                               f"container={name}-fg", "--format", "json", check=True).stdout.splitlines()]
    assert [e["Action"] for e in events] == ["create", "start", "die", "destroy"]
    assert events[2]["Actor"]["Attributes"]["exitCode"] == "3"
    only = mc("events", "--since", str(start), "--until", str(end), "--filter", "event=die", "--filter",
              "label=app=ev", "--format", "{{.Actor.Attributes.name}} {{.Action}}", check=True).stdout
    assert only == f"{name} die\n"
    p = mc("events", "--filter", "colour=red", "--until", "0")
    assert p.returncode == 125 and "invalid --filter" in p.stderr


# ── run flags that become fields of the core's one spec (runopts.py) ─────────────────────

def test_ulimit_sysctl_oom_score_adj_group_add_shm_size(mc):
    out = mc("run", "--rm", "--net", "none", "--ulimit", "nofile=512:1000", "--ulimit", "nproc=300",
             "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1000", "--oom-score-adj", "500",
             "--group-add", "1234", "--shm-size", "1m", "busybox", "sh", "-c",
             "grep -E 'open files|processes' /proc/self/limits; cat /proc/sys/net/ipv4/ip_forward "
             "/proc/sys/kernel/shmmni /proc/self/oom_score_adj; grep Groups /proc/self/status; "
             "grep ' /dev/shm ' /proc/mounts", check=True).stdout.splitlines()
    assert out[0].split()[2:4] == ["300", "300"] and out[1].split()[3:5] == ["512", "1000"]
    assert out[2:5] == ["1", "1000", "500"]
    assert "1234" in out[5].split()
    assert "size=1024k" in out[6]


def test_pid_ipc_uts_host_and_container(mc, named):
    import socket
    host = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "ipc", "uts")}
    hostname = socket.gethostname()
    out = mc("run", "--rm", "--net", "none", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox", "sh", "-c",
             "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname", check=True).stdout.split()
    assert out == [host["pid"], host["ipc"], host["uts"], hostname]
    assert socket.gethostname() == hostname
    a = named("nsowner")
    mc("run", "-d", "--net", "none", "--name", a, "busybox", "sleep", "300", check=True)
    pid = json.loads(mc("inspect", a, check=True).stdout)[0]["State"]["Pid"]
    theirs = [os.readlink(f"/proc/{pid}/ns/{kind}") for kind in ("pid", "ipc")]
    out = mc("run", "--rm", "--net", "none", "--pid", f"container:{a}", "--ipc", f"container:{a}", "busybox",
             "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; ps -o comm", check=True).stdout.split()
    assert out[:2] == theirs and "sleep" in out[2:]
    p = mc("run", "--rm", "--net", "none", "--pid", "container:no-such-one", "busybox", "true")
    assert p.returncode == 125 and "no such container" in p.stderr


@pytest.mark.parametrize("args, words", [
    (["--ulimit", "nofile=lots"], "--ulimit"),
    (["--ulimit", "files=10"], "TYPE"),
    (["--ulimit", "nofile=20:10"], "soft limit is above"),
    (["--sysctl", "vm.swappiness=10"], "not namespaced"),
    (["--sysctl", "kernel.hostname=x"], "not namespaced"),
    (["--net", "host", "--sysctl", "net.ipv4.ip_forward=1"], "shares a network namespace"),
    (["--ipc", "host", "--sysctl", "kernel.shmmax=1"], "shares an IPC namespace"),
    (["--pid", "private-please"], "--pid"),
    (["--uts", "private"], "--uts"),
    (["--uts", "host", "--hostname", "x"], "conflict"),
    (["--oom-score-adj", "5000"], "-1000 to 1000"),
    (["--group-add", "wheel"], "group's number"),
    (["--shm-size", "0"], "--shm-size"),
])
def test_spec_flags_refuse_bad_values(mc, mc_root, args, words):
    before = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "--rm", "--net", "none", *args, "busybox", "true")
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_memory_reservation_and_cpu_period_quota(mc, named):
    from minicontainer.cgroups.layout import detect_layout
    name = named("cpuq")
    mc("run", "-d", "--net", "none", "--name", name, "-m", "64m", "--memory-reservation", "32m",
       "--cpu-period", "50000", "--cpu-quota", "25000", "busybox", "sleep", "300", check=True)
    info = json.loads(mc("inspect", name, check=True).stdout)[0]
    files = {}
    for directory in info["Cgroup"]["Dirs"]:
        for entry in ("memory.soft_limit_in_bytes", "memory.low", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.max"):
            path = os.path.join(directory, entry)
            if os.path.exists(path):
                files[entry] = open(path).read().strip()
    if detect_layout().version == 1:
        assert files["memory.soft_limit_in_bytes"] == str(32 << 20)
        assert (files["cpu.cfs_period_us"], files["cpu.cfs_quota_us"]) == ("50000", "25000")
    else:
        assert files["memory.low"] == str(32 << 20) and files["cpu.max"] == "25000 50000"
    for args, words in ((["--cpus", "1", "--cpu-period", "50000"], "conflict"),
                        (["--cpu-period", "10"], "--cpu-period"), (["--cpu-quota", "abc"], "--cpu-quota"),
                        (["-m", "16m", "--memory-reservation", "32m"], "above --memory")):
        p = mc("run", "--rm", "--net", "none", *args, "busybox", "true")
        assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
