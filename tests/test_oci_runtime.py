"""minicontainer-oci, the OCI runtime with runc's command line (minicontainer/oci/).

    the lifecycle          create → created → start → running → kill → stopped → delete
    the validation suite   ../shared/oci-validation (opencontainers/runtime-tools): the core list
    bad input              one line on stderr, exit 1, nothing left: state, cgroup, mount
    one spec               `run`'s spec written as config.json runs under minicontainer-oci

Every test uses its own --root and the session's cgroup parent, so conftest can prove that
nothing is left behind.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.root
OCI = str(Path(sys.executable).with_name("minicontainer-oci"))
# The validation suite sits beside the checkout in CI (X/main and X/shared); MC_OCI_VALIDATION
# points elsewhere.
VALIDATION = Path(os.environ.get("MC_OCI_VALIDATION") or REPO.parent / "shared" / "oci-validation")


@pytest.fixture(autouse=True)
def cgroup_parent(monkeypatch):
    """OCI containers' cgroups go below the session's parent, which conftest checks is empty."""
    monkeypatch.setenv("MINICONTAINER_OCI_CGROUP_PARENT", os.environ["MINICONTAINER_CGROUP_PARENT"])


@pytest.fixture
def oci(tmp_path):
    """oci("create", "--bundle", B, "c1") → CompletedProcess; its own --root."""
    root = tmp_path / "state"

    def run(*args, check=False, **kw):
        # Files, not pipes: a created container's PID 1 keeps create's stdout and stderr open
        # (conmon and containerd-shim read them as the container's output), so a pipe would
        # never reach its end while the container lives.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([OCI, "--root", str(root), *args], stdout=out, stderr=err, text=True,
                               stdin=subprocess.DEVNULL, timeout=60, **kw)
            out.seek(0), err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"minicontainer-oci {' '.join(args)}: {p.returncode}\n{p.stderr}")
        return p
    run.root = root
    yield run
    for state in root.glob("*/state.json") if root.exists() else ():
        run("delete", "--force", state.parent.name)        # whatever a failed test left


@pytest.fixture(scope="session")
def rootfs(busybox_tar, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ocirootfs") / "rootfs"
    path.mkdir()
    subprocess.run(["tar", "-xf", str(busybox_tar), "-C", str(path)], check=True)
    return path


@pytest.fixture
def bundle(tmp_path, rootfs):
    """make_bundle(args, **changes) → a bundle dir whose config.json is `minicontainer-oci spec`'s."""
    def make(args=("true",), terminal=False, **changes) -> Path:
        b = tmp_path / f"bundle{len(list(tmp_path.glob('bundle*')))}"
        b.mkdir()
        subprocess.run([OCI, "spec", "--bundle", str(b)], check=True)
        config = json.loads((b / "config.json").read_text())
        config["root"] = {"path": str(rootfs), "readonly": True}
        config["process"].update(args=list(args), terminal=terminal)
        for key, value in changes.items():
            config[key] = value
        (b / "config.json").write_text(json.dumps(config))
        return b
    return make


def assert_stops(oci, container_id: str) -> None:
    """`state` says stopped within 5 s (PID 1 was killed or exited)."""
    for _ in range(100):
        if json.loads(oci("state", container_id).stdout)["status"] == "stopped":
            return
        time.sleep(0.05)
    assert json.loads(oci("state", container_id).stdout)["status"] == "stopped"


def one_line_exit_1(p) -> None:
    assert p.returncode == 1, p
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("minicontainer-oci: "), p.stderr
    assert "Traceback" not in p.stderr


# ── the lifecycle ─────────────────────────────────────────────────────────────────────────

