"""Bad input gets one clear line, exit status 125, and leaves nothing behind."""
from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.root


def snapshot(mc_root):
    """What a container could leave behind: state entries, cgroups, mounts."""
    containers = sorted(p.name for p in (mc_root / "containers").glob("*") if not p.name.startswith("."))
    from minicontainer.cgroups import list_cgroups
    cgroups = list_cgroups()                   # under the test session's own parent (conftest.py)
    mounts = [l for l in open("/proc/self/mountinfo") if str(mc_root) in l]
    return containers, cgroups, mounts


def one_line_125(p):
    assert p.returncode == 125, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicontainer: "), p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("args,words", [
    (["run", "--rm", "no-such-image", "true"], "no such image"),
    (["run", "--rm", "Bad/Name!", "true"], "invalid"),
    (["run", "--rm", "--isolation", "jail", "busybox", "true"], "--isolation"),
    (["run", "--rm", "--hostname", "bad host", "busybox", "true"], "--hostname"),
    (["run", "--rm", "--workdir", "relative", "busybox", "true"], "--workdir"),
    (["run", "--rm", "--memory", "lots", "busybox", "true"], "--memory"),
    (["run", "--rm", "--cpus", "-1", "busybox", "true"], "--cpus"),
    (["run", "--rm", "--pids-limit", "many", "busybox", "true"], "pids-limit"),
    (["run", "--rm", "--name", "no spaces", "busybox", "true"], "name"),
    (["run", "--rm", "-u", "nobody-here", "busybox", "true"], "unable to find user"),
    (["run", "--no-such-flag", "busybox"], "no-such-flag"),
    (["image", "import", "/no/such.tar", "x"], "/no/such.tar"),
])
def test_bad_input(mc, mc_root, args, words):
    before = snapshot(mc_root)
    p = mc(*args)
    one_line_125(p)
    assert words in p.stderr
    assert snapshot(mc_root) == before


def test_corrupt_tarball(mc, mc_root, tmp_path):
    bad = tmp_path / "corrupt.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    p = mc("image", "import", str(bad), "corrupt")
    one_line_125(p)
    assert mc("image", "inspect", "corrupt").returncode == 125
    assert not [p for p in (mc_root / "images").iterdir() if p.name.startswith(".tmp")]


def test_missing_rootfs(mc, mc_root, busybox_tar):
    assert mc("image", "import", str(busybox_tar), "broken", check=True)
    from minicontainer import image_store
    shutil.rmtree(image_store(mc_root).get("broken").rootfs)
    before = snapshot(mc_root)
    p = mc("run", "--rm", "broken", "true")
    one_line_125(p)
    assert "no rootfs" in p.stderr
    assert snapshot(mc_root) == before
    mc("image", "rm", "broken")


@pytest.mark.parametrize("via", ["flag", "env"])
def test_state_root_below_a_file(tmp_path, via):
    """--root (or MINICONTAINER_ROOT) below a regular file: one line naming it, not a traceback."""
    import subprocess
    import sys
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    root = blocker / "root"
    args = ["--root", str(root)] if via == "flag" else []
    env = {**os.environ, "MINICONTAINER_ROOT": str(root)}
    for verb in (["run", "--rm", "busybox", "true"], ["image", "ls"], ["ps"]):
        p = subprocess.run([sys.executable, "-m", "minicontainer", *args, *verb], env=env,
                           capture_output=True, text=True, timeout=60)
        one_line_125(p)
        assert f"{blocker} is not a directory" in p.stderr


def test_a_failed_cgroup_join_is_reported_and_cleaned_up(mc_root, monkeypatch):
    """The setup child joins the cgroup while the parent attaches the network (runtime.py):
    if the join fails, its own message comes back — not a broken pipe — and nothing is left."""
    from minicontainer import Container
    from minicontainer.cgroups.base import Cgroup
    from minicontainer.errors import CgroupError, MinicontainerError

    def refuse(self):                          # fault injection: inherited by the forked child
        raise CgroupError("cannot move this process into the group: simulated")
    monkeypatch.setattr(Cgroup, "join", refuse)
    before = snapshot(mc_root)
    with pytest.raises(MinicontainerError, match="simulated"):
        Container("busybox", ["true"], root=mc_root, remove=True).run()
    assert snapshot(mc_root) == before


def test_a_setup_child_killed_without_a_word_is_named_with_its_step(mc_root, monkeypatch):
    """A setup child that dies without reporting an error (the OOM killer, a SIGKILL) is named
    with how it ended and the step it was at (runtime.Report), as one StartError carrying 125;
    nothing is left."""
    import signal
    from minicontainer import Container
    from minicontainer.cgroups.base import Cgroup
    from minicontainer.errors import StartError

    monkeypatch.setattr(Cgroup, "join", lambda self: os.kill(os.getpid(), signal.SIGKILL))
    before = snapshot(mc_root)
    with pytest.raises(StartError) as e:
        Container("busybox", ["true"], root=mc_root, remove=True).run()
    assert str(e.value) == ("the setup child was killed by SIGKILL at the step 'join the cgroup', "
                            "before it started the container")
    assert e.value.exit_code == 125
    assert snapshot(mc_root) == before
