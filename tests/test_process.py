"""process.py: the last steps before execve — here, what a failed execve says.

A program can be in the image and still give ENOENT: the kernel must first start the program's
ELF interpreter (the loader named in PT_INTERP) or its #! interpreter, and that one is missing.
Docker says "no such file or directory"; minicontainer names the missing loader.
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from minicontainer.elf import read_pt_interp
from minicontainer.process import missing_interpreter

DYNAMIC = shutil.which("true") or "/usr/bin/true"          # a dynamically linked host program


def test_missing_interpreter_on_the_host(tmp_path):
    assert missing_interpreter(DYNAMIC) is None             # the host has its loader
    script = tmp_path / "script"
    script.write_text("#!/no/such/shell -e\necho hi\n")
    assert missing_interpreter(str(script)) == "its interpreter (its #! line) /no/such/shell is not in the image"


@pytest.fixture(scope="module")
def loaderless(mc_root, busybox_tar, tmp_path_factory):
    """Two images of busybox plus the host's dynamically linked `true` as /bin/dyntrue and a
    bash script — "no-loader" without /lib64 at all, "dangling-loader" with the usual symlink
    /lib64/ld-linux-x86-64.so.2 pointing at a /lib/x86_64-linux-gnu/ that is not there."""
    from minicontainer.api import image_store
    with open(DYNAMIC, "rb") as f:
        loader = read_pt_interp(f)
    work = tmp_path_factory.mktemp("loaderless")
    script = work / "hello.sh"
    script.write_text("#!/bin/bash\necho hello\n")
    script.chmod(0o755)
    for name, with_link in (("no-loader", False), ("dangling-loader", True)):
        tar = work / f"{name}.tar"
        tar.write_bytes(busybox_tar.read_bytes())
        with tarfile.open(tar, "a") as t:
            t.add(DYNAMIC, "bin/dyntrue")
            t.add(script, "bin/hello.sh")
            if with_link:
                link = tarfile.TarInfo(loader.lstrip("/"))
                link.type, link.linkname = tarfile.SYMTYPE, "/lib/x86_64-linux-gnu/" + Path(loader).name
                t.addfile(link)
        image_store(mc_root).import_archive(tar, name)
    yield loader
    for name in ("no-loader", "dangling-loader"):
        image_store(mc_root).remove(name)


@pytest.mark.root
@pytest.mark.parametrize("command", [["dyntrue"], ["/bin/dyntrue"]])
def test_a_missing_elf_interpreter_is_named(mc, loaderless, command):
    p = mc("run", "--rm", "--net", "none", "no-loader", *command)
    assert p.returncode == 127, p.stderr
    assert p.stderr == f"minicontainer: exec {command[0]}: its ELF interpreter {loaderless} is not in the image\n"


@pytest.mark.root
def test_a_dangling_loader_symlink_is_named(mc, loaderless):
    p = mc("run", "--rm", "--net", "none", "dangling-loader", "dyntrue")
    assert p.returncode == 127, p.stderr
    assert p.stderr.strip() == (f"minicontainer: exec dyntrue: its ELF interpreter {loaderless} is not in the image: "
                                f"it is a symlink to /lib/x86_64-linux-gnu/{Path(loaderless).name}, which is missing")


@pytest.mark.root
def test_a_missing_script_interpreter_is_named(mc, loaderless):
    p = mc("run", "--rm", "--net", "none", "no-loader", "hello.sh")
    assert (p.returncode, p.stderr) == (127, "minicontainer: exec hello.sh: its interpreter (its #! line) "
                                             "/bin/bash is not in the image\n")


@pytest.mark.root
def test_a_program_that_is_not_there_is_still_not_found(mc, loaderless):
    p = mc("run", "--rm", "--net", "none", "no-loader", "no-such-program")
    assert (p.returncode, p.stderr) == (127, "minicontainer: exec no-such-program: executable file not found in $PATH\n")


@pytest.mark.root
def test_exec_into_a_running_container_names_the_loader_too(mc, loaderless):
    """`exec` ends in the same exec_command as `run`: the same message, by name and by path."""
    assert mc("run", "-d", "--name", "loaderless-exec", "--net", "none", "no-loader", "sleep", "60").returncode == 0
    try:
        for command in ("dyntrue", "/bin/dyntrue"):
            p = mc("exec", "loaderless-exec", command)
            assert (p.returncode, p.stderr) == (127, f"minicontainer: exec {command}: its ELF interpreter "
                                                     f"{loaderless} is not in the image\n")
    finally:
        mc("rm", "-f", "loaderless-exec")