def test_create_start_state_kill_delete(oci, bundle, tmp_path):
    b = bundle(["sh", "-c", "echo started > /dev/shm/x; exec sleep 100"])
    pid_file = tmp_path / "pid"
    oci("create", "--bundle", str(b), "--pid-file", str(pid_file), "c1", check=True)
    state = json.loads(oci("state", "c1", check=True).stdout)
    assert state["status"] == "created" and state["id"] == "c1" and state["bundle"] == str(b)
    assert int(pid_file.read_text()) == state["pid"] > 0
    comm = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
    assert b"sleep" not in comm                                  # blocked before execve
    oci("start", "c1", check=True)
    for _ in range(100):
        if b"sleep" in Path(f"/proc/{state['pid']}/cmdline").read_bytes():
            break
        time.sleep(0.05)
    assert json.loads(oci("state", "c1").stdout)["status"] == "running"
    assert json.loads(oci("list", "--format", "json").stdout)[0]["id"] == "c1"
    assert oci("ps", "--format", "json", "c1", check=True).stdout.strip() == f"[{state['pid']}]"
    one_line_exit_1(oci("delete", "c1"))                        # running: needs --force
    oci("kill", "c1", "KILL", check=True)
    assert_stops(oci, "c1")
    oci("delete", "c1", check=True)
    one_line_exit_1(oci("state", "c1"))
    assert not (oci.root / "c1").exists()


def test_run_passes_the_exit_status_and_cleans_up(oci, bundle):
    p = oci("run", "--bundle", str(bundle(["sh", "-c", "echo hello; exit 7"])), "r1")
    assert p.returncode == 7 and p.stdout == "hello\n", p.stderr
    assert not (oci.root / "r1").exists()


def test_pause_resume_exec(oci, bundle):
    oci("create", "--bundle", str(bundle(["sleep", "100"])), "e1", check=True)
    oci("start", "e1", check=True)
    p = oci("exec", "e1", "sh", "-c", "hostname; cat /proc/1/cmdline")
    assert p.returncode == 0 and p.stdout.startswith("minicontainer\nsleep"), p.stderr
    assert oci("exec", "e1", "sh", "-c", "exit 3").returncode == 3
    oci("pause", "e1", check=True)
    assert json.loads(oci("state", "e1").stdout)["status"] == "paused"
    oci("resume", "e1", check=True)
    assert json.loads(oci("state", "e1").stdout)["status"] == "running"
    oci("delete", "--force", "e1", check=True)


def test_console_socket_receives_the_pty_master(oci, bundle, tmp_path):
    """process.terminal: the master comes over --console-socket (SCM_RIGHTS), as conmon and
    containerd-shim receive it; what the container writes to its terminal arrives there."""
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path), server.listen(1)
    b = bundle(["sh", "-c", "tty; echo on-the-tty"], terminal=True)
    oci("create", "--bundle", str(b), "--console-socket", path, "t1", check=True)
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    oci("start", "t1", check=True)
    out = b""
    deadline = time.time() + 10
    while b"on-the-tty" not in out and time.time() < deadline:
        try:
            out += os.read(fds[0], 1024)
        except OSError:
            break
    assert b"/dev/pts/0" in out and b"on-the-tty" in out, out
    os.close(fds[0]), conn.close(), server.close()
    oci("delete", "--force", "t1", check=True)


def test_runc_specs_ambient_set_is_warned_about_not_fatal(oci, bundle):
    """`runc spec` asks for ambient capabilities without an inheritable set: the kernel cannot
    raise them; runc warns and goes on, and so does minicontainer-oci."""
    caps = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted", "ambient")}
    b = bundle(["sh", "-c", "grep CapAmb /proc/self/status"])
    config = json.loads((b / "config.json").read_text())
    config["process"]["capabilities"] = caps
    (b / "config.json").write_text(json.dumps(config))
    p = oci("run", "--bundle", str(b), "a1")
    assert p.returncode == 0 and p.stdout.split() == ["CapAmb:", "0" * 16], p.stderr
    assert "ambient CAP_KILL not raised" in p.stderr


