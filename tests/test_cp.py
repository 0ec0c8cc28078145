"""`cp` between the host and a container (issue 15), by Docker's rules — and as an attacker:
a container that plants symlinks, or swaps a directory for a symlink in a tight loop while
cp runs (CVE-2018-15664), must never make cp read or write a host path."""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def box(mc):
    """box(*create_args) → a created container's name; removed after the test."""
    names = []

    def make(*args, run=False):
        name = f"cp-{os.getpid()}-{len(names)}"
        names.append(name)
        verb = ["run", "-d"] if run else ["create"]
        mc(*verb, "--net", "none", "--name", name, "busybox", *(args or ["sleep", "300"]), check=True)
        return name
    yield make
    for name in names:
        mc("rm", "-f", name)


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_copy_in_and_out_by_dockers_rules(mc, box, tmp_path, running):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("hello\n")
    (src / "sub" / "b").write_text("deep\n")
    os.symlink("a", src / "lnk")
    os.chown(src / "a", 1234, 1234)
    name = box(run=running)
    mc("cp", str(src / "a"), f"{name}:/f1", check=True)              # file → missing name: that name
    mc("cp", str(src / "a"), f"{name}:/tmp", check=True)             # file → a dir: into it
    mc("cp", str(src), f"{name}:/newdir", check=True)                # dir → missing: created, contents
    mc("cp", str(src), f"{name}:/tmp", check=True)                   # dir → a dir: the dir itself inside
    mc("cp", f"{src}/.", f"{name}:/tmp", check=True)                 # dir/. → its contents
    mc("cp", "-a", str(src / "a"), f"{name}:/kept", check=True)
    out = tmp_path / "out"
    out.mkdir()
    for path in ("/f1", "/tmp/a", "/newdir/a", "/newdir/sub/b", "/tmp/src/sub/b", "/tmp/sub/b", "/kept"):
        mc("cp", f"{name}:{path}", str(out / "x"), check=True)
        assert (out / "x").read_text() in ("hello\n", "deep\n"), path
        (out / "x").unlink()
    mc("cp", f"{name}:/newdir", str(out / "tree"), check=True)
    assert (out / "tree" / "sub" / "b").read_text() == "deep\n"
    assert os.readlink(out / "tree" / "lnk") == "a"                  # a link is copied as a link
    st = os.stat(out / "tree" / "a")
    assert (st.st_uid, st.st_gid) == (0, 0)                          # out: the caller's (root here)
    mc("cp", "-a", f"{name}:/kept", str(out / "kept"), check=True)
    assert os.stat(out / "kept").st_uid == 1234                      # -a keeps the source's owner
    if running:
        assert mc("exec", name, "stat", "-c", "%u %g", "/f1", check=True).stdout == "0 0\n"
        assert mc("exec", name, "stat", "-c", "%u", "/kept", check=True).stdout == "1234\n"
    # Docker's refusals
    for args, words in (([str(src), f"{name}:/f1"], "directory onto a file"),
                        ([str(src / "a"), f"{name}:/missing/"], "must exist"),
                        ([str(src / "a"), f"{name}:/no/such/dir/f"], "no such file"),
                        ([f"{name}:/nope", str(out)], "no such file"),
                        ([str(src), str(out)], "exactly one"),
                        ([f"{name}:/f1", "-"], "not supported")):
        p = mc("cp", *args)
        assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_cp_to_a_missing_container_leaves_nothing(mc, mc_root, tmp_path):
    before = sorted(os.listdir(mc_root / "containers"))
    (tmp_path / "f").write_text("x")
    p = mc("cp", str(tmp_path / "f"), "no-such-container:/f")
    assert p.returncode == 125 and "no such container" in p.stderr and len(p.stderr.splitlines()) == 1
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_stopped_copy_mounts_nothing_on_the_host(mc, mc_root, box, tmp_path):
    name = box()
    (tmp_path / "f").write_text("x")
    mc("cp", str(tmp_path / "f"), f"{name}:/f", check=True)
    assert not [line for line in open("/proc/self/mountinfo") if str(mc_root) in line]
    mc("start", name, check=True)                    # its overlay is free again
    assert mc("exec", name, "cat", "/f", check=True).stdout == "x"


