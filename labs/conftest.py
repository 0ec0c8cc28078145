"""What every lab's checks.py can use (pytest fixtures).

    work           the student's work directory (Path): $MC_LAB_WORKDIR, else labs/NN-topic/work
    state_root     where minicontainer keeps images and containers ($MINICONTAINER_ROOT)
    mc             run the minicontainer CLI: mc("run", "--rm", "busybox", "true") → CompletedProcess
    busybox        makes sure the busybox image exists in state_root (builds it once if not)
    run_script     run one of the student's scripts with bash: run_script("oom.sh", timeout=60)
    written        written("escape.c") → its Path; fails when it is missing or still the starter file
    mc_calls       mc_calls("run") → the `minicontainer run …` command lines the scripts ran (observed)
    answers        check the answers in work/answers.toml: answers.expect({"q1": "b", …})
    msg            msg(english, german): every message a check fails with, in both languages
                   (`lab check --lang de` picks German; see minicontainer/labs.py)

Student scripts run with `minicontainer` on their PATH (whatever Python runs the checks) and with
MINICONTAINER_ROOT set, in the work directory. Containers a check leaves behind (a script that
forgot --rm) are removed after each check, so one task cannot break the next.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

LABS = Path(__file__).resolve().parent
REPO = LABS.parent
if str(REPO) not in sys.path:                # checks import minicontainer (doctor, cgroups, msg, …)
    sys.path.insert(0, str(REPO))

from minicontainer.api import msg  # noqa: E402  (re-exported for the checks)


@pytest.fixture(scope="session")
def state_root() -> Path:
    return Path(os.environ.get("MINICONTAINER_ROOT") or "/var/lib/minicontainer")


@pytest.fixture(scope="session")
def shim_dir():
    """A directory with a `minicontainer` command that runs this very Python's minicontainer,
    and notes each command line in calls.log first (see mc_calls). World-readable and -writable:
    lab 07 runs it as the user nobody (rootless)."""
    shims = Path(tempfile.mkdtemp(prefix="mc-lab-bin-"))
    shims.chmod(0o755)
    log = shims / "calls.log"
    log.touch()
    log.chmod(0o666)
    script = shims / "minicontainer"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\nexec {sys.executable} -m minicontainer \"$@\"\n")
    script.chmod(0o755)
    yield shims
    shutil.rmtree(shims, ignore_errors=True)


@pytest.fixture
def mc_calls(shim_dir):
    """mc_calls() → the `minicontainer` command lines the student's scripts ran during this
    check, split into words: [["run", "--rm", "busybox", …], …]. A check that asks for a
    container's behaviour makes sure there was a container, not only its expected output."""
    log = shim_dir / "calls.log"
    log.write_text("")

    def calls(verb: str | None = None) -> list[list[str]]:
        lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
        return [words for words in lines if verb is None or words[:1] == [verb]]
    return calls


@pytest.fixture(scope="session")
def env(state_root, shim_dir) -> dict:
    """The environment student scripts and the CLI run with."""
    env = dict(os.environ)
    env["PATH"] = f"{shim_dir}:{env.get('PATH') or '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}"
    env["MINICONTAINER_ROOT"] = str(state_root)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="session")
def work(request) -> Path:
    chosen = os.environ.get("MC_LAB_WORKDIR")
    path = Path(chosen) if chosen else Path(request.config.args[0]).resolve().parent / "work"
    if not path.is_dir():
        pytest.fail(msg(f"no work directory {path}: run `minicontainer lab start NN` first",
                        f"kein Arbeitsverzeichnis {path}: zuerst `minicontainer lab start NN` ausführen"), pytrace=False)
    return path


@pytest.fixture(scope="session")
def mc(env):
    def run(*args, input=None, timeout=60):
        return subprocess.run([sys.executable, "-m", "minicontainer", *map(str, args)], input=input,
                              capture_output=True, text=True, timeout=timeout, env=env)
    return run


@pytest.fixture(scope="session")
def busybox(mc):
    """The busybox image, built from rootfs-builder/recipes/busybox.toml if it is not there yet."""
    if mc("image", "inspect", "busybox").returncode != 0:
        built = mc("image", "build", "busybox", timeout=300)
        if built.returncode != 0:
            pytest.fail(msg("cannot build the busybox image: ", "das busybox-Image lässt sich nicht bauen: ")
                        + built.stderr.strip(), pytrace=False)
    return "busybox"


class ImageFS:
    """An image's files as the store keeps them: one directory per layer (bottom first)."""

    def __init__(self, layers: list[Path]):
        self.layers = layers

    def file(self, path: str) -> Path | None:
        """The file a container would see at `path` (the top-most layer that has it)."""
        for layer in reversed(self.layers):
            candidate = layer / path.lstrip("/")
            if candidate.exists() or candidate.is_symlink():
                return candidate
        return None

    def paths(self) -> set[str]:
        """Every path in the image, as '/etc/passwd' (whiteouts of upper layers are not removed)."""
        found = set()
        for layer in self.layers:
            found.update("/" + str(p.relative_to(layer)) for p in layer.rglob("*"))
        return found