def test_preserve_fds_passes_fd_3(oci, bundle):
    """--preserve-fds 1: the caller's fd 3 is the container's fd 3 (how systemd socket
    activation and conmon's sync pipes reach a container); nothing else leaks."""
    r, w = os.pipe()
    b = bundle(["sh", "-c", "echo through-fd-3 >&3; ls /proc/self/fd | wc -l"])
    p = oci("run", "--preserve-fds", "1", "--bundle", str(b), "f1", preexec_fn=lambda: os.dup2(w, 3), pass_fds=(3,))
    os.close(w)
    assert p.returncode == 0, p.stderr
    assert os.read(r, 100) == b"through-fd-3\n"
    assert p.stdout.strip() == "5"                       # 0, 1, 2, 3 and ls's own directory fd
    os.close(r)


def test_explain_narrates_the_oci_path(oci, bundle):
    """MINICONTAINER_OCI_EXPLAIN=1 (or the annotation): the same steps `run --explain` shows."""
    p = oci("run", "--bundle", str(bundle(["true"])), "x1", env={**os.environ, "MINICONTAINER_OCI_EXPLAIN": "1"})
    assert p.returncode == 0, p.stderr
    for step in ("create new namespaces", "make the root directory a mount point", "mount proc on /proc",
                 "switch the root mount with pivot_root", "wait for `start`", "execute the command"):
        assert step in p.stderr, step


# ── one spec ──────────────────────────────────────────────────────────────────────────────

