"""`export NAME -o FILE`: the container's whole filesystem as a tar; `image import` takes it back."""
from __future__ import annotations

import os
import secrets
import tarfile

import pytest

pytestmark = pytest.mark.root


def test_export_is_the_merged_filesystem_and_imports_back(mc, tmp_path):
    name, image = f"exp-{secrets.token_hex(3)}", f"restored:{secrets.token_hex(3)}"
    mc("run", "--name", name, "--net", "none", "busybox", "sh", "-c",
       "echo kept > /root/note && chown 1000:1000 /root/note && rm /etc/profile && "
       "mkdir -p /opt/app && ln -s /opt/app/bin /opt/run", check=True)
    out = tmp_path / "backup.tar"
    try:
        assert mc("export", name, "-o", str(out), check=True).stdout == ""
        with tarfile.open(out) as tar:
            members = {m.name: m for m in tar}
            assert tar.extractfile("root/note").read() == b"kept\n"
        assert members["bin/busybox"].isreg() and members["bin/sh"].linkname == "/bin/busybox"
        assert (members["root/note"].uid, members["root/note"].gid) == (1000, 1000)
        assert members["opt/run"].issym() and members["opt/run"].linkname == "/opt/app/bin"
        assert "etc/profile" not in members                            # deleted: the whiteout honoured
        assert not [n for n in members if ".wh." in n]
        assert sorted(os.listdir(tmp_path)) == ["backup.tar"]          # no temporary left
        mc("image", "import", str(out), image, check=True)
        p = mc("run", "--rm", "--net", "none", image, "sh", "-c", "cat /root/note; ls /etc/profile")
        assert p.stdout == "kept\n" and "No such file" in p.stderr
    finally:
        mc("rm", name)
        mc("image", "rm", image)


def test_export_a_running_container(mc, tmp_path):
    name = f"exp-run-{secrets.token_hex(3)}"
    mc("run", "-d", "--name", name, "--net", "none", "busybox", "sh", "-c",
       "echo started > /started; exec sleep 60", check=True)
    try:
        for _ in range(50):
            if mc("exec", name, "cat", "/started").stdout == "started\n":
                break
        mc("export", name, "-o", str(tmp_path / "live.tar"), check=True)
        with tarfile.open(tmp_path / "live.tar") as tar:
            assert tar.extractfile("started").read() == b"started\n"
        assert mc("exec", name, "true").returncode == 0                # thawed again
    finally:
        mc("rm", "-f", name)


def test_export_errors_leave_nothing(mc, tmp_path):
    p = mc("export", "no-such-container", "-o", str(tmp_path / "x.tar"))
    assert p.returncode == 125 and "no such container" in p.stderr
    name = f"exp-err-{secrets.token_hex(3)}"
    mc("run", "--name", name, "--net", "none", "busybox", "true", check=True)
    try:
        p = mc("export", name, "-o", str(tmp_path / "no/such/dir/x.tar"))
        assert p.returncode == 125 and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
        assert os.listdir(tmp_path) == []
    finally:
        mc("rm", name)
