"""Fixtures for the build-it-yourself levels (labs/build/tests/).

    minirun(*args)   run minirun.py ($MINIRUN: your copy) as a subprocess, as root → CompletedProcess
                     (.said: what it did, for messages); a test that reaches a function not
                     written yet fails with "this test needs level N: f() is not written yet"
    rootfs           a tiny root file system: static busybox, its applets, /proc, /tmp, /etc,
                     and /bin/escape (the double-chroot escape, if gcc is installed)
    host_secret      (path, text): a file on the host that no rootfs contains

Run one level on your copy:   MINIRUN=~/minirun.py python -m pytest labs/build/tests/test_level1_fork_exec.py
Run them all:                 MINIRUN=~/minirun.py python -m pytest labs/build/tests
On a shared machine add --basetemp /tmp/minirun-YOURNAME: pytest's default directory as root,
/tmp/pytest-of-root, holds everyone's runs and keeps only the last three. Under sudo without
--basetemp the tests take /tmp/minirun-$SUDO_USER.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parent.parent

ESCAPE_C = r"""
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {           /* chroot down, climb up with .., chroot at the top */
    mkdir("/.x", 0700);
    if (chroot("/.x") != 0) { perror("chroot"); return 1; }
    for (int i = 0; i < 100; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 1; }
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
"""


@pytest.hookimpl(tryfirst=True)                    # before pytest's tmp_path factory reads it
def pytest_configure(config):
    """Under sudo every student's runs would land in root's /tmp/pytest-of-root, mixed up and
    cleaned up by each other's: a directory per student instead, unless --basetemp is given."""
    if config.option.basetemp is None and os.environ.get("SUDO_USER"):
        config.option.basetemp = f"/tmp/minirun-{os.environ['SUDO_USER']}"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the levels need root: run pytest with sudo")
        for item in items:
            item.add_marker(skip)


def chosen_minirun() -> Path:
    return Path(os.environ.get("MINIRUN") or BUILD / "minirun.py").resolve()


def pytest_report_header(config):
    return [f"minirun under test: {chosen_minirun()} (set MINIRUN=path/to/your/minirun.py)",
            f"temporary files under: {config.option.basetemp or 'pytest default'} (set --basetemp DIR)"]


@pytest.fixture(scope="session")
def minirun_path() -> Path:
    path = chosen_minirun()
    if not path.is_file():
        pytest.fail(f"{path} does not exist (set MINIRUN=path/to/minirun.py)", pytrace=False)
    return path


class Result(subprocess.CompletedProcess):
    @property
    def said(self) -> str:
        """What minirun did, for an assertion message."""
        return f"exit status {self.returncode}, stdout {self.stdout!r}, stderr {self.stderr.strip()!r}"


NOT_WRITTEN = re.compile(r"level \d+: \w+\(\) is not written yet")


@pytest.fixture
def minirun(minirun_path):
    """Runs minirun; a test that reaches a function not written yet fails naming it (and its level)."""
    def run(*args, timeout: float = 30, wrap: list[str] | None = None, input: str | None = None):
        command = [*(wrap or []), sys.executable, str(minirun_path), *map(str, args)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            pytest.fail(f"minirun {' '.join(map(str, args))} did not finish within {timeout} s", pytrace=False)
        missing = NOT_WRITTEN.search(proc.stderr)
        if missing:
            pytest.fail(f"this test needs {missing.group()}", pytrace=False)
        return Result(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return run


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rootfs")
    (root / "bin").mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for name in ("proc", "tmp", "etc", "sys", "dev"):
        (root / name).mkdir()
    (root / "etc" / "marker").write_text("I am the rootfs\n")
    (root / "escape.c").write_text(ESCAPE_C)
    try:
        subprocess.run(["gcc", "-static", "-O2", "-o", str(root / "bin" / "escape"), str(root / "escape.c")],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError:
        pass                                  # no gcc: the escape tests skip, saying so
    except subprocess.CalledProcessError as e:
        pytest.fail(f"gcc -static could not build the escape program (is libc6-dev installed?): "
                    f"{e.stderr.strip()[-300:]}", pytrace=False)
    (root / "escape.c").unlink()
    return root


@pytest.fixture
def host_secret(tmp_path) -> tuple[Path, str]:
    text = f"host secret {secrets.token_hex(4)}"
    path = tmp_path / "secret.txt"
    path.write_text(text + "\n")
    return path, text
