"""Images from recipes: an app with only what it needs, two versions side by side, Debian."""
from __future__ import annotations

import os
import re
import subprocess
import tarfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.root
RECIPES = REPO / "rootfs-builder" / "recipes"


@pytest.fixture(scope="module")
def builder():
    from minicontainer.builder import load_builder
    return load_builder()


def members(tar_path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar_path) as tar:
        return {m.name: m for m in tar}


def elf_needs(program: str) -> set[str]:
    """The loader and DT_NEEDED names, read by binutils (an independent check of elf.py)."""
    out = subprocess.run(["readelf", "-ldW", program], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out))
    loader = re.findall(r"Requesting program interpreter: ([^]]+)\]", out)
    return needed | {os.path.basename(p) for p in loader}


@pytest.mark.skipif(not os.path.exists("/usr/bin/hello"), reason="needs GNU hello: apt-get install hello")
def test_app_image_runs_its_app_and_holds_only_what_it_needs(mc, builder, busybox_tar, tmp_path):
    result = builder.build(RECIPES / "hello-app.toml", tmp_path / "hello.tar")
    assert result.config == {"cmd": ["/usr/bin/hello"]}
    extra = {name: m for name, m in members(result.path).items() if name not in members(busybox_tar)}
    files = {name for name, m in extra.items() if m.isreg()}
    libraries = {os.path.basename(n) for n in files if ".so" in n}
    assert libraries == elf_needs("/usr/bin/hello") == {"ld-linux-x86-64.so.2", "libc.so.6"}
    assert files == {"usr/bin/hello", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"}
    assert mc("image", "build", "hello-app", check=True).stdout.startswith("hello-app:latest ")
    try:
        p = mc("run", "--rm", "--net", "none", "--read-only", "hello-app", check=True)   # no command:
        assert p.stdout == "Hello, world!\n"                                            # the image's
        assert mc("run", "--rm", "--net", "none", "hello-app", "hello", "-g", "hi",
                  check=True).stdout == "hi\n"
    finally:
        mc("image", "rm", "hello-app")


def test_script_app_brings_its_interpreter_and_its_closure(builder, tmp_path):
    result = builder.build(RECIPES / "greeter-1.toml", tmp_path / "g1.tar")
    names = members(result.path)
    assert names["bin/bash"].isreg() and names["usr/local/bin/greeter"].mode == 0o755
    libraries = {os.path.basename(n) for n, m in names.items() if ".so" in n and m.isreg()}
    assert libraries == elf_needs("/bin/bash")                  # libtinfo, libc, the loader
    assert result.config == {"cmd": ["/usr/local/bin/greeter"]}


def test_two_versions_side_by_side(mc, mc_root):
    for recipe in ("greeter-1", "greeter-2"):
        mc("image", "build", recipe, check=True)
    try:
        mc("run", "-d", "--name", "greeter-old", "--net", "none", "greeter:1.0", "greeter", "serve", check=True)
        mc("run", "-d", "--name", "greeter-new", "--net", "none", "greeter:2.0", "greeter", "serve", check=True)
        from minicontainer.api import list_containers
        running = {r.name for r in list_containers(mc_root) if r.status == "running"}
        assert {"greeter-old", "greeter-new"} <= running                     # at the same time
        assert mc("exec", "greeter-old", "greeter", "Ada", check=True).stdout == "greeter 1.0: Hello, Ada!\n"
        assert mc("exec", "greeter-new", "greeter", "Ada", check=True).stdout == "GREETER 2.0: HI, ADA!\n"
        assert "SHOUT" not in mc("exec", "greeter-old", "cat", "/etc/greeter.conf", check=True).stdout
        assert "SHOUT=yes" in mc("exec", "greeter-new", "cat", "/etc/greeter.conf", check=True).stdout
        assert mc("run", "--rm", "--net", "none", "greeter:1.0", check=True).stdout == "greeter 1.0: Hello, world!\n"
    finally:
        mc("rm", "-f", "greeter-old", "greeter-new")
        mc("image", "rm", "greeter:1.0", "greeter:2.0")


@pytest.mark.parametrize("text,message", [
    ('[image]\nname = "d"\n[debootstrap]\nsuite = "bookworm"\n[busybox]\nbinary = "/bin/busybox"\n',
     "cannot be combined with [debootstrap]"),
    ('[image]\nname = "d"\n[debootstrap]\nsuite = "bookworm"\nvariant = "huge"\n', "variant: 'huge'"),
    ('[image]\nname = "d"\n[debootstrap]\nsuite = "bookworm"\nmirror = "ftp://x"\n', "mirror"),
    ('[image]\nname = "d"\ncommand = "hello"\n', "command: must be a list of strings"),
    ('[image]\nname = "d"\nenv = ["NOEQUALS"]\n', "must be KEY=VALUE"),
    ('[image]\nname = "d"\n[app]\nbinary = "script.sh"\n', "path: is required"),
])
def test_recipe_errors(builder, tmp_path, text, message):
    recipe = tmp_path / "r.toml"
    recipe.write_text(text)
    with pytest.raises(builder.RecipeError) as err:
        builder.build(recipe, tmp_path / "out.tar")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_script_whose_interpreter_is_missing(builder, tmp_path):
    (tmp_path / "app.sh").write_text("#!/no/such/interpreter\necho hi\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'base = "{RECIPES / "busybox.toml"}"\n[image]\nname = "s"\n'
                      '[app]\nbinary = "app.sh"\npath = "/app"\n')
    with pytest.raises(builder.RecipeError, match="/no/such/interpreter does not exist"):
        builder.build(recipe, tmp_path / "out.tar")


def test_debian_mirror_is_the_hosts(builder):
    debian = builder._sibling("debian")
    mirror = debian.host_mirror("bookworm")
    assert re.match(r"https?://", mirror)


@pytest.mark.slow
def test_debian_base_image(mc):
    """mmdebstrap (or debootstrap) from the host's apt mirror; cached in build/cache/, so
    only the first run downloads (~1 minute)."""
    p = mc("image", "build", "debian", timeout=1800)
    if p.returncode != 0 and "reachable" in p.stderr:
        pytest.skip(f"the Debian mirror cannot be reached from here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("debian:bookworm ")
    try:
        out = mc("run", "--rm", "--net", "none", "debian:bookworm", "sh", "-c",
                 "cat /etc/debian_version; dpkg-query -W -f '${Package}\\n' | grep -cx -e bash -e apt -e dpkg",
                 check=True).stdout.split()
        assert out[0].startswith("12.") and out[1] == "3"
        assert mc("run", "--rm", "-i", "--net", "none", "debian:bookworm", input="echo $BASH_VERSION\n",
                  check=True).stdout.startswith("5.")                # the image's command: bash
    finally:
        mc("image", "rm", "debian:bookworm")
