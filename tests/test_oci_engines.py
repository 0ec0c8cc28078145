"""minicontainer-oci under the engines students move on to: podman (through conmon) and
containerd (through containerd-shim-runc-v2, the path Kubernetes takes).

Both run with private state in a temporary directory, in the test session's own mount and
network namespaces (conftest): podman with --root/--runroot, the vfs storage driver, cgroupfs
and a file event log; containerd with its own config, root, state and socket, stopped at the
end. Each skips, saying why, where its engine is not installed.
"""
from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
OCI = str(Path(sys.executable).with_name("minicontainer-oci"))
# podman's default ulimits (nofile 1048576) are above this machine's hard limit: named below.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


@pytest.fixture(autouse=True)
def cgroup_parent(monkeypatch):
    monkeypatch.setenv("MINICONTAINER_OCI_CGROUP_PARENT", os.environ["MINICONTAINER_CGROUP_PARENT"])


def need(*programs: str) -> None:
    for program in programs:
        if not shutil.which(program):
            pytest.skip(f"{program} is not installed (scripts/setup.sh installs it for the tests)")


# ── podman ────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def podman(tmp_path_factory, busybox_tar):
    """podman(...) with a private store and minicontainer-oci as its runtime; busybox imported."""
    need("podman", "conmon")
    top = tmp_path_factory.mktemp("podman")
    base = ["podman", "--root", str(top / "root"), "--runroot", str(top / "run"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", OCI]

    def run(*args, timeout=120, **kw):
        # conmon writes a file `oom` into its working directory when the kernel OOM-kills the
        # container: there, not into the checkout.
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=top, **kw)
    run.base = base
    p = run("import", str(busybox_tar), "localhost/busybox")
    assert p.returncode == 0, p.stderr
    yield run
    run("rm", "--all", "--force")
    subprocess.run([*base, "system", "reset", "--force"], capture_output=True, timeout=120)


def test_podman_run_passes_the_exit_status(podman):
    p = podman("run", "--rm", *ULIMITS, "--network", "none", "localhost/busybox", "sh", "-c", "echo hi; exit 3")
    assert p.returncode == 3 and p.stdout == "hi\n", p.stderr
    assert podman("run", "--rm", *ULIMITS, "--network", "none", "localhost/busybox", "true").returncode == 0


def test_podman_default_rlimits_are_refused_by_name(podman):
    """podman asks for nofile 1048576, above this machine's hard limit: the error names it."""
    hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    if hard == "unlimited" or int(hard) >= 1048576:
        pytest.skip(f"this machine allows nofile {hard}: podman's default fits")
    p = podman("run", "--rm", "--network", "none", "localhost/busybox", "true")
    assert p.returncode != 0 and "RLIMIT_NOFILE" in p.stderr and "--ulimit nofile" in p.stderr, p.stderr


def test_podman_detached_exec_stop_rm(podman):
    p = podman("run", "-d", *ULIMITS, "--network", "none", "localhost/busybox", "sleep", "100")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    p = podman("exec", cid, "sh", "-c", "cat /proc/1/cmdline; exit 4")
    assert p.returncode == 4 and p.stdout.startswith("sleep"), p.stderr
    assert podman("stop", "-t", "1", cid).returncode == 0
    assert podman("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "exited"
    assert podman("rm", cid).returncode == 0


def test_podman_memory_and_pids_limits_bite(podman):
    p = podman("run", "--rm", *ULIMITS, "--network", "none", "--memory", "32m", "localhost/busybox",
               "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert p.returncode == 137 and "survived" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    p = podman("run", "--rm", *ULIMITS, "--network", "none", "--pids-limit", "5", "localhost/busybox",
               "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait")
    assert p.returncode != 0 and "can't fork" in p.stderr, (p.returncode, p.stderr)


def test_podman_networks(podman):
    p = podman("run", "--rm", *ULIMITS, "--network", "none", "localhost/busybox", "cat", "/proc/net/dev")
    assert p.returncode == 0 and "eth0" not in p.stdout, p.stderr
    if not Path("/usr/lib/cni/bridge").exists() and not shutil.which("netavark"):
        pytest.skip("podman's default network needs containernetworking-plugins or netavark")
    p = podman("run", "--rm", *ULIMITS, "localhost/busybox", "sh", "-c", "ip -4 addr show eth0")
    assert p.returncode == 0 and "inet 10." in p.stdout, p.stderr


def test_podman_hooks_dir_runs_each_hook_where_the_spec_says(podman, tmp_path):
    """podman --hooks-dir writes the hooks into config.json; minicontainer-oci runs prestart and
    createRuntime in the runtime's mount namespace, createContainer in the container's (the
    one its command sees), poststart after start (podman runs poststop itself)."""
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1 $(readlink /proc/self/ns/mnt)" >> {log}\n')
    hook.chmod(0o755)
    hooks_dir = tmp_path / "hooks.d"
    hooks_dir.mkdir()
    stages = ("prestart", "createRuntime", "createContainer", "poststart")
    for stage in stages:
        (hooks_dir / f"{stage}.json").write_text(
            f'{{"version": "1.0.0", "hook": {{"path": "{hook}", "args": ["hook.sh", "{stage}"]}}, '
            f'"when": {{"always": true}}, "stages": ["{stage}"]}}')
    p = subprocess.run([podman.base[0], "--hooks-dir", str(hooks_dir), *podman.base[1:], "run", "--rm",
                        *ULIMITS, "--network", "none", "localhost/busybox", "readlink", "/proc/self/ns/mnt"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    container_mnt, runtime_mnt = p.stdout.strip(), os.readlink("/proc/self/ns/mnt")
    seen = dict(line.split() for line in log.read_text().splitlines())
    assert seen == {"prestart": runtime_mnt, "createRuntime": runtime_mnt,
                    "createContainer": container_mnt, "poststart": runtime_mnt}, seen


def test_podman_interactive_terminal(podman):
    """-it: conmon hands minicontainer-oci a console socket; the shell gets a pty we drive."""
    out = drive_pty([*podman.base, "run", "--rm", "-it", *ULIMITS, "--network", "none", "localhost/busybox", "sh"],
                    b"tty; echo $((6 * 7)); exit 0\n")
    assert b"/dev/pts/0" in out and b"42" in out, out


def drive_pty(argv: list[str], keys: bytes, timeout: float = 60) -> bytes:
    """Run argv on a new pseudo-terminal, type `keys` once it prints, return all it wrote."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out, typed, deadline = b"", False, time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5 if typed else 3)
            if not ready:
                if not typed:
                    os.write(master, keys)
                    typed = True
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not typed and out:
                time.sleep(0.3)
                os.write(master, keys)
                typed = True
    finally:
        os.close(master)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    return out


# ── containerd ────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def ctr(tmp_path_factory, podman):
    """ctr(...) against a containerd of our own (config, root, state, socket in a temp dir),
    with busybox imported from an OCI archive (written by podman save)."""
    need("containerd", "ctr", "containerd-shim-runc-v2")
    top = tmp_path_factory.mktemp("containerd")
    sock = top / "containerd.sock"
    (top / "config.toml").write_text(f'''version = 2
root = "{top}/root"
state = "{top}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
''')
    log = open(top / "containerd.log", "w")
    daemon = subprocess.Popen(["containerd", "--config", str(top / "config.toml")], stdout=log, stderr=log)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.1)

    def run(*args, timeout=120):
        return subprocess.run(["ctr", "--address", str(sock), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    run.base = ["ctr", "--address", str(sock)]
    archive = top / "busybox-oci.tar"
    p = podman("save", "--format", "oci-archive", "-o", str(archive), "localhost/busybox")
    assert p.returncode == 0, p.stderr
    p = run("images", "import", "--base-name", "localhost/busybox", str(archive))
    assert p.returncode == 0, p.stderr
    run.image = "localhost/busybox:latest"
    yield run
    for task in run("tasks", "ls", "-q").stdout.split():
        run("tasks", "kill", "-s", "KILL", task)
    for container in run("containers", "ls", "-q").stdout.split():
        run("tasks", "delete", "--force", container), run("containers", "delete", container)
    daemon.terminate()
    daemon.wait(timeout=30)
    log.close()
    for group in Path("/sys/fs/cgroup").glob("*/default"):   # containerd's namespace: /default/ID
        try:
            group.rmdir()                                    # (only if empty)
        except OSError:
            pass


def test_ctr_run_passes_the_exit_status(ctr):
    p = ctr("run", "--rm", "--runc-binary", OCI, ctr.image, "ctr1", "sh", "-c", "echo from-ctr; exit 5")
    assert p.returncode == 5 and p.stdout == "from-ctr\n", p.stderr


def test_ctr_task_exec_and_kill(ctr):
    p = ctr("run", "-d", "--runc-binary", OCI, ctr.image, "ctr2", "sleep", "100")
    assert p.returncode == 0, p.stderr
    try:
        p = ctr("task", "exec", "--exec-id", "e1", "ctr2", "sh", "-c", "cat /proc/1/cmdline; exit 6")
        assert p.returncode == 6 and p.stdout.startswith("sleep"), p.stderr
        assert ctr("task", "kill", "-s", "SIGKILL", "ctr2").returncode == 0
        for _ in range(100):
            if "STOPPED" in ctr("task", "ls").stdout:
                break
            time.sleep(0.1)
        assert "STOPPED" in ctr("task", "ls").stdout
    finally:
        ctr("task", "delete", "--force", "ctr2"), ctr("container", "delete", "ctr2")


def test_ctr_run_with_a_terminal(ctr):
    out = drive_pty([*ctr.base, "run", "--rm", "-t", "--runc-binary", OCI, ctr.image, "ctr3", "sh"],
                    b"tty; echo $((6 * 7)); exit 0\n")
    assert b"/dev/pts/0" in out and b"42" in out, out
