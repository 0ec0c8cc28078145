"""More of `docker run`'s flags (issue 15): --mount, --device, --cgroup-parent, health checks,
-a/--attach, --sig-proxy, and `attach` with stdin.

Real containers through the CLI, checked from inside (what the program sees) and from the
host (the cgroup files, the record), against Docker's documented behaviour.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def until(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def containers(mc_root) -> list[str]:
    where = mc_root / "containers"
    return sorted(n for n in os.listdir(where) if not n.startswith(".")) if where.is_dir() else []


def assert_refused(mc, mc_root, args, words) -> None:
    """Issue 15's rule for bad input: one line naming it, exit 125, no container left."""
    before = containers(mc_root)
    p = mc("run", "--rm", "--net", "none", *args, "busybox", "true")
    assert p.returncode == 125 and words in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert containers(mc_root) == before


def run_sh(mc, *args, script: str, check=True):
    return mc("run", "--rm", "--net", "none", *args, "busybox", "sh", "-c", script, check=check)


# ── --mount ───────────────────────────────────────────────────────────────────────────────

def test_mount_bind_volume_tmpfs(mc, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    out = run_sh(mc, "--mount", f"type=bind,source={tmp_path},target=/h,readonly",
                 "--mount", "type=volume,src=mnt-vol,dst=/v",
                 "--mount", "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770",
                 script="cat /h/in.txt; touch /h/x 2>/dev/null || echo ro; echo kept > /v/f; "
                        "stat -c %a /t; df -k /t | tail -1 | awk '{print $2}'; "
                        "grep ' /t ' /proc/mounts | grep -o noexec").stdout
    assert out.split("\n")[:6] == ["from the host", "ro", "1770", "1024", "noexec", ""]
    assert not (tmp_path / "x").exists()
    # the named volume outlives the container, and -v finds the same one
    assert run_sh(mc, "-v", "mnt-vol:/data", script="cat /data/f").stdout == "kept\n"
    assert "mnt-vol" in mc("volume", "ls", check=True).stdout
    mc("volume", "rm", "mnt-vol", check=True)


@pytest.mark.parametrize("spec, words", [
    ("type=bind,source=/nonexistent-mc,target=/x", "bind source path does not exist"),
    ("type=volume,source=v,target=/x,colour=red", "unknown key 'colour'"),
    ("type=nfs,source=v,target=/x", "must be bind, volume or tmpfs"),
    ("type=volume,source=v", "target= is required"),
    ("type=volume,target=/x", "anonymous volumes are not supported"),
    ("type=tmpfs,target=/x,tmpfs-size=lots", "unknown option"),
    ("type=bind,source=/tmp,target=/x,readonly=maybe", "must be true or false"),
    ("type=bind,source=/tmp,target=/x,bind-propagation=shared", "bind-propagation"),
    ("type=volume,source=v,target=relative", "must be absolute"),
])
def test_bad_mount_is_one_line_and_leaves_nothing(mc, mc_root, spec, words):
    assert_refused(mc, mc_root, ["--mount", spec], words)
    assert "v" not in mc("volume", "ls", "-q").stdout.split()


# ── --device ──────────────────────────────────────────────────────────────────────────────

def devices_v1() -> bool:
    from minicontainer.cgroups import detect_layout
    layout = detect_layout()
    return layout.version == 1 and "devices" in layout.v1


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse (a harmless char device)")
def test_device_is_made_and_the_devices_cgroup_enforces_its_perms(mc, mc_root):
    """v1: the devices controller; v2 (the VM stage): the same rules as an eBPF program."""
    # r only: opened for reading, not for writing; a node the container makes itself (loop0,
    # block 7:0) exists but cannot be opened: the cgroup's rules, /dev is not nodev any more
    out = run_sh(mc, "--device", "/dev/fuse:/dev/myfuse:r",
                 script="stat -c '%F %t:%T' /dev/myfuse; exec 3</dev/myfuse && echo read; "
                        "(exec 4>/dev/myfuse) 2>/dev/null || echo no-write; mknod /dev/l b 7 0 && "
                        "{ (exec 5</dev/l) 2>/dev/null || echo no-loop; }; grep ' /dev ' /proc/mounts").stdout
    assert out.splitlines()[:4] == ["character special file a:e5", "read", "no-write", "no-loop"]
    assert "nodev" not in out.splitlines()[4]
    if devices_v1():
        rules = run_sh(mc, "--device", "/dev/fuse:/dev/myfuse:r",
                       script="cat /sys/fs/cgroup/devices/devices.list").stdout.splitlines()
        assert rules[-1] == "c 10:229 r" and "a *:* rwm" not in rules
    # the default rwm, at the host's path
    assert run_sh(mc, "--device", "/dev/fuse", script="exec 3<>/dev/fuse && echo rw").stdout == "rw\n"
    # without --device: no node, and one made by hand cannot be opened (nodev /dev)
    p = run_sh(mc, script="mknod /dev/fuse c 10 229; exec 3<>/dev/fuse", check=False)
    assert p.returncode != 0 and "denied" in p.stderr
    from minicontainer.cgroups.base import PARENT
    left = Path("/sys/fs/cgroup/devices") / PARENT       # v1: the devices groups are removed too
    assert not left.is_dir() or not [d for d in left.iterdir() if d.is_dir()]


def test_device_rules_decide_for_any_node(mc, tmp_path):
    """A node of a made-up number (char 240:7, no driver): what the rules allow reaches the
    kernel's lookup (ENXIO), what they refuse stops at the cgroup (EPERM) — so this runs on
    every kernel, v1's devices controller here and v2's eBPF program in the VM stage."""
    import stat
    node = tmp_path / "mc-dev"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(240, 7))
    out = run_sh(mc, "--device", f"{node}:/dev/exp:r",
                 script="ls -l /dev/exp; (exec 3</dev/exp) 2>&1; (exec 4>/dev/exp) 2>&1; true").stdout
    listing, read, write = out.splitlines()[:3]
    assert listing.startswith("crw-------") and "240,   7" in listing
    assert "No such device" in read and "Operation not permitted" in write, out


