"""`minicontainer run`: the command line, exit statuses, errors, files, and the chroot escape."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_snapshots import tree_digest      # names, modes, owners, sizes, mtimes, bytes, xattrs


pytestmark = pytest.mark.root


def test_hello(mc):
    p = mc("run", "--rm", "--hostname", "box", "busybox", "sh", "-c", "echo hello from $(hostname)")
    assert (p.returncode, p.stdout, p.stderr) == (0, "hello from box\n", "")


def test_console_script(mc_root):
    exe = Path(sys.executable).parent / "minicontainer"
    p = subprocess.run([str(exe), "--root", str(mc_root), "run", "--rm", "busybox", "echo", "hi"],
                       capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (0, "hi\n")


@pytest.mark.parametrize("cmd,status", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["no-such-command"], 127),
    (["/no/such/file"], 127),
    (["/etc/passwd"], 126),                    # exists, not executable
])
def test_exit_status(mc, cmd, status):
    p = mc("run", "--rm", "busybox", *cmd)
    assert p.returncode == status, p.stderr
    if status >= 126:
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_exit_137_when_killed(mc_root):
    """SIGKILL from the host → 128+9, as Docker reports it."""
    from test_isolation import start_sleeper
    proc, rec = start_sleeper(mc_root)
    os.kill(rec.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == 137


def test_sigterm_reaches_container(mc_root):
    """SIGTERM sent to minicontainer is passed on to PID 1 (which traps it here)."""
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "--rm",
                             "busybox", "sh", "-c", "trap 'exit 42' TERM; echo ready; "
                             "while true; do sleep 0.05; done"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 42


def test_env_workdir_user(mc):
    out = mc("run", "--rm", "-e", "A=1", "-e", "B=two words", "-w", "/tmp/work", "-u", "student",
             "busybox", "sh", "-c", 'echo "$A|$B|$(pwd)|$(id -u):$(id -g)|$HOME"', check=True).stdout
    assert out == "1|two words|/tmp/work|1000:1000|/home/student\n"
    assert mc("run", "--rm", "-u", "1234:5678", "busybox", "id", "-u", check=True).stdout == "1234\n"


def test_env_copied_from_host(mc, monkeypatch):
    monkeypatch.setenv("MC_TEST_VALUE", "from-host")
    assert mc("run", "--rm", "-e", "MC_TEST_VALUE", "busybox", "sh", "-c", "echo $MC_TEST_VALUE",
              check=True).stdout == "from-host\n"


def test_read_only(mc):
    p = mc("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x")
    assert p.returncode == 1 and "Read-only file system" in p.stderr
    assert mc("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo ok > /dev/shm/x && cat /dev/shm/x",
              check=True).stdout == "ok\n"


def test_stdin_only_with_i(mc):
    assert mc("run", "--rm", "busybox", "cat", input="hidden").stdout == ""
    assert mc("run", "--rm", "-i", "busybox", "cat", input="passed").stdout == "passed"


def test_writes_stay_in_the_container(mc, mc_root):
    """A file written in a container is in neither the image nor a second container."""
    mc("run", "--name", "writer", "busybox", "sh", "-c", "echo secret > /etc/written", check=True)
    try:
        assert not list((mc_root / "images").rglob("etc/written"))
        assert mc("run", "--rm", "busybox", "cat", "/etc/written").returncode == 1
        from minicontainer.state import StateStore
        rec = StateStore(mc_root).find("writer")
        upper = mc_root / "containers" / rec.id / "upper"
        assert (upper / "etc" / "written").read_text() == "secret\n"   # it lives in the upper dir
        assert rec.status == "exited" and rec.exit_code == 0
    finally:
        assert mc("rm", "writer").returncode == 0
    assert not (mc_root / "containers" / rec.id).exists()


def test_image_unchanged_after_100_runs(mc_root):
    from minicontainer import Container, image_store
    rootfs = image_store(mc_root).get("busybox").rootfs
    before = tree_digest(rootfs)
    for i in range(100):
        status = Container("busybox", ["sh", "-c", f"echo {i} >> /etc/passwd; rm -f /bin/ls; "
                                       "chmod 777 /etc; mkdir -p /new/dir"],
                           root=mc_root, remove=True).run()
        assert status == 0
    assert tree_digest(rootfs) == before


@pytest.fixture(scope="module")
def escape_image(helper_image):
    """busybox plus the static double-chroot escape program (tests/helpers/chroot_escape.c)."""
    return helper_image("chroot_escape")


def test_chroot_escape(mc, escape_image, tmp_path):
    """The classic escape reaches the host's root under chroot, and not under pivot_root."""
    marker = tmp_path / f"host-marker-{os.getpid()}"
    marker.write_text("the host's file\n")
    cmd = ["/bin/chroot_escape", "/bin/busybox", "cat", str(marker)]   # busybox is static: the host has it too
    escaped = mc("run", "--rm", "--isolation", "chroot", escape_image, *cmd)
    assert escaped.returncode == 0 and escaped.stdout == "the host's file\n"
    assert "can be escaped" in escaped.stderr
    contained = mc("run", "--rm", escape_image, *cmd)
    assert contained.returncode != 0 and contained.stdout == ""


