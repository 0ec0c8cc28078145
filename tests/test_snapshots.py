"""`snapshot create|ls|restore|rm`: a frozen copy of the upper dir, and rollback to it."""
from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def tree_digest(root: Path) -> str:
    """Everything restore must bring back: names, types, modes, owners, sizes, mtimes,
    bytes, link targets, device numbers (whiteouts) and xattrs (opaque dirs)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_uid} {st.st_gid} {st.st_size} "
                     f"{st.st_mtime_ns} {st.st_rdev}".encode())
            for key in sorted(os.listxattr(p, follow_symlinks=False)):
                h.update(key.encode() + os.getxattr(p, key, follow_symlinks=False))
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(Path(p).read_bytes())
    return h.hexdigest()


@pytest.fixture
def running(mc, mc_root):
    name = f"snap-{secrets.token_hex(3)}"
    mc("run", "-d", "--name", name, "--net", "none", "busybox", "sleep", "300", check=True)
    from minicontainer.state import StateStore
    upper = mc_root / "containers" / StateStore(mc_root).find(name).id / "upper"
    yield name, upper
    mc("rm", "-f", name)


def test_snapshot_change_restore_gives_back_exact_bytes_modes_and_deletions(mc, running):
    name, upper = running
    mc("exec", name, "sh", "-c", "head -c 100000 /dev/urandom > /data.bin && chmod 640 /data.bin && "
                                 "chown 1000:1000 /data.bin && mkdir -p /srv/app && echo v1 > /srv/app/conf && "
                                 "rm /etc/profile && rm -rf /home/student && mkdir /home/student", check=True)
    data = (upper / "data.bin").read_bytes()
    assert mc("snapshot", "create", name, "v1", check=True).stdout == "v1\n"
    before = tree_digest(upper)
    mc("exec", name, "sh", "-c", "echo changed > /data.bin && chmod 777 /data.bin && rm -rf /srv/app && "
                                 "echo back > /etc/profile && touch /home/student/x && rm /bin/ls", check=True)
    assert tree_digest(upper) != before
    p = mc("snapshot", "restore", name, "v1")
    assert p.returncode == 125 and "is running: stop it first" in p.stderr
    mc("stop", "-t", "1", name, check=True)
    assert mc("snapshot", "restore", name, "v1", check=True).stdout == "v1\n"
    assert tree_digest(upper) == before
    st = os.stat(upper / "data.bin")
    assert (upper / "data.bin").read_bytes() == data
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1000, 1000)
    assert mc("diff", name, check=True).stdout == (
        "A /data.bin\nC /etc\nD /etc/profile\nC /home\nD /home/student\nA /srv\nA /srv/app\nA /srv/app/conf\n")


def test_snapshot_is_taken_frozen_and_the_container_thawed(mc, mc_root, running, monkeypatch):
    """While the copy runs, the container's cgroup is frozen; after it, it runs again."""
    from minicontainer import api
    from minicontainer.cgroups import open_cgroup
    from minicontainer.state import StateStore
    from minicontainer.storage import snapshots
    name, _ = running
    rec = StateStore(mc_root).find(name)
    cgroup = open_cgroup(rec.cgroup)
    seen = []
    real_copy = snapshots.copy_tree

    def copy_and_look(src, dst, **kw):
        seen.append(frozen_state(cgroup))
        return real_copy(src, dst, **kw)
    monkeypatch.setattr(snapshots, "copy_tree", copy_and_look)
    api.container_snapshots(name, mc_root).create("frozen")
    assert seen == [True] and frozen_state(cgroup) is False
    meta = api.container_snapshots(name, mc_root).get("frozen")
    assert meta["container_was_running"] is True
    assert mc("exec", name, "true").returncode == 0


def frozen_state(cgroup) -> bool:
    if hasattr(cgroup, "paths"):                                   # v1: freezer.state
        return (cgroup.paths["freezer"] / "freezer.state").read_text().strip() == "FROZEN"
    events = dict(line.split() for line in (cgroup.path / "cgroup.events").read_text().splitlines())
    return events.get("frozen") == "1"


def test_snapshot_ls_rm_and_errors(mc, running):
    name, _ = running
    mc("snapshot", "create", name, "a", check=True)
    mc("snapshot", "create", name, "b", check=True)
    lines = mc("snapshot", "ls", name, check=True).stdout.splitlines()
    assert lines[0].split() == ["TAG", "CREATED", "SIZE"] and [l.split()[0] for l in lines[1:]] == ["a", "b"]
    p = mc("snapshot", "create", name, "a")
    assert p.returncode == 125 and "exists" in p.stderr
    p = mc("snapshot", "restore", name, "nope")
    assert p.returncode == 125 and "no snapshot nope" in p.stderr
    p = mc("snapshot", "create", name, "../x")
    assert p.returncode == 125 and "invalid snapshot tag" in p.stderr
    assert mc("snapshot", "rm", name, "a", check=True).stdout == "a\n"
    assert [l.split()[0] for l in mc("snapshot", "ls", name, check=True).stdout.splitlines()[1:]] == ["b"]


def test_snapshots_go_with_the_container(mc, mc_root):
    name = f"snapgone-{secrets.token_hex(3)}"
    mc("run", "--name", name, "--net", "none", "busybox", "touch", "/x", check=True)
    mc("snapshot", "create", name, "s", check=True)
    from minicontainer.state import StateStore
    cdir = mc_root / "containers" / StateStore(mc_root).find(name).id
    assert (cdir / "snapshots/s/upper/x").is_file()
    mc("rm", name, check=True)
    assert not cdir.exists()