@pytest.mark.parametrize("args, words", [
    (["--device", "/dev/nosuch-mc"], "No such file"),
    (["--device", "/tmp"], "not a character or block device"),
    (["--device", "/dev/null:/elsewhere/n"], "must be /dev/NAME"),
    (["--device", "dev/null"], "HOST_PATH[:CONTAINER_PATH][:PERMS]"),
    (["--cgroup-parent", "../up"], "invalid --cgroup-parent"),
])
def test_bad_device_and_cgroup_parent(mc, mc_root, args, words):
    assert_refused(mc, mc_root, args, words)


# ── --cgroup-parent ───────────────────────────────────────────────────────────────────────

def test_cgroup_parent_relative_and_absolute(mc, named):
    from minicontainer.cgroups import detect_layout
    from minicontainer.cgroups.base import PARENT
    layout = detect_layout()
    top = layout.unified if layout.version == 2 else layout.v1["memory"]
    rel, absolute = named("cgp-rel"), named("cgp-abs")
    mine = f"mc-cgp-{os.getpid()}"
    try:
        for name, parent in ((rel, "course/lab3"), (absolute, f"/{mine}/x")):
            mc("run", "-d", "--net", "none", "--name", name, "--cgroup-parent", parent, "-m", "32m",
               "busybox", "sleep", "300", check=True)
        rel_cg = json.loads(mc("inspect", rel, check=True).stdout)[0]["Cgroup"]
        abs_cg = json.loads(mc("inspect", absolute, check=True).stdout)[0]["Cgroup"]
        assert rel_cg["Path"].startswith(f"/{PARENT}/course/lab3/")
        assert abs_cg["Path"].startswith(f"/{mine}/x/")
        for cg, name in ((rel_cg, rel), (abs_cg, absolute)):
            group = top / cg["Path"].lstrip("/")
            pid = json.loads(mc("inspect", name, check=True).stdout)[0]["State"]["Pid"]
            assert str(pid) in (group / "cgroup.procs").read_text().split()
            limit = "memory.max" if layout.version == 2 else "memory.limit_in_bytes"
            assert (group / limit).read_text().strip() == str(32 << 20)     # the limits go there
        mc("rm", "-f", rel, absolute, check=True)
        assert not (top / abs_cg["Path"].lstrip("/")).exists()              # ours is gone…
    finally:
        for base in {*(layout.v1.values() if layout.version == 1 else [layout.unified])}:
            for group in (base / mine / "x", base / mine, base / PARENT / "course" / "lab3",
                          base / PARENT / "course"):
                if group.is_dir():
                    group.rmdir()                   # …the parents stay, as Docker's do