def test_planted_symlinks_stay_inside_the_container(mc, box, tmp_path):
    """Absolute and ../ links resolve inside the container's root, as they would for it."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret").write_text("HOST SECRET\n")
    name = box("sh", "-c", f"mkdir -p /w; ln -s {host} /w/abs; ln -s ../../../../../../{host} /w/rel; "
                           "ln -s / /w/root; sleep 300", run=True)
    time.sleep(0.5)
    for link in ("abs", "rel"):
        p = mc("cp", f"{name}:/w/{link}/secret", str(tmp_path / "got"))
        assert p.returncode == 125 and not (tmp_path / "got").exists()
        p = mc("cp", str(tmp_path / "hostdir" / "secret"), f"{name}:/w/{link}/planted")
        assert p.returncode == 125 and not (host / "planted").exists()
    # -L on a link to / copies the *container's* /etc/passwd, not the host's
    mc("cp", "-L", f"{name}:/w/root/etc/passwd", str(tmp_path / "passwd"), check=True)
    assert (tmp_path / "passwd").read_text() == mc("exec", name, "cat", "/etc/passwd", check=True).stdout
    mc("cp", str(tmp_path / "hostdir" / "secret"), f"{name}:/w/root/tmp/in", check=True)
    assert mc("exec", name, "cat", "/tmp/in", check=True).stdout == "HOST SECRET\n"


def test_symlink_swapped_in_a_tight_loop_never_reaches_the_host(mc, mc_root, box, tmp_path):
    """CVE-2018-15664: /w/d is a directory one moment and a link to a host directory the
    next, thousands of times a second, while cp copies /w/d/f out and /w/d/planted in."""
    from minicontainer.api import copy_files
    from minicontainer.errors import MinicontainerError
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("HOST SECRET\n")
    (host / "sub").mkdir()
    (host / "sub" / "g").write_text("HOST SECRET\n")
    name = box("sh", "-c", "mkdir -p /w/d/sub; echo inside > /w/d/f; echo inside > /w/d/sub/g; "
                           f"while :; do mv /w/d /w/d.real; ln -s {host} /w/d; rm /w/d; mv /w/d.real /w/d; done",
               run=True)
    time.sleep(0.5)
    (tmp_path / "payload").write_text("PLANTED\n")
    outcomes = {"ok": 0, "refused": 0}
    for i in range(300):
        out = tmp_path / f"out{i}"
        for src, dest in ((f"{name}:/w/d/f", str(out)), (f"{name}:/w/d", str(out) + ".tree"),
                          (str(tmp_path / "payload"), f"{name}:/w/d/planted"),
                          (str(tmp_path / "payload"), f"{name}:/w/d/sub/")):
            try:
                copy_files(src, dest, root=mc_root)
                outcomes["ok"] += 1
            except MinicontainerError:
                outcomes["refused"] += 1
        for path in (out, out.parent / (out.name + ".tree")):
            if path.is_symlink():                    # the container's link, copied as a link
                outcomes["links"] = outcomes.get("links", 0) + 1
                continue
            if path.is_file():
                assert path.read_text() == "inside\n"
            for leaf in ("f", "sub/g") if path.is_dir() else ():
                if (path / leaf).is_file() and not (path / leaf).is_symlink():
                    assert (path / leaf).read_text() == "inside\n"
        assert sorted(os.listdir(host)) == ["f", "sub"] and os.listdir(host / "sub") == ["g"]
    assert outcomes["ok"] > 0                        # the copies did happen…
    assert (host / "f").read_text() == "HOST SECRET\n"
    print(outcomes)
