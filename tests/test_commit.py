"""`commit`: the upper dir becomes a layer; images are stacks of layers shared on disk."""
from __future__ import annotations

import json
import os
import secrets

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def base(mc, busybox_tar):
    """A private copy of busybox (the session's busybox stays a plain rootfs/ image)."""
    ref = f"commitbase:{secrets.token_hex(3)}"
    mc("image", "import", str(busybox_tar), ref, check=True)
    yield ref
    mc("image", "rm", ref)


def store(mc_root):
    from minicontainer.api import image_store
    return image_store(mc_root)


def test_commit_then_run_sees_the_change(mc, mc_root, base):
    name, image = f"c-{secrets.token_hex(3)}", f"committed:{secrets.token_hex(3)}"
    mc("run", "--name", name, "--net", "none", base, "sh", "-c",
       "echo committed > /etc/motd && chmod 600 /etc/motd && rm /etc/profile", check=True)
    try:
        out = mc("commit", name, image, check=True).stdout
        assert out.startswith(f"{image} sha256:")
        p = mc("run", "--rm", "--net", "none", image, "sh", "-c",
               "cat /etc/motd; stat -c %a /etc/motd; ls /etc/profile")
        assert p.stdout == "committed\n600\n" and "No such file" in p.stderr
        new, old = store(mc_root).get(image), store(mc_root).get(base)
        assert len(new.layers) == 2 and new.layers[0] == old.layers[0]      # base shared, by id
        assert new.layer_dirs[0] == old.layer_dirs[0]                         # …and on disk once
        assert not old.rootfs.exists()                                        # moved into layers/
        top = new.layer_dirs[1]
        assert sorted(os.listdir(top / "etc")) == ["motd", "profile"]         # profile: a whiteout
        assert os.stat(top / "etc/profile", follow_symlinks=False).st_rdev == 0
    finally:
        mc("rm", name)
        mc("image", "rm", image)


def test_commit_a_running_container_and_stack_three_layers(mc, mc_root, base):
    first, second = f"run-{secrets.token_hex(3)}", f"run-{secrets.token_hex(3)}"
    one, two = f"stack:{secrets.token_hex(3)}", f"stack:{secrets.token_hex(3)}"
    mc("run", "-d", "--name", first, "--net", "none", base, "sleep", "60", check=True)
    try:
        mc("exec", first, "sh", "-c", "echo 1 > /one", check=True)
        mc("commit", first, one, check=True)                          # frozen while copied
        from minicontainer.api import list_containers            # thawed: still running
        assert next(r for r in list_containers(mc_root) if r.name == first).status == "running"
        mc("run", "--name", second, "--net", "none", one, "sh", "-c", "echo 2 > /two; rm /one", check=True)
        mc("commit", second, two, check=True)
        images = store(mc_root)
        assert len(images.get(two).layers) == 3
        assert images.get(two).layers[:2] == images.get(one).layers
        p = mc("run", "--rm", "--net", "none", two, "sh", "-c", "cat /two; ls /one")
        assert p.stdout == "2\n" and "No such file" in p.stderr
        assert mc("run", "--rm", "--net", "none", one, "cat", "/one", check=True).stdout == "1\n"
    finally:
        mc("rm", "-f", first, second)
        mc("image", "rm", two)
        mc("image", "rm", one)


def test_layers_are_removed_with_the_last_image_that_lists_them(mc, mc_root, busybox_tar):
    base, image, name = f"gcbase:{secrets.token_hex(3)}", f"gc:{secrets.token_hex(3)}", f"gc-{secrets.token_hex(3)}"
    mc("image", "import", str(busybox_tar), base, check=True)
    mc("run", "--name", name, "--net", "none", base, "touch", "/x", check=True)
    mc("commit", name, image, check=True)
    bottom, top = store(mc_root).get(image).layer_dirs
    mc("rm", name, check=True)
    p = mc("image", "rm", base)                                 # its layer stays: gc:… lists it
    assert p.returncode == 0 and bottom.is_dir()
    mc("run", "--name", name, "--net", "none", image, "true", check=True)
    p = mc("image", "rm", image)
    assert p.returncode == 125 and f"used by container(s) {name}" in p.stderr
    mc("rm", name, check=True)
    mc("image", "rm", image, check=True)
    assert not bottom.parent.exists() and not top.parent.exists()


def test_system_df_counts_shared_layers_once(mc, mc_root, base):
    name, image = f"df-{secrets.token_hex(3)}", f"df:{secrets.token_hex(3)}"
    before = json.loads(mc("system", "df", "--format", "json", check=True).stdout)[0]["size"]
    mc("run", "--name", name, "--net", "none", base, "sh", "-c", "head -c 5000 /dev/zero > /blob", check=True)
    try:
        mc("commit", name, image, check=True)
        rows = {r["type"]: r for r in json.loads(mc("system", "df", "--format", "json", check=True).stdout)}
        assert rows["Images"]["size"] == before + 5000           # the base is not counted twice
        assert "Local Volumes" in mc("system", "df", check=True).stdout
    finally:
        mc("rm", name)
        mc("image", "rm", image)


def test_commit_errors(mc, base):
    p = mc("commit", "no-such-container", "x:1")
    assert p.returncode == 125 and "no such container" in p.stderr
    name = f"bad-{secrets.token_hex(3)}"
    mc("run", "--name", name, "--net", "none", base, "true", check=True)
    try:
        p = mc("commit", name, "Bad Name")
        assert p.returncode == 125 and "invalid image" in p.stderr
    finally:
        mc("rm", name)