# ── health checks ─────────────────────────────────────────────────────────────────────────

def health_of(mc, name) -> dict:
    return json.loads(mc("inspect", name, check=True).stdout)[0]["State"].get("Health") or {}


def ps_status(mc, name) -> str:
    return mc("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}", check=True).stdout.strip()


def test_health_cmd_starting_unhealthy_healthy_in_ps_and_inspect(mc, mc_root, named):
    name = named("health")
    start = time.time()
    mc("run", "-d", "--net", "none", "--name", name, "--health-cmd", "cat /tmp/ok",
       "--health-interval", "1s", "--health-retries", "2", "--health-timeout", "5s",
       "busybox", "sleep", "300", check=True)
    assert ps_status(mc, name).endswith("(health: starting)")
    until(lambda: health_of(mc, name).get("Status") == "unhealthy", what="unhealthy")
    health = health_of(mc, name)
    assert health["FailingStreak"] >= 2 and health["Log"][-1]["ExitCode"] == 1
    assert "No such file" in health["Log"][-1]["Output"]
    assert ps_status(mc, name).endswith("(unhealthy)")
    mc("exec", name, "sh", "-c", "echo fine > /tmp/ok", check=True)
    until(lambda: health_of(mc, name).get("Status") == "healthy", what="healthy")
    assert ps_status(mc, name).endswith("(healthy)") and health_of(mc, name)["FailingStreak"] == 0
    assert health_of(mc, name)["Log"][-1]["Output"] == "fine\n" and len(health_of(mc, name)["Log"]) <= 5
    events = mc("events", "--since", str(start), "--until", str(time.time() + 0.5), "--filter", f"container={name}", "--format", "{{.Action}}",
                check=True).stdout.split("\n")
    assert "health_status: unhealthy" in events and "health_status: healthy" in events
    mc("rm", "-f", name, check=True)
    until(lambda: not monitors(mc_root), what="the monitor to end with the container")


def monitors(mc_root) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"minicontainer.health_monitor" in cmd and str(mc_root).encode() in cmd:
            out.append(int(pid))
    return out


def test_healthcheck_from_the_image_timeout_and_no_healthcheck(mc, named, tmp_path):
    (tmp_path / "Containerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD sleep 10\n")
    mc("build", "-t", "health-img", str(tmp_path), check=True)
    try:
        slow, off, ok = named("h-img"), named("h-off"), named("h-over")
        mc("run", "-d", "--net", "none", "--name", slow, "health-img", "sleep", "300", check=True)
        mc("run", "-d", "--net", "none", "--name", off, "--no-healthcheck", "health-img", "sleep", "300",
           check=True)
        mc("run", "-d", "--net", "none", "--name", ok, "--health-cmd", "true", "health-img", "sleep", "300",
           check=True)                                  # the flag wins; the image's interval stays
        until(lambda: health_of(mc, slow).get("Status") == "unhealthy", what="the timeout to fail it")
        assert health_of(mc, slow)["Log"][0]["Output"] == "Health check exceeded timeout (1s)"
        until(lambda: health_of(mc, ok).get("Status") == "healthy", what="healthy")
        assert health_of(mc, off) == {} and ps_status(mc, off).startswith("Up") and "(" not in ps_status(mc, off)
    finally:
        mc("rm", "-f", slow, off, ok)
        mc("image", "rm", "health-img")


def test_unhealthy_with_a_restart_policy_restarts(mc, named):
    name = named("h-restart")
    mc("run", "-d", "--net", "none", "--name", name, "--restart", "always", "--health-cmd", "false",
       "--health-interval", "1s", "--health-retries", "1", "busybox", "sleep", "300", check=True)
    until(lambda: json.loads(mc("inspect", name, check=True).stdout)[0]["RestartCount"] >= 1,
          timeout=30, what="a restart after unhealthy")
    mc("stop", "-t", "0", name, check=True)


