"""`minicontainer build` (issue 15): a Containerfile → an image, one layer per instruction,
cached; checked through the CLI, and against `podman build` of the same file."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

MULTI_STAGE = """\
# a two-stage build: tools made in the first, copied into the second
ARG BASE=busybox
FROM $BASE AS tools
ARG GREETING=hello
WORKDIR /src
COPY app/ ./
RUN echo "$GREETING from RUN" > made.txt && chmod 0604 made.txt && \\
    mkdir -p /out && cp -a /src/. /out/ && rm /out/skip-me.txt
FROM busybox
ENV APP_HOME=/opt/app LANG=C.UTF-8
WORKDIR $APP_HOME
COPY --from=tools /out/ ./
COPY --chown=1000:1000 conf.txt etc/
RUN adduser -D -u 1000 app 2>/dev/null || echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd; \\
    mkdir -p /home/app && chown 1000:1000 /home/app
USER app
EXPOSE 8080
LABEL org.example.course="minicontainer" stage=final
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/bin/sh", "-c", "cat /opt/app/made.txt; echo args: \\"$0\\""]
CMD ["default-arg"]
"""


def write_context(path: Path, containerfile: str = MULTI_STAGE) -> Path:
    (path / "app").mkdir(parents=True)
    (path / "app" / "main.sh").write_text("#!/bin/sh\necho main\n")
    os.chmod(path / "app" / "main.sh", 0o755)
    (path / "app" / "skip-me.txt").write_text("removed in RUN\n")
    (path / "app" / "secret.key").write_text("never copied\n")
    (path / "conf.txt").write_text("setting=1\n")
    (path / ".containerignore").write_text("# not for the image\n**/*.key\n")
    (path / "Containerfile").write_text(containerfile)
    return path


@pytest.fixture(scope="module")
def mc_root(tmp_path_factory, busybox_tar):
    """Builds keep their cached layers on purpose, and those layers are busybox's too: so the
    builds get a state root of their own, and the session root's layer counts (test_commit's
    "removed with the last image", `system df`) stay what those tests expect."""
    from minicontainer.api import image_store
    root = tmp_path_factory.mktemp("buildroot")
    image_store(root).import_archive(busybox_tar, "busybox")
    yield root
    assert not [p.name for p in (root / "containers").glob("*") if not p.name.startswith(".")]
    assert not [line for line in open("/proc/self/mountinfo") if str(root) in line]


@pytest.fixture
def built(mc):
    """built(ref) records an image to remove after the test."""
    refs = []
    yield refs.append
    for ref in refs:
        mc("image", "rm", ref)


def test_multi_stage_build_runs_and_caches(mc, tmp_path, built):
    ctx = write_context(tmp_path / "ctx")
    ref = f"built/app:{os.getpid()}"
    built(ref)
    p = mc("build", "-t", ref, "--network", "none", str(ctx), timeout=300)
    assert p.returncode == 0, p.stderr + p.stdout
    lines = p.stdout.splitlines()
    steps = [line for line in lines if line.startswith("STEP ")]
    assert steps[0] == "STEP 1/17: FROM busybox AS tools" and steps[-1] == 'STEP 17/17: CMD ["default-arg"]'
    assert f"COMMIT {ref}" in lines and lines[-2] == f"Successfully tagged {ref}"
    assert len(lines[-1]) == 64
    out = mc("run", "--rm", "--net", "none", ref, check=True).stdout
    assert out == "hello from RUN\nargs: default-arg\n"
    assert mc("run", "--rm", "--net", "none", ref, "given", check=True).stdout.endswith("args: given\n")
    inside = mc("run", "--rm", "--net", "none", "--entrypoint", "sh", ref, "-c",
                "id -u; pwd; ls -A /opt/app; stat -c '%u:%g %a' /opt/app/etc/conf.txt /opt/app/made.txt; "
                "echo $APP_HOME $LANG", check=True).stdout.splitlines()
    assert inside[0] == "1000" and inside[1] == "/opt/app"
    assert inside[2:5] == ["etc", "made.txt", "main.sh"]                 # no skip-me, no secret.key
    assert inside[5] == "1000:1000 644" and inside[6] == "0:0 604"
    assert inside[7] == "/opt/app C.UTF-8"
    config = json.loads(mc("image", "inspect", ref, check=True).stdout)["config"]
    assert config["exposed"] == ["8080/tcp"] and config["stopsignal"] == "SIGUSR1"
    assert config["labels"] == {"org.example.course": "minicontainer", "stage": "final"}
    # the image's STOPSIGNAL and LABELs reach its containers
    name = f"bs-{os.getpid()}"
    mc("create", "--net", "none", "--name", name, ref, check=True)
    try:
        info = json.loads(mc("inspect", name, check=True).stdout)[0]["Config"]
        assert info["stop_signal"] == "SIGUSR1" and info["labels"]["stage"] == "final"
    finally:
        mc("rm", "-f", name)
    # again: every step from the cache
    p = mc("build", "-t", ref, "--network", "none", str(ctx), check=True, timeout=120)
    assert p.stdout.count("--> Using cache") == 14                       # all but FROM and ARG
    # a changed file invalidates its COPY and what follows, not what came before
    (ctx / "conf.txt").write_text("setting=2\n")
    p = mc("build", "-t", ref, "--network", "none", str(ctx), check=True, timeout=300)
    assert p.stdout.count("--> Using cache") == 6                        # the 6 steps before it
    # --no-cache runs everything; --build-arg changes the RUN
    p = mc("build", "-t", ref, "--no-cache", "--build-arg", "GREETING=servus", "--network", "none",
           str(ctx), check=True, timeout=300)
    assert "Using cache" not in p.stdout
    assert mc("run", "--rm", "--net", "none", ref, check=True).stdout.startswith("servus from RUN\n")


def test_each_instruction_is_a_layer_and_images_share_them(mc, tmp_path, built):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a /a\nRUN echo b > /b\nRUN rm /a\nENV X=1\n"
                                    "ADD pack.tar.gz /unpacked/\nCOPY *.txt /txt/\n")
    (ctx / "one.txt").write_text("1\n")
    (ctx / "two.txt").write_text("2\n")
    (ctx / "inner").mkdir()
    (ctx / "inner" / "f").write_text("from the archive\n")
    subprocess.run(["tar", "-czf", str(ctx / "pack.tar.gz"), "--owner=7", "--group=8", "-C", str(ctx), "inner"],
                   check=True)
    ref = f"built/layers:{os.getpid()}"
    built(ref)
    mc("build", "-t", ref, "--network", "none", str(ctx), check=True, timeout=300)
    base = json.loads(mc("image", "inspect", "busybox", check=True).stdout)["layers"]
    mine = json.loads(mc("image", "inspect", ref, check=True).stdout)["layers"]
    assert mine[:len(base)] == base and len(mine) == len(base) + 5      # ENV: configuration only
    out = mc("run", "--rm", "--net", "none", ref, "sh", "-c", "ls /a 2>&1; cat /b; echo $X", check=True).stdout
    assert "No such file" in out and out.endswith("b\n1\n")
    out = mc("run", "--rm", "--net", "none", ref, "sh", "-c",
             "cat /unpacked/inner/f; stat -c %u:%g /unpacked/inner/f; ls /txt", check=True).stdout
    assert out == "from the archive\n7:8\none.txt\ntwo.txt\n"


def test_scratch_and_shell_form_and_exec_form(mc, tmp_path, built, busybox_tar):
    ctx = tmp_path / "ctx"
    (ctx / "root").mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(busybox_tar), "-C", str(ctx / "root")], check=True)
    (ctx / "Containerfile").write_text(
        'FROM scratch\nCOPY root/ /\nSHELL ["/bin/sh", "-c"]\nRUN ["/bin/sh", "-c", "echo exec > /e"]\n'
        "RUN echo shell > /s\nCMD cat /e /s\n")
    ref = f"built/scratch:{os.getpid()}"
    built(ref)
    mc("build", "-t", ref, "--network", "none", str(ctx), check=True, timeout=300)
    assert mc("run", "--rm", "--net", "none", ref, check=True).stdout == "exec\nshell\n"


def containers_in(root) -> list[str]:
    """The containers of a state root (not its .lock, .names …; [] before the first one)."""
    where = root / "containers"
    return sorted(n for n in os.listdir(where) if not n.startswith(".")) if where.is_dir() else []


@pytest.mark.parametrize("containerfile, words", [
    ("FROM busybox\nFROOB x\n", "unknown instruction 'FROOB'"),
    ("FROM busybox\nCOPY ../outside /x\n", "outside the build context"),
    ("FROM busybox\nCOPY /../../etc/passwd /x\n", "outside the build context"),
    ("FROM busybox\nCOPY missing.txt /x\n", "no such file in the build context"),
    ("FROM busybox\nCOPY secret.key /x\n", "excluded by .containerignore"),
    ("FROM no-such-base:1\nRUN true\n", "no such image"),
    ("RUN true\n", "the first instruction must be FROM"),
    ("FROM busybox\nADD https://example.com/x /x\n", "only local files"),
    ("FROM busybox\nCOPY --chmod=600 a /x\n", "unknown or incomplete flag"),
    ("FROM --platform=linux/s390x busybox\n", "linux/s390x"),
    ("FROM busybox\nSHELL /bin/bash -c\n", "exec form"),
])
def test_bad_containerfiles_are_one_line_and_leave_nothing(mc, mc_root, tmp_path, containerfile, words):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "secret.key").write_text("k")
    (ctx / ".dockerignore").write_text("*.key\n")
    (ctx / "Containerfile").write_text(containerfile)
    (tmp_path / "outside").write_text("host file\n")
    images = sorted(p.name for p in (mc_root / "images").iterdir())
    containers = containers_in(mc_root)
    p = mc("build", "-t", "never/made", str(ctx))
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert sorted(p.name for p in (mc_root / "images").iterdir()) == images
    assert containers_in(mc_root) == containers


def test_a_failing_run_stops_the_build(mc, mc_root, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text("FROM busybox\nRUN echo before; exit 3\nRUN echo never\n")
    containers = containers_in(mc_root)
    p = mc("build", "-t", "never/made", "--network", "none", str(ctx))
    assert p.returncode == 1 and 'STEP "RUN echo before; exit 3": exit status 3' in p.stderr
    assert "before" in p.stdout and "never" not in p.stdout
    assert containers_in(mc_root) == containers
    assert mc("image", "inspect", "never/made").returncode == 125


# ── against podman build ──────────────────────────────────────────────────────────────────

PODMAN_MOUNT_POINTS = {"etc/hostname", "etc/hosts", "etc/resolv.conf", "run/.containerenv"}
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")   # (this machine's podman)
needs_podman = pytest.mark.skipif(not shutil.which("podman"), reason="needs podman: apt-get install podman")


@pytest.fixture
def podman(tmp_path):
    """podman with private storage (vfs): nothing of the host's podman changes."""
    runroot = tempfile.mkdtemp(prefix="mcpb-", dir="/tmp")

    def run(*args, check=True, timeout=600):
        cmd = ["podman", "--root", str(tmp_path / "pm-root"), "--runroot", runroot, "--storage-driver",
               "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert not check or p.returncode == 0, (cmd, p.stderr)
        return p
    yield run
    run("rmi", "-a", "-f", check=False)
    shutil.rmtree(runroot, ignore_errors=True)


def tree(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, content digest or link target); no times."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(dirpath) / name
            st = os.lstat(full)
            rel = str(full.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(full.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(full)
            else:
                what = ""
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return out


@needs_podman
def test_same_tree_as_podman_build_and_podman_runs_ours(mc, mc_root, tmp_path, podman, built):
    ctx = write_context(tmp_path / "ctx")
    ref = f"built/cmp:{os.getpid()}"
    built(ref)
    mc("build", "-t", ref, "--network", "none", str(ctx), check=True, timeout=300)
    # podman gets the same busybox, then builds the same file
    mc("image", "export", "--format", "oci", "busybox", "-o", str(tmp_path / "busybox.tar"), check=True)
    podman("load", "-i", str(tmp_path / "busybox.tar"))
    podman("tag", "localhost/busybox:latest", "busybox:latest", check=False)
    podman("build", "--network", "none", "--runtime", "runc", *ULIMITS, "-t", "theirs", "--build-arg", "BASE=localhost/busybox",
           "-f", str(ctx / "Containerfile"), str(ctx), timeout=600)
    theirs = Path(podman("image", "mount", "localhost/theirs").stdout.strip())
    # ours, unpacked from our own export of it
    mc("image", "export", "--format", "oci", ref, "-o", str(tmp_path / "ours.tar"), check=True)
    podman("load", "-i", str(tmp_path / "ours.tar"))
    ours = Path(podman("image", "mount", f"localhost/{ref}").stdout.strip())
    a, b = tree(ours), tree(theirs)
    # podman leaves an empty file where it bind-mounted /etc/hostname during RUN: its artefact
    empty = hashlib.sha256(b"").hexdigest()
    artefacts = {k for k in set(b) - set(a) if k in PODMAN_MOUNT_POINTS and b[k][4] == empty}
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in artefacts)
    assert differ == [], [(k, a.get(k), b.get(k)) for k in differ]
    # and podman runs our image, as it was built
    p = podman("run", "--rm", "--runtime", "runc", *ULIMITS, "--network", "none", f"localhost/{ref}",
               timeout=120)
    assert p.stdout == "hello from RUN\nargs: default-arg\n"