def test_runs_spec_as_config_json_runs_under_the_oci_runtime(mc_root, oci, bundle, rootfs):
    """`run`'s options become a Spec in prepare(); to_oci() writes it as config.json, and
    minicontainer-oci runs that very document: two ways in, one spec, one sequence."""
    from minicontainer import runtime
    from minicontainer.config import ContainerConfig
    from minicontainer.explain import Explainer
    from minicontainer.state import StateStore
    config = ContainerConfig("busybox", ["sh", "-c", "hostname; grep CapBnd /proc/self/status; id -u; cat /sys/fs/cgroup/pids/pids.max"],
                             hostname="one-spec", net="none", user="65534", cap_drop=["ALL"],
                             cap_add=["KILL"], remove=True, limits={"memory": "64m", "pids_limit": "20"}).validate()
    ctx = runtime.Context(config, StateStore(mc_root), Explainer(False))
    runtime.prepare(ctx)
    try:
        doc = ctx.spec.to_oci()
    finally:
        runtime.teardown(ctx)
    assert doc["process"]["capabilities"]["bounding"] == ["CAP_KILL"]
    assert doc["linux"]["resources"]["memory"]["limit"] == 64 << 20
    assert doc["linux"]["resources"]["pids"] == {"limit": 20}
    assert [n["type"] for n in doc["linux"]["namespaces"]] == ["mount", "uts", "ipc", "network", "pid", "cgroup"]
    doc["root"]["path"] = str(rootfs)                   # run's overlay is mounted by PID 1 itself
    doc["process"]["user"] = {"uid": 65534, "gid": 65534}     # (run looks --user up in the image)
    doc["mounts"] = [m for m in doc["mounts"] if not m["destination"].startswith("/etc/")]
    b = bundle()
    (b / "config.json").write_text(json.dumps(doc))
    p = oci("run", "--bundle", str(b), "s1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["one-spec", "CapBnd:", f"{1 << 5:016x}", "65534", "20"]


# ── hooks: each where and when the runtime spec says ─────────────────────────────────────

RECORDER = """#!/bin/sh
# $1: the hook's name. Records its namespaces, its root, whether PID 1 has $ROOTFS/proc mounted
# (yes: mounts made, pivot_root not yet done), whether it sees $2, PID 1's program (python
# until execve), and the state JSON it read on stdin. The hook named by $FAIL fails.
out=$(dirname "$0")
cat > "$out/$1.json"
pid=$(sed 's/.*"pid": *\\([0-9]*\\).*/\\1/' "$out/$1.json")
{ for ns in mnt uts net ipc pid; do readlink /proc/self/ns/$ns; done
  readlink /proc/self/root
  awk '{print $5}' /proc/$pid/mountinfo 2>/dev/null | grep -qx "$ROOTFS/proc" && echo "pid1 mounted $ROOTFS/proc" || echo -
  ls "$2" >/dev/null 2>&1 && echo "sees $2" || echo "not $2"
  readlink /proc/$pid/exe
} > "$out/$1.txt"
[ "$1" != "$FAIL" ]
"""


def hooked_bundle(bundle, rootfs, where: Path, process, fail: str = ""):
    """A bundle with every kind of hook running the recorder; its output in `where`, which the
    container sees as /out (startContainer's path is the container's: /out/hook)."""
    hook = where / "hook"
    hook.write_text(RECORDER)
    hook.chmod(0o755)
    env = [f"FAIL={fail}", f"ROOTFS={rootfs}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    hooks = {kind: [{"path": str(hook), "args": ["hook", kind, arg], "env": env, "timeout": 20}]
             for kind, arg in (("prestart", ""), ("createRuntime", f"{rootfs}/proc/1"),
                               ("createContainer", f"{rootfs}/proc/1"), ("poststart", ""),
                               ("poststop", ""))}
    hooks["startContainer"] = [{"path": "/out/hook", "args": ["hook", "startContainer", "/out/hook"],
                                "env": env}]
    config_mounts = json.loads(bundle().joinpath("config.json").read_text())["mounts"]
    return bundle(process, hooks=hooks, mounts=config_mounts + [
        {"destination": "/out", "type": "bind", "source": str(where), "options": ["rbind", "rw"]}])


def test_hooks_run_in_their_namespaces_at_their_points(oci, bundle, rootfs, tmp_path):
    """prestart/createRuntime: in the runtime's namespaces, while PID 1 waits before pivot_root
    (its root is still the host's /, its /proc already mounted); createContainer: in the
    container's namespaces, also before pivot_root; startContainer: in the container (found at
    its path there), before the command; poststart: running; poststop: after delete."""
    out = tmp_path / "out"
    out.mkdir()
    b = hooked_bundle(bundle, rootfs, out, ["sh", "-c", "ls /out/startContainer.txt > /out/order; exec sleep 100"])
    oci("create", "--bundle", str(b), "h1", check=True)
    pid = json.loads(oci("state", "h1", check=True).stdout)["pid"]
    container = [os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("mnt", "uts", "net", "ipc", "pid")]
    runtime = [os.readlink(f"/proc/self/ns/{ns}") for ns in ("mnt", "uts", "net", "ipc", "pid")]
    assert container[0] != runtime[0]
    seen = {kind: (out / f"{kind}.txt").read_text().split("\n") for kind in
            ("prestart", "createRuntime", "createContainer")}
    for kind in ("prestart", "createRuntime"):
        assert seen[kind][:7] == runtime + ["/", f"pid1 mounted {rootfs}/proc"], (kind, seen[kind])
        state = json.loads((out / f"{kind}.json").read_text())
        assert state["status"] == "created" and state["pid"] == pid and state["id"] == "h1"
    assert seen["createRuntime"][7] == f"not {rootfs}/proc/1"      # the container's /proc: not ours
    assert seen["createContainer"][:5] == container, seen["createContainer"]
    assert seen["createContainer"][5:8] == ["/", f"pid1 mounted {rootfs}/proc", f"sees {rootfs}/proc/1"]
    assert not (out / "startContainer.txt").exists()            # not before start
    oci("start", "h1", check=True)
    started = (out / "startContainer.txt").read_text().split("\n")
    assert started[:5] == container and started[6:8] == ["-", "sees /out/hook"], started
    assert f" {rootfs}/proc " not in Path(f"/proc/{pid}/mountinfo").read_text()   # pivoted now
    assert json.loads((out / "startContainer.json").read_text())["status"] == "created"
    assert json.loads((out / "poststart.json").read_text())["status"] == "running"
    for _ in range(100):                                        # the command ran after the hook
        if (out / "order").exists():
            break
        time.sleep(0.05)
    assert (out / "order").read_text() == "/out/startContainer.txt\n"
    assert not (out / "poststop.json").exists()
    oci("delete", "--force", "h1", check=True)
    assert json.loads((out / "poststop.json").read_text())["id"] == "h1"


def test_a_start_container_hook_alone(oci, bundle, rootfs, tmp_path):
    """Only a startContainer hook: PID 1 still loads the hook runner before pivot_root (after
    it, the host's Python library is out of reach)."""
    out = tmp_path / "out"
    out.mkdir()
    b = hooked_bundle(bundle, rootfs, out, ["cat", "/out/startContainer.json"])
    config = json.loads((b / "config.json").read_text())
    config["hooks"] = {"startContainer": config["hooks"]["startContainer"]}
    (b / "config.json").write_text(json.dumps(config))
    p = oci("run", "--bundle", str(b), "s1")
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "created", p.stderr


@pytest.mark.parametrize("kind", ["createRuntime", "createContainer", "startContainer", "poststart"])
def test_a_failing_hook_fails_its_operation(oci, bundle, rootfs, tmp_path, kind):
    """runtime.md: a failing create hook fails create (nothing left); startContainer fails start
    before the command runs; poststart fails start and stops the container."""
    out = tmp_path / "out"
    out.mkdir()
    b = hooked_bundle(bundle, rootfs, out, ["sh", "-c", "touch /out/ran; exec sleep 100"], fail=kind)
    p = oci("create", "--bundle", str(b), "f1")
    if kind in ("createRuntime", "createContainer"):
        one_line_exit_1(p)
        assert f"{kind} hook {out}/hook failed with exit status 1" in p.stderr, p.stderr
        nothing_left(oci)
        return
    assert p.returncode == 0, p.stderr
    p = oci("start", "f1")
    one_line_exit_1(p)
    assert f"{kind} hook" in p.stderr and "failed with exit status 1" in p.stderr, p.stderr
    if kind == "poststart":     # PID 1 had run execve (it may not have reached `touch`: killed)
        exe = (out / "poststart.txt").read_text().split("\n")[8]
        assert exe and "python" not in exe, exe
    else:
        assert not (out / "ran").exists()
    assert_stops(oci, "f1")
    oci("delete", "f1", check=True)
    nothing_left(oci)


# ── device rules: enforced, cgroup v1 (devices controller) and v2 (eBPF; the VM stage) ───

def test_a_denied_device_cannot_be_opened(oci, bundle):
    """linux.resources.devices: deny all, allow c 240:1. The container mknods both (m is allowed
    for every node, as runc does); opening 240:0 is refused by the cgroup (EPERM) before any
    driver is asked, 240:1 gets through to the kernel, which has no driver for it (ENXIO)."""
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]
    script = ("mknod /dev/denied c 240 0 && mknod /dev/allowed c 240 1 && "
              "cat /dev/denied; cat /dev/allowed; head -c 3 /dev/zero | wc -c")
    b = bundle(["sh", "-c", "exec 2>&1; " + script])
    config = json.loads((b / "config.json").read_text())
    config["linux"]["resources"]["devices"] = rules
    (b / "config.json").write_text(json.dumps(config))
    p = oci("run", "--bundle", str(b), "dev1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "/dev/denied" in lines[0] and "Operation not permitted" in lines[0], p.stdout
    assert "/dev/allowed" in lines[1] and "No such device or address" in lines[1], p.stdout
    assert lines[2].strip() == "3"                              # the default devices still work
    assert "warning" not in p.stderr, p.stderr


# ── bad input: one line, exit 1, nothing left ─────────────────────────────────────────────

def nothing_left(oci) -> None:
    assert not oci.root.exists() or not any(oci.root.iterdir()), list(oci.root.iterdir())
    parent = os.environ["MINICONTAINER_CGROUP_PARENT"]
    left = [p for p in Path("/sys/fs/cgroup").glob(f"*/{parent}/*") if p.is_dir()]
    assert not left, left


@pytest.mark.parametrize("case, expected", [
    ("missing", "config.json not found"),
    ("malformed", "not valid JSON"),
    ("unknown_namespace", "unknown namespace type 'time-travel'"),
    ("no_root_path", "root.path is missing"),
    ("bad_rlimit", "RLIMIT_TEST"),
    ("relative_masked", "must be an absolute path"),
])
def test_bad_config_is_one_line_exit_1_nothing_left(oci, bundle, case, expected):
    b = bundle()
    config = json.loads((b / "config.json").read_text())
    if case == "missing":
        (b / "config.json").unlink()
    elif case == "malformed":
        (b / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    else:
        if case == "unknown_namespace":
            config["linux"]["namespaces"].append({"type": "time-travel"})
        elif case == "no_root_path":
            del config["root"]["path"]
        elif case == "bad_rlimit":
            config["process"]["rlimits"] = [{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]
        elif case == "relative_masked":
            config["linux"]["maskedPaths"] = ["proc/kcore"]
        (b / "config.json").write_text(json.dumps(config))
    p = oci("create", "--bundle", str(b), "bad1")
    one_line_exit_1(p)
    assert expected in p.stderr, p.stderr
    nothing_left(oci)


def test_a_failing_step_leaves_nothing(oci, bundle):
    """The kernel refuses something in PID 1 (a bind of a missing source): the container is
    gone again, cgroup and state included, and the line names what failed."""
    b = bundle(mounts=[{"destination": "/data", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}])
    p = oci("create", "--bundle", str(b), "bad2")
    one_line_exit_1(p)
    assert "/nonexistent-src" in p.stderr
    nothing_left(oci)


def test_duplicate_unknown_id_and_bad_signal(oci, bundle):
    b = bundle(["sleep", "100"])
    oci("create", "--bundle", str(b), "d1", check=True)
    p = oci("create", "--bundle", str(b), "d1")
    one_line_exit_1(p)
    assert "already exists" in p.stderr
    for verb in (("state",), ("start",), ("kill",), ("delete",)):
        p = oci(*verb, "nosuch")
        one_line_exit_1(p)
        assert "does not exist" in p.stderr
    p = oci("kill", "d1", "SIGNOPE")
    one_line_exit_1(p)
    assert "invalid signal 'SIGNOPE'" in p.stderr
    p = oci("--log", str(oci.root.parent / "log.json"), "--log-format", "json", "kill", "d1", "99")
    one_line_exit_1(p)
    assert json.loads((oci.root.parent / "log.json").read_text())["level"] == "error"
    oci("delete", "--force", "d1", check=True)
    nothing_left(oci)


def test_systemd_cgroup_is_refused_clearly(oci):
    p = oci("--systemd-cgroup", "state", "x")
    one_line_exit_1(p)
    assert "--systemd-cgroup" in p.stderr and "cgroupfs" in p.stderr


@pytest.mark.parametrize("argv", [
    ["state", "c1"], ["--root", "/r", "state", "c1"], ["--root=/r", "--log", "l", "--log-format=json", "kill", "c1"],
    ["kill", "--all", "c1", "9"], ["kill", "c1", "SIGKILL", "-a"], ["delete", "-f", "c1"], ["--debug", "start", "c1"],
    ["create", "--bundle", "/b", "--pid-file=/p", "--console-socket", "/s", "--no-new-keyring", "c1"],
    ["run", "-b", "/b", "-d", "--preserve-fds", "2", "c1"], ["--systemd-cgroup", "pause", "c1"],
    ["--log-format", "xml", "state", "c1"], ["state"], ["state", "a", "b"], ["kill", "--bogus", "c1"],
    ["--ro", "/r", "state", "c1"], ["create", "--preserve-fds", "x", "c1"], ["exec", "c1", "sh"], ["--version"],
])
def test_the_hand_parser_agrees_with_argparse_or_leaves_it_to_argparse(argv):
    """cli.parse_fast (the verbs engines call most, without importing argparse) must give what
    argparse gives, or None: then argparse parses (and words the error)."""
    from minicontainer.oci.cli import parse_fast, parser
    fast = parse_fast(argv)
    try:
        slow = vars(parser().parse_args(argv))
    except SystemExit:
        assert fast is None
        return
    assert fast is not None or argv[0] in ("--ro", "exec", "--version") or "x" in argv, argv
    if fast is not None:
        assert {k: v for k, v in vars(fast).items() if k in slow} == slow


def test_features_and_version():
    features = json.loads(subprocess.run([OCI, "features"], capture_output=True, text=True, check=True).stdout)
    assert "user" in features["linux"]["namespaces"] and features["linux"]["seccomp"]["enabled"]
    assert "spec: 1.0.2" in subprocess.run([OCI, "--version"], capture_output=True, text=True).stdout


def test_the_launcher_starts_python_without_site(tmp_path):
    """oci/launcher.py, which scripts/setup.sh runs over pip's script: `python -IS` with the
    paths `site` would add written in. It answers as the console script does (output flushed
    before os._exit, the one-line error, exit 1), and PYTHON* variables do not reach it."""
    from minicontainer.oci import launcher
    script = tmp_path / "minicontainer-oci"
    launcher.write(str(script), sys.executable)
    assert script.read_text().startswith(f"#!{sys.executable} -IS\n")
    shadow = tmp_path / "shadow" / "minicontainer"          # what PYTHONPATH would import first
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('PYTHONPATH reached the runtime')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    p = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "spec: 1.0.2" in p.stdout, p.stderr
    p = subprocess.run([str(script), "--root", str(tmp_path / "state"), "state", "nope"],
                       capture_output=True, text=True)
    one_line_exit_1(p)


# ── the OCI runtime validation suite (opencontainers/runtime-tools) ─────────────────────────

def validation(tests_file: str, tmp_path) -> tuple[list[str], str]:
    if not (VALIDATION / "run.sh").exists():
        pytest.skip(f"the OCI validation suite is not at {VALIDATION} (CI has it beside the checkout; "
                    "MC_OCI_VALIDATION=DIR points elsewhere)")
    names = [line.split()[0] for line in (VALIDATION / tests_file).read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    env = {**os.environ, "OCI_RESULTS": str(tmp_path / "results"),
           "MINICONTAINER_OCI_ROOT": str(tmp_path / "state")}
    p = subprocess.run([str(VALIDATION / "run.sh"), OCI, *names], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=1200)
    failed = [line.split()[0] for line in p.stdout.splitlines() if " FAIL " in line or " SKIP " in line]
    return failed, p.stdout


def remove_empty_groups(*names: str) -> None:
    """What validation tests ask for as cgroupsPath (/cgrouptest, testdir/…) stays, as with runc:
    the parents of a container's group are not the runtime's. Removed here, if empty."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for name in names:
            top = hierarchy / name
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                    try:
                        d.rmdir()
                    except OSError:
                        pass


@pytest.mark.parametrize("tests_file", ["core-tests.txt", "stretch-tests.txt"], ids=["core", "stretch"])
def test_oci_validation(tmp_path, tests_file):
    """core: the 29 tests that runc 1.1.5 and crun 1.8.1 both pass here; stretch: the 6 more
    that crun passes (hooks on stdin, device cgroup rules, rootfs propagation, seccomp …)."""
    try:
        failed, out = validation(tests_file, tmp_path)
    finally:
        remove_empty_groups("cgrouptest", "testdir")
    assert not failed, out