@pytest.mark.parametrize("args, words", [
    (["--health-cmd", "true", "--health-interval", "often"], "invalid --health-interval"),
    (["--health-cmd", "true", "--health-retries", "0"], "--health-retries"),
    (["--health-cmd", "true", "--no-healthcheck"], "conflicts"),
    (["--health-cmd", "true", "--health-timeout", "0s"], "above 0"),
])
def test_bad_health_options(mc, mc_root, args, words):
    assert_refused(mc, mc_root, args, words)


# ── -a/--attach, --sig-proxy, attach with stdin ───────────────────────────────────────────

def test_run_attach_chooses_the_streams_and_keeps_the_exit_status(mc):
    script = "echo out; echo err >&2; exit 3"
    p = mc("run", "--rm", "--net", "none", "-a", "STDOUT", "busybox", "sh", "-c", script)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "")
    p = mc("run", "--rm", "--net", "none", "-a", "stderr", "busybox", "sh", "-c", script)
    assert (p.returncode, p.stdout, p.stderr) == (3, "", "err\n")
    p = mc("run", "--rm", "--net", "none", "-i", "-a", "stdin", "-a", "stdout", "busybox", "sh", "-c",
           "read line; echo got $line", input="hello\n")
    assert (p.returncode, p.stdout) == (0, "got hello\n")


@pytest.mark.parametrize("args, words", [
    (["-a", "stdxyz"], "invalid --attach"),
    (["-d", "-a", "stdout"], "conflicting options"),
    (["-a", "stdin"], "needs -i"),
    (["--sig-proxy=maybe"], "invalid --sig-proxy"),
    (["-i", "--sig-proxy=false"], "not supported"),
])
def test_bad_attach_options(mc, mc_root, args, words):
    assert_refused(mc, mc_root, args, words)


def cli(mc_root, *args, **popen):
    return subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


TRAP = "trap 'echo got INT; exit 9' INT; echo up; while :; do sleep 0.1; done"


def test_sig_proxy_true_passes_ctrl_c_on_and_false_leaves_it_running(mc, mc_root, named):
    proxied, kept = named("sp-on"), named("sp-off")
    proc = cli(mc_root, "run", "--net", "none", "--name", proxied, "busybox", "sh", "-c", TRAP)
    assert proc.stdout.readline() == "up\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 9 and proc.stdout.read() == "got INT\n"
    proc = cli(mc_root, "run", "--net", "none", "--name", kept, "--sig-proxy=false", "busybox", "sh", "-c", TRAP)
    assert proc.stdout.readline() == "up\n"
    proc.send_signal(signal.SIGINT)                       # ends the CLI, not the container
    assert proc.wait(timeout=20) == 130 and "got INT" not in proc.stdout.read()
    assert json.loads(mc("inspect", kept, check=True).stdout)[0]["State"]["Running"]
    mc("kill", "-s", "INT", kept, check=True)
    assert mc("wait", kept, check=True).stdout.strip() == "9"
    assert "got INT" in mc("logs", kept, check=True).stdout


def test_attach_feeds_stdin_to_a_detached_container(mc, mc_root, named):
    pipe, tty = named("att-i"), named("att-t")
    mc("run", "-d", "-i", "--net", "none", "--name", pipe, "busybox", "sh", "-c",
       "while read l; do echo got $l; [ $l = bye ] && exit 5; done", check=True)
    proc = cli(mc_root, "attach", pipe, stdin=subprocess.PIPE)
    proc.stdin.write("hello\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "got hello\n"
    proc.stdin.write("bye\n")
    proc.stdin.close()
    assert proc.wait(timeout=20) == 5 and proc.stdout.read() == "got bye\n"
    mc("run", "-d", "-it", "--net", "none", "--name", tty, "busybox", "sh", check=True)
    proc = cli(mc_root, "attach", tty, stdin=subprocess.PIPE)
    proc.stdin.write("echo $((6*7)); exit 4\n")
    proc.stdin.close()
    assert proc.wait(timeout=20) == 4 and "42" in proc.stdout.read()   # the pty echoes, then answers
    p = mc("attach", "--no-stdin", pipe)
    assert p.returncode == 125 and "not running" in p.stderr
