"""Volumes: -v HOST_DIR|NAME:CTR_DIR[:ro], --tmpfs, `volume create|ls|inspect|rm`."""
from __future__ import annotations

import json
import os
import secrets

import pytest

pytestmark = pytest.mark.root


def one_line_125(p):
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_named_volume_survives_rm_and_is_seen_by_the_next_container(mc):
    name = f"vol-{secrets.token_hex(3)}"
    mc("run", "--rm", "--net", "none", "-v", f"{name}:/data", "busybox",
       "sh", "-c", "echo persisted > /data/f && chmod 640 /data/f", check=True)
    out = mc("run", "--rm", "--net", "none", "-v", f"{name}:/srv/x", "busybox",
             "sh", "-c", "cat /srv/x/f; stat -c %a /srv/x/f", check=True).stdout
    assert out == "persisted\n640\n"
    assert name in mc("volume", "ls", check=True).stdout.split()
    info = json.loads(mc("volume", "inspect", name, check=True).stdout)[0]
    assert info["Name"] == name and info["Driver"] == "local"
    assert open(os.path.join(info["Mountpoint"], "f")).read() == "persisted\n"
    assert mc("volume", "rm", name, check=True).stdout == f"{name}\n"
    assert not os.path.exists(info["Mountpoint"])
    assert name not in mc("volume", "ls", check=True).stdout.split()


def test_read_only_volume_refuses_writes(mc, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "kept").write_text("kept\n")
    p = mc("run", "--rm", "--net", "none", "-v", f"{tmp_path}/ro:/data:ro", "busybox",
           "sh", "-c", "cat /data/kept; echo x > /data/new")
    assert p.returncode == 1 and p.stdout == "kept\n"
    assert "Read-only file system" in p.stderr
    assert sorted(os.listdir(tmp_path / "ro")) == ["kept"]
    p = mc("run", "--rm", "--net", "none", "-v", f"{tmp_path}/ro:/data:ro", "busybox",
           "grep", " /data ", "/proc/mounts", check=True)
    assert " ro," in p.stdout and "nodev" in p.stdout


def test_host_directory_is_shared_both_ways(mc, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    out = mc("run", "--rm", "--net", "none", "-v", f"{tmp_path}:/work", "busybox",
             "sh", "-c", "cat /work/in.txt; echo from container > /work/out.txt", check=True).stdout
    assert out == "from host\n"
    assert (tmp_path / "out.txt").read_text() == "from container\n"


def test_missing_host_directory_is_created(mc, tmp_path):
    mc("run", "--rm", "--net", "none", "-v", f"{tmp_path}/new/dir:/d", "busybox", "touch", "/d/x", check=True)
    assert (tmp_path / "new" / "dir" / "x").is_file()


def test_volume_in_use_cannot_be_removed(mc):
    name = f"busy-{secrets.token_hex(3)}"
    cname = f"user-{secrets.token_hex(3)}"
    mc("run", "--name", cname, "--net", "none", "-v", f"{name}:/d", "busybox", "true", check=True)
    try:
        p = mc("volume", "rm", name)
        one_line_125(p)
        assert f"used by container(s) {cname}" in p.stderr
    finally:
        mc("rm", cname, check=True)
    mc("volume", "rm", name, check=True)


def test_tmpfs(mc):
    out = mc("run", "--rm", "--net", "none", "--tmpfs", "/scratch:size=1m,mode=1777", "busybox",
             "sh", "-c", "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; "
             "dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; "
             "stat -c %s /scratch/big", check=True).stdout
    mount_line, mode, size = out.splitlines()
    assert mount_line.startswith("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec")
    assert "size=1024k" in mount_line and mode == "1777"
    assert int(size) == 1024 * 1024                              # the size limit holds


def test_symlink_in_the_image_cannot_redirect_a_mount_to_the_host(mc, mc_root, busybox_tar):
    """An image with /evil -> /tmp/<x> and /up -> ../../../../tmp/<y>: the mounts land in
    the container's own /tmp, and nothing is created or mounted on the host."""
    host_x = f"/tmp/mc-escape-{secrets.token_hex(4)}"
    host_y = f"/tmp/mc-escape-{secrets.token_hex(4)}"
    image = f"evil-links:{secrets.token_hex(3)}"
    maker = f"maker-{secrets.token_hex(3)}"
    mc("image", "import", str(busybox_tar), "evil-base:1", check=True)
    mc("run", "--name", maker, "--net", "none", "evil-base:1", "sh", "-c",
       f"ln -s {host_x} /evil && ln -s ../../../..{host_y} /up", check=True)
    try:
        mc("commit", maker, image, check=True)
        out = mc("run", "--rm", "--net", "none", "-v", "escvol:/evil/sub", "-v", "escvol:/up/sub2",
                 image, "sh", "-c", f"grep -c ' {host_x}/sub ' /proc/mounts; "
                                    f"grep -c ' {host_y}/sub2 ' /proc/mounts", check=True).stdout
        assert out == "1\n1\n"                                  # mounted inside the root
        assert not os.path.exists(host_x) and not os.path.exists(host_y)
    finally:
        mc("rm", maker)
        mc("image", "rm", image)
        mc("image", "rm", "evil-base:1")
        mc("volume", "rm", "escvol")


@pytest.mark.parametrize("args,message", [
    (["-v", "relative/dir:/data"], "neither an absolute host path nor a volume name"),
    (["-v", "/tmp:data"], "must be absolute"),
    (["-v", "/tmp:/data:rx"], "must be ro or rw"),
    (["-v", "/data"], "anonymous volumes are not supported"),
    (["-v", "/tmp:/"], "cannot mount over"),
    (["-v", "a:/d", "-v", "b:/d"], "two mounts for /d"),
    (["--tmpfs", "/t:size=huge"], "unknown option"),
])
def test_bad_mount_options_fail_before_anything_exists(mc, mc_root, args, message):
    before = sorted(os.listdir(mc_root / "containers")) if (mc_root / "containers").exists() else []
    p = mc("run", "--rm", *args, "busybox", "true")
    one_line_125(p)
    assert message in p.stderr
    after = sorted(os.listdir(mc_root / "containers")) if (mc_root / "containers").exists() else []
    assert after == before


def test_volume_create_is_idempotent_and_names_are_checked(mc):
    name = f"made-{secrets.token_hex(3)}"
    assert mc("volume", "create", name, check=True).stdout == f"{name}\n"
    assert mc("volume", "create", name, check=True).stdout == f"{name}\n"
    one_line_125(mc("volume", "create", "bad/name"))
    one_line_125(mc("volume", "rm", "no-such-volume"))
    mc("volume", "rm", name, check=True)
