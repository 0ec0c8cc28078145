"""The build-it-yourself track (labs/build/): every level's tests fail on the skeleton students
start from, and pass on the instructors' solution (labs/build/solutions/minirun.py).

Both runs are real: the level tests start minirun as root, which makes namespaces, mounts,
cgroups and (inside `unshare --net`) a veth pair. pytest runs them in a subprocess with its own
--basetemp, and its JUnit XML says which test passed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO

BUILD = REPO / "labs" / "build"
LEVELS = sorted(p.stem for p in (BUILD / "tests").glob("test_level*.py"))

pytestmark = pytest.mark.root


def run_levels(implementation: Path, tmp: Path) -> dict[str, dict[str, str]]:
    """level file → {test name: passed|failed|skipped} for one minirun.py."""
    junit = tmp / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(BUILD / "tests"),
                           f"--junitxml={junit}", f"--basetemp={tmp / 'base'}"],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "MINIRUN": str(implementation)})
    assert junit.exists(), proc.stdout + proc.stderr
    results: dict[str, dict[str, str]] = {level: {} for level in LEVELS}
    for case in ET.parse(junit).getroot().iter("testcase"):
        level = case.get("classname").split(".")[-1]
        outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        results.setdefault(level, {})[case.get("name")] = outcome
    return results


@pytest.fixture(scope="module", autouse=True)
def remove_minirun_parent_cgroups():
    """minirun leaves its (empty) parent group minirun/ in each hierarchy, as minicontainer does;
    the tests remove it afterwards."""
    yield
    for parent in [Path("/sys/fs/cgroup/minirun"), *Path("/sys/fs/cgroup").glob("*/minirun")]:
        try:
            parent.rmdir()
        except OSError:
            pass                              # not there, or still in use


@pytest.fixture(scope="module")
def on_skeleton(tmp_path_factory):
    return run_levels(BUILD / "minirun.py", tmp_path_factory.mktemp("skeleton"))


@pytest.fixture(scope="module")
def on_solution(tmp_path_factory):
    return run_levels(BUILD / "solutions" / "minirun.py", tmp_path_factory.mktemp("solution"))


def test_seven_levels():
    assert [level.split("_")[1] for level in LEVELS] == [f"level{n}" for n in range(1, 8)]


@pytest.mark.parametrize("level", LEVELS)
def test_level_fails_on_the_skeleton(level, on_skeleton):
    results = on_skeleton[level]
    assert results, f"no tests ran for {level}"
    passing = [name for name, outcome in results.items() if outcome != "failed"]
    assert not passing, f"{level}: these pass (or skip) on the untouched skeleton: {passing}"


@pytest.mark.parametrize("level", LEVELS)
def test_level_passes_on_the_solution(level, on_solution):
    results = on_solution[level]
    assert results, f"no tests ran for {level}"
    failing = [name for name, outcome in results.items() if outcome != "passed"]
    assert not failing, f"{level}: not passing on labs/build/solutions/minirun.py: {failing}"


def test_skeleton_is_the_solution_with_todos():
    """Same given code (kernel interface, configuration, sequence): only the TODO bodies differ."""
    import ast
    def functions(path: Path) -> dict[str, str]:
        tree = ast.parse(path.read_text())
        return {n.name: ast.unparse(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    skeleton, solution = functions(BUILD / "minirun.py"), functions(BUILD / "solutions" / "minirun.py")
    assert skeleton.keys() == solution.keys()
    todo = [name for name in skeleton if "NotImplementedError" in skeleton[name]]
    assert len(todo) >= 14
    assert all(skeleton[n] == solution[n] for n in skeleton if n not in todo), "given code differs"
    assert len((BUILD / "minirun.py").read_text().splitlines()) < 400