@pytest.fixture
def image_fs(mc):
    """image_fs("busybox") → ImageFS, from `minicontainer image inspect` (layer_dirs, else rootfs)."""
    def load(ref: str) -> ImageFS:
        import json
        shown = mc("image", "inspect", ref)
        if shown.returncode != 0:
            pytest.fail(msg(f"there is no image {ref}: ", f"es gibt kein Image {ref}: ") + shown.stderr.strip(),
                        pytrace=False)
        info = json.loads(shown.stdout)
        return ImageFS([Path(d) for d in (info.get("layer_dirs") or [info["rootfs"]])])
    return load


class ScriptResult(subprocess.CompletedProcess):
    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        """exit status and the last lines of output, for an assertion message."""
        tail = "\n".join(line if len(line) <= 160 else line[:160] + " …"
                         for line in self.output.strip().splitlines()[-6:])
        return msg(f"exit status {self.returncode}", f"Exit-Status {self.returncode}") + \
            (msg(", output:\n", ", Ausgabe:\n") + tail if tail else msg(", no output", ", keine Ausgabe"))


@pytest.fixture
def written(work, request):
    """written(name) → work/name, or the check fails saying the file is missing or still the
    untouched starter file (the cause, rather than whatever running a TODO stub leads to)."""
    lab = request.path.parent

    def check(name: str) -> Path:
        path, starter = work / name, lab / "starter" / name
        if not path.is_file():
            pytest.fail(msg(f"{name} is missing in {work}", f"{name} fehlt in {work}"), pytrace=False)
        if (lab / "solution" / name).is_file() and starter.is_file() and path.read_bytes() == starter.read_bytes():
            pytest.fail(msg(f"{name} is not written yet: it is still the starter file with its TODOs",
                            f"{name} ist noch nicht geschrieben: es ist noch die Startdatei mit ihren TODOs"), pytrace=False)
        return path
    return check


@pytest.fixture
def run_script(work, env, written):
    def run(name: str, *args, timeout: float = 60, input: str | None = None, extra_env: dict | None = None):
        script = written(name)
        try:
            proc = subprocess.run(["bash", str(script), *map(str, args)], cwd=work, input=input,
                                  capture_output=True, text=True, timeout=timeout,
                                  env={**env, **(extra_env or {})})
        except subprocess.TimeoutExpired:
            pytest.fail(msg(f"{name} did not finish within {timeout:.0f} s",
                            f"{name} ist nicht innert {timeout:.0f} s fertig geworden"), pytrace=False)
        return ScriptResult(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return run


class Answers:
    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict:
        if not self.path.is_file():
            pytest.fail(msg(f"{self.path.name} is missing in {self.path.parent}",
                            f"{self.path.name} fehlt in {self.path.parent}"), pytrace=False)
        try:
            return tomllib.loads(self.path.read_text())
        except tomllib.TOMLDecodeError as e:
            pytest.fail(msg(f"{self.path.name} is not valid TOML: {e}", f"{self.path.name} ist kein gültiges TOML: {e}"),
                        pytrace=False)

    def expect(self, right: dict[str, str | set]) -> None:
        """Every question answered with the right letter (a set: any of them is right)."""
        given = self.load()
        wrong = []
        for key, accepted in right.items():
            value = str(given.get(key, "")).strip().lower()
            accepted = {accepted} if isinstance(accepted, str) else set(accepted)
            if value not in accepted:
                wrong.append(f"{key}: " + (msg("not answered", "nicht beantwortet") if not value
                                           else repr(value) + msg(" is not right", " stimmt nicht")))
        assert not wrong, msg(f"{len(wrong)} of {len(right)} answers are not right yet: ",
                              f"{len(wrong)} von {len(right)} Antworten stimmen noch nicht: ") + "; ".join(wrong)


@pytest.fixture
def answers(work) -> Answers:
    return Answers(work / "answers.toml")


@pytest.fixture(autouse=True)
def remove_leftover_containers(request, state_root, mc):
    """Containers a check (or a student script without --rm) leaves behind are removed afterwards."""
    if "build" in request.path.relative_to(LABS).parts[:1]:
        yield                               # the build-it-yourself track makes no minicontainer containers
        return
    containers = state_root / "containers"

    def ids() -> set[str]:
        return {p.name for p in containers.glob("*") if not p.name.startswith(".")} if containers.is_dir() else set()
    before = ids()
    yield
    left = sorted(ids() - before)
    keep = getattr(request.module, "KEEP_CONTAINERS", ())   # name prefixes a later check still uses
    if keep:
        left = [cid for cid in left if not container_name(containers / cid).startswith(keep)]
    if left:
        mc("rm", "-f", *left)                   # one command for all: a CLI start is the slow part


def container_name(directory: Path) -> str:
    try:
        return json.loads((directory / "state.json").read_text()).get("name", "")
    except (OSError, ValueError):
        return ""


def make_executable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
