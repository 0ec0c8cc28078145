"""rootfs-builder: recipes → reproducible root filesystem tarballs.

Real builds from the host's static busybox, real tar extraction and a real chroot(2)
into the result (chroot mounts nothing, so it needs no namespace of its own).
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from minicontainer.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BUILDER = REPO / "rootfs-builder" / "build.py"
BUSYBOX_RECIPE = REPO / "rootfs-builder" / "recipes" / "busybox.toml"
HELLO_RECIPE = REPO / "rootfs-builder" / "recipes" / "hello-app.toml"
LAB_APPLETS = ["wc", "sort", "cut", "paste", "tr", "diff"]
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def needs_root(test):
    """chroot(2) needs CAP_SYS_CHROOT; the suite runs as root, a student's laptop may not."""
    skip = pytest.mark.skipif(os.geteuid() != 0, reason="chroot(2) needs root")
    return pytest.mark.root(skip(test))


def load_builder():
    """Load build.py by file path, exactly as `minicontainer image build` does."""
    spec = importlib.util.spec_from_file_location("rootfs_builder", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return load_builder()


@pytest.fixture(scope="module")
def busybox_tar(builder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("image") / "busybox.tar"
    return builder.build(BUSYBOX_RECIPE, out).path


@pytest.fixture(scope="module")
def members(busybox_tar) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(busybox_tar) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def write_recipe(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def extract(tar: Path, dest: Path) -> Path:
    """Unpack with GNU tar, keeping modes and numeric owners (as root)."""
    dest.mkdir()
    subprocess.run(["tar", "-xpf", str(tar), "-C", str(dest), "--numeric-owner"], check=True)
    return dest


# ---- reproducibility -----------------------------------------------------------------------

def test_same_recipe_builds_the_same_bytes(builder, tmp_path):
    first = builder.build(BUSYBOX_RECIPE, tmp_path / "a.tar")
    second = builder.build(BUSYBOX_RECIPE, tmp_path / "b.tar")
    assert first.sha256 == second.sha256
    assert first.sha256 == hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    assert first.digest == f"sha256:{first.sha256}"
    assert (first.name, first.tag) == ("busybox", "latest")
    assert first.size == (tmp_path / "a.tar").stat().st_size
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "b.tar"]     # no temporary left over


def test_gzip_output_is_reproducible_too(builder, tmp_path):
    first = builder.build(BUSYBOX_RECIPE, tmp_path / "a.tar.gz")
    second = builder.build(BUSYBOX_RECIPE, tmp_path / "b.tar.gz")
    assert first.sha256 == second.sha256
    raw = first.path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0"                                 # gzip header mtime 0
    with tarfile.open(first.path) as tar:
        assert tar.getmember("bin/busybox").isreg()
    assert gzip.decompress(raw)[:100].rstrip(b"\0") == b"bin/"      # first member: bin/


def test_source_date_epoch_sets_every_mtime(builder, tmp_path, monkeypatch):
    default = builder.build(BUSYBOX_RECIPE, tmp_path / "default.tar")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    epoch = builder.build(BUSYBOX_RECIPE, tmp_path / "epoch.tar")
    assert epoch.sha256 != default.sha256
    with tarfile.open(epoch.path) as tar:
        assert {m.mtime for m in tar} == {0}


def test_bad_source_date_epoch_is_refused(builder, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(builder.RecipeError, match="SOURCE_DATE_EPOCH"):
        builder.build(BUSYBOX_RECIPE, tmp_path / "x.tar")
    assert not list(tmp_path.iterdir())


def test_headers_are_normalised(builder, busybox_tar):
    with tarfile.open(busybox_tar) as tar:
        names = tar.getnames()
        infos = tar.getmembers()
    assert names == sorted(names)
    assert all(not n.startswith(("/", "./")) for n in names)
    assert {m.mtime for m in infos} == {builder.DEFAULT_MTIME}
    assert {(m.uname, m.gname) for m in infos} == {("", "")}
    assert {m.pax_headers.get("atime") or m.pax_headers.get("ctime") for m in infos} == {None}
    assert {(m.uid, m.gid) for m in infos} == {(0, 0), (1000, 1000)}  # 1000: /home/student


# ---- contents ------------------------------------------------------------------------------

@pytest.mark.parametrize("applet", LAB_APPLETS + ["sh", "ls", "cat", "echo", "hostname",
                                                  "ps", "mount", "ip", "ping", "httpd"])
def test_applets_are_symlinks_to_busybox(members, applet):
    found = [m for name, m in members.items() if name.rsplit("/", 1)[-1] == applet]
    assert len(found) == 1, f"{applet}: {[m.name for m in found]}"
    assert found[0].issym() and found[0].linkname == "/bin/busybox"


def test_busybox_binary_is_an_executable_file(members):
    busybox = members["bin/busybox"]
    assert busybox.isreg() and busybox.mode == 0o755
    assert busybox.size == os.path.getsize("/bin/busybox")
    assert "linuxrc" not in members                                 # excluded by the recipe


@pytest.mark.parametrize("path, mode", [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700),
                                        ("proc", 0o555), ("sys", 0o555), ("dev", 0o755),
                                        ("run", 0o755), ("home/student", 0o755)])
def test_directories_and_modes(members, path, mode):
    assert members[path].isdir()
    assert members[path].mode == mode


@pytest.mark.parametrize("mountpoint", ["proc", "sys", "dev"])
def test_mount_points_are_empty(members, mountpoint):
    assert not [n for n in members if n.startswith(mountpoint + "/")]


def test_home_belongs_to_student(members):
    assert (members["home/student"].uid, members["home/student"].gid) == (1000, 1000)


def test_etc_files(busybox_tar):
    with tarfile.open(busybox_tar) as tar:
        read = lambda name: tar.extractfile(name).read().decode()  # noqa: E731
        passwd, group, hosts = read("etc/passwd"), read("etc/group"), read("etc/hosts")
        os_release = read("usr/lib/os-release")
        assert tar.getmember("etc/os-release").linkname == "../usr/lib/os-release"
        assert tar.getmember("etc/passwd").mode == 0o644
    assert "root:x:0:0:root:/root:/bin/sh" in passwd.splitlines()
    assert any(line.startswith("student:x:1000:1000:") for line in passwd.splitlines())
    assert any(line.startswith("nobody:x:65534:65534:") for line in passwd.splitlines())
    assert "student:x:1000:" in group.splitlines()
    assert "localhost" in hosts.split()
    version = subprocess.run(["/bin/busybox"], capture_output=True, text=True).stdout.split()[1]
    assert f"BUSYBOX_VERSION={version[1:]}" in os_release.splitlines()
    assert "${" not in os_release


@needs_root
def test_busybox_runs_in_a_chroot_of_the_extracted_tar(busybox_tar, tmp_path):
    root = extract(busybox_tar, tmp_path / "root")
    out = subprocess.run([CHROOT, str(root), "/bin/sh", "-c",
                          "echo hi | wc -c; printf 'b\\na\\n' | sort | paste -s -d,; "
                          "echo a:b | cut -d: -f2 | tr a-z A-Z; id -un student; "
                          "diff /etc/passwd /etc/passwd && echo same"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "a,b", "B", "student", "same"]
    assert oct((root / "tmp").stat().st_mode & 0o7777) == oct(0o1777)


def test_layered_recipe_replaces_base_entries_and_copies_files(builder, tmp_path):
    (tmp_path / "motd").write_text("welcome\n")
    (tmp_path / "tool").write_text("#!/bin/sh\necho tool\n")
    (tmp_path / "tool").chmod(0o775)
    recipe = write_recipe(tmp_path, f'base = "{BUSYBOX_RECIPE}"\n[image]\nname = "layer"\n'
                          '[[text]]\npath = "/etc/hosts"\ncontent = "10.0.0.1 db\\n"\n'
                          '[[files]]\npath = "/etc/motd"\nsrc = "motd"\n'
                          '[[files]]\npath = "/usr/local/bin/tool"\nsrc = "tool"\n')
    result = builder.build(recipe, tmp_path / "layer.tar")
    with tarfile.open(result.path) as tar:
        assert tar.extractfile("etc/hosts").read() == b"10.0.0.1 db\n"        # replaced
        assert tar.extractfile("etc/motd").read() == b"welcome\n"             # src: recipe dir
        assert tar.getmember("etc/motd").mode == 0o644                         # not executable
        assert tar.getmember("usr/local/bin/tool").mode == 0o755               # executable
        assert tar.getmember("usr/local").isdir()                              # parent added
        assert tar.getmember("usr/bin/wc").issym()                             # from the base
    assert result.name == "layer"


# ---- bad recipes ---------------------------------------------------------------------------

GOOD_IMAGE = '[image]\nname = "t"\n'


@pytest.mark.parametrize("text, message", [
    ("[image]\nname = \n", "not valid TOML"),
    ('[busybox]\nbinary = "/bin/busybox"\n', "image: is required"),
    ('[imag]\nname = "t"\n', "imag: unknown section"),
    ('base = "nope.toml"\n' + '[image]\nname = "t"\n', "nope.toml: no such recipe file"),
    ('[image]\nname = "Bad Name"\n', "image.name: 'Bad Name' is not a valid image name"),
    (GOOD_IMAGE + 'colour = "blue"\n', "image.colour: unknown key"),
    (GOOD_IMAGE + '[[dirs]]\npath = "/tmp"\nmod = "1777"\n', "dirs[0].mod: unknown key"),
    (GOOD_IMAGE + '[[dirs]]\npath = "/tmp"\nmode = 1777\n', 'octal string like "0755"'),
    (GOOD_IMAGE + '[[dirs]]\npath = "/tmp"\nmode = "999"\n', 'octal string like "0755"'),
    (GOOD_IMAGE + '[[dirs]]\npath = "tmp"\n', "absolute, normalised path"),
    (GOOD_IMAGE + '[[dirs]]\npath = "/a/../etc"\n', "absolute, normalised path"),
    (GOOD_IMAGE + '[[dirs]]\npath = "/home"\nuid = -1\n', "dirs[0].uid: must be a number"),
    (GOOD_IMAGE + '[[text]]\npath = "/etc/x"\n', "text[0].content: is required"),
    (GOOD_IMAGE + '[[dirs]]\npath = "/x"\n[[dirs]]\npath = "/x"\n', "/x is declared twice"),
    (GOOD_IMAGE + '[[text]]\npath = "/a"\ncontent = "x"\n[[text]]\npath = "/a/b"\n'
     'content = "y"\n', "/a is a file, not a directory"),
    (GOOD_IMAGE + '[[text]]\npath = "/a"\ncontent = "${nope}"\nexpand = true\n',
     "unknown variable ${nope}"),
    (GOOD_IMAGE + '[[files]]\npath = "/x"\nsrc = "/no/such/file"\n', "/no/such/file"),
    (GOOD_IMAGE + '[busybox]\nbinary = "/no/such/busybox"\n', "apt-get install busybox-static"),
    (GOOD_IMAGE + '[busybox]\nbinary = "/bin/busybox"\nrequire = ["nosuchapplet"]\n',
     "no applet nosuchapplet"),
    (GOOD_IMAGE + '[busybox]\nbinary = "/bin/busybox"\nlinks = ["sh", "nosuch"]\n',
     "no applet nosuch"),
    (GOOD_IMAGE + '[debootstrap]\nsuite = "bookworm"\n[[dirs]]\npath = "/x"\n',
     "cannot be combined with [debootstrap]"),
    ('base = "loop.toml"\n' + GOOD_IMAGE, "loop"),
], ids=lambda v: v[:40] if isinstance(v, str) else v)
def test_bad_recipe_gives_one_clear_line(builder, tmp_path, text, message):
    recipe = write_recipe(tmp_path, text, "loop.toml")
    out = tmp_path / "out" / "x.tar"
    with pytest.raises(builder.RecipeError) as err:
        builder.build(recipe, out)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def test_dynamic_busybox_is_refused_with_the_package_to_install(builder, tmp_path):
    dynamic = shutil.which("ls")                       # any dynamically linked program
    recipe = write_recipe(tmp_path, GOOD_IMAGE + f'[busybox]\nbinary = "{dynamic}"\n')
    with pytest.raises(builder.RecipeError, match="dynamically linked.*apt-get install "
                                                  "busybox-static"):
        builder.build(recipe, tmp_path / "x.tar")


def test_wrong_output_suffix_is_refused(builder, tmp_path):
    with pytest.raises(builder.RecipeError, match=r"\.tar or \.tar\.gz"):
        builder.build(BUSYBOX_RECIPE, tmp_path / "x.zip")


def test_default_output_is_build_name_tag(builder):
    recipe = builder.load_recipe(BUSYBOX_RECIPE)
    assert builder.default_output(recipe) == REPO / "build" / "busybox-latest.tar"


# ---- command line --------------------------------------------------------------------------

def test_cli_prints_digest_and_path(tmp_path):
    out = tmp_path / "bb.tar"
    run = subprocess.run([sys.executable, str(BUILDER), str(BUSYBOX_RECIPE), "-o", str(out)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert run.stdout == f"sha256:{digest}  bb.tar\n"


def test_cli_list_shows_the_plan_and_writes_nothing(tmp_path):
    run = subprocess.run([sys.executable, str(BUILDER), str(BUSYBOX_RECIPE), "--list"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "drwxrwxrwt 0/0  /tmp" in run.stdout.splitlines()
    assert "lrwxrwxrwx 0/0  /usr/bin/wc -> /bin/busybox" in run.stdout.splitlines()
    assert not list(tmp_path.iterdir())


def test_cli_bad_recipe_exits_125_with_one_line(tmp_path):
    recipe = write_recipe(tmp_path, GOOD_IMAGE + "oops = 1\n")
    run = subprocess.run([sys.executable, str(BUILDER), str(recipe)],
                         capture_output=True, text=True)
    assert run.returncode == 125
    assert run.stderr.count("\n") == 1 and "oops: unknown key" in run.stderr


# ---- ELF headers and app images ------------------------------------------------------------

def test_elf_reads_a_static_busybox(builder):
    info = builder.elf.read_elf("/bin/busybox")
    assert info.is_static and info.interpreter is None and info.needed == ()


def test_elf_refuses_a_non_elf_file(builder):
    with pytest.raises(builder.elf.ElfError, match="not an ELF file"):
        builder.elf.read_elf(str(BUSYBOX_RECIPE))


@pytest.fixture(scope="module")
def cos_program(tmp_path_factory) -> Path:
    """A real dynamically linked program that needs libm and libc, compiled here."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("app")
    (d / "cos.c").write_text('#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n'
                             'int main(int c, char **v) {\n'
                             '  printf("cos=%.1f\\n", cos(c > 1 ? atof(v[1]) : 0.0));\n'
                             '  return 0;\n}\n')
    subprocess.run(["gcc", "-O2", "-o", str(d / "cos"), str(d / "cos.c"), "-lm"], check=True)
    return d / "cos"


def test_elf_finds_loader_and_needed_libraries(builder, cos_program):
    info = builder.elf.read_elf(str(cos_program))
    assert info.interpreter and info.interpreter.startswith("/lib")
    assert "libm.so.6" in info.needed and "libc.so.6" in info.needed
    closure = builder.elf.library_closure(str(cos_program))
    names = [os.path.basename(image) for image, _ in closure]
    assert closure[0][0] == info.interpreter                      # the loader comes first
    assert {"libm.so.6", "libc.so.6"} <= set(names)
    assert all(os.path.isfile(host) for _, host in closure)


@needs_root
def test_app_image_runs_its_program_in_a_chroot(builder, cos_program, tmp_path):
    recipe = write_recipe(tmp_path, f'base = "{BUSYBOX_RECIPE}"\n[image]\nname = "cos"\n'
                                    f'[app]\nbinary = "{cos_program}"\npath = "/usr/bin/cos"\n')
    result = builder.build(recipe, tmp_path / "cos.tar")
    with tarfile.open(result.path) as tar:
        names = tar.getnames()
    assert "usr/bin/cos" in names and "bin/busybox" in names       # layered on busybox
    assert any(n.endswith("/libm.so.6") for n in names)
    root = extract(result.path, tmp_path / "root")
    run = subprocess.run([CHROOT, str(root), "/usr/bin/cos", "0"],
                         capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "cos=1.0\n"), run.stderr
    again = builder.build(recipe, tmp_path / "again.tar")
    assert again.sha256 == result.sha256


@needs_root
@pytest.mark.skipif(not os.path.exists("/usr/bin/hello"),
                    reason="recipes/hello-app.toml needs GNU hello: apt-get install hello")
def test_shipped_hello_app_recipe(builder, tmp_path):
    result = builder.build(HELLO_RECIPE, tmp_path / "hello.tar")
    assert (result.name, result.tag) == ("hello-app", "latest")
    root = extract(result.path, tmp_path / "root")
    run = subprocess.run([CHROOT, str(root), "/usr/bin/hello"], capture_output=True, text=True)
    assert run.stdout == "Hello, world!\n", run.stderr
    assert "hello-app" in (root / "usr/lib/os-release").read_text()   # overrides the base's