def test_explain_narrates_the_steps(mc):
    p = mc("run", "--rm", "--explain", "busybox", "true")
    assert p.returncode == 0
    for expected in ("unshare(CLONE_NEWNS", "unshare --mount --uts --ipc --net --pid --fork",
                     "unshare --cgroup",
                     "mount -t overlay", "pivot_root . .", "mount -t proc", "hostname", "execve(",
                     "man: pivot_root(2)"):
        assert expected in p.stderr, expected


def test_name_is_unique(mc):
    mc("run", "--name", "dup", "busybox", "true", check=True)
    try:
        p = mc("run", "--name", "dup", "busybox", "true")
        assert p.returncode == 125 and "already in use" in p.stderr
    finally:
        mc("rm", "dup", check=True)


def test_python_m(mc_root):
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "--rm",
                        "busybox", "echo", "ok"], capture_output=True, text=True)
    assert p.stdout == "ok\n"


def test_explain_survives_a_closed_pipe(mc_root):
    """`run --explain … 2>&1 | head`: when the reader goes away the narration stops, the
    container still runs and is cleaned up."""
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "--rm",
                             "--net", "none", "--explain", "busybox", "true"], stderr=subprocess.PIPE)
    proc.stderr.read(20)
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("options", [[], ["-t"], ["--restart", "always"]])
@pytest.mark.parametrize("cmd,status", [(["no-such-command"], 127), (["/etc/passwd"], 126)])
def test_detached_exec_failure(mc, mc_root, options, cmd, status):
    """`run -d` of a command that cannot be executed fails at once, as Docker's does: the one
    line, execve's status (not 0 and an ID; with --restart always, not a crash loop). The
    container is removed (Docker would leave it "created")."""
    before = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "-d", "--net", "none", *options, "busybox", *cmd)
    assert (p.returncode, p.stdout) == (status, ""), p.stderr
    assert p.stderr.startswith("minicontainer: exec ") and len(p.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_explain_fits_a_screen(mc):
    """Repeats are shown once, as the loop they are (nine `mount cgroup on …` steps on a v1 host,
    mkdir / echo 0 > tasks / rmdir once per controller); --explain=brief is one line per step;
    the clean-up has a heading of its own."""
    full = mc("run", "--rm", "--net", "none", "--explain", "busybox", "true", check=True).stderr
    titles = [line for line in full.splitlines() if line.startswith("▸ ")]
    assert len(titles) <= 34 and len(full.splitlines()) <= 175, full
    assert sum("mount cgroup on" in t for t in titles) <= 2, "cgroup mounts are one step with a loop"
    shells = [line.strip() for line in full.splitlines() if line.strip().startswith("$ ")]
    assert not any(a.split("/")[:4] == b.split("/")[:4] and a.split()[0:2] == b.split()[0:2] and "/tasks" in a + b
                   for a, b in zip(shells, shells[1:])), "echo 0 > …/tasks once per controller"
    assert "── clean up" in full and full.index("── clean up") > full.index("execute the command")
    assert "why 0" not in full and "0 means" in full                  # why 0 is written to tasks
    assert "fork PID 1" in full                                       # the second fork, a step of its own
    assert "docker run" not in full                                   # a real shell equivalent, or none
    brief = mc("run", "--rm", "--net", "none", "--explain=brief", "busybox", "true", check=True).stderr
    lines = [line for line in brief.splitlines() if line.strip()]
    assert all(line.startswith(("▸ ", "    ↻", "── ")) for line in lines), brief
    assert len([line for line in lines if line.startswith("▸ ")]) == len(titles)
    # typer parses when the fast lane gives up (here: create); click's flags take no value, so
    # RunCommand hands `--explain=brief` over itself — and an unknown option is still named.
    bad = mc("run", "--explain=brief", "--bogus", "busybox", "true")
    assert bad.returncode == 125 and "--bogus" in bad.stderr, bad.stderr
    name = f"brief-{os.getpid()}"
    mc("create", "--explain=brief", "--net", "none", "--name", name, "busybox", "true", check=True)
    mc("rm", name, check=True)
