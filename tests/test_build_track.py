"""The build-it-yourself track (labs/build/): every level's tests fail on the skeleton students
start from, and pass on the instructors' solution (labs/build/solutions/minirun.py); and the levels
are independent: a minirun with exactly levels 1..N written passes levels 1..N and fails level
N+1 with that level's "not written yet" message — no level needs a later one.

Both runs are real: the level tests start minirun as root, which makes namespaces, mounts,
cgroups and (inside `unshare --net`) a veth pair. pytest runs them in a subprocess with its own
--basetemp, and its JUnit XML says which test passed. That subprocess runs in a mount namespace of
its own in which / is rshared, as on a student's machine booted with systemd: in this suite's
private mount namespace (tests/conftest.py) a make_mounts_private() that does nothing would pass.
And a few typical mistakes fail with a message that says what the test saw.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO

BUILD = REPO / "labs" / "build"
LEVELS = sorted(p.stem for p in (BUILD / "tests").glob("test_level*.py"))

pytestmark = pytest.mark.root

# A throwaway mount namespace whose mounts are shared again, like the host's under systemd (never
# the host's own: this suite already runs in a private one). What a wrong level 3 lets through
# propagates only into it.
AS_ON_A_HOST = ["unshare", "--mount", "--propagation", "unchanged",
                "sh", "-c", 'mount --make-rshared / && exec "$@"', "sh"]


def run_levels(implementation: Path, tmp: Path, levels: list[str] = LEVELS) -> dict[str, dict[str, str]]:
    """level file → {test name: passed|skipped|failed: MESSAGE} for one minirun.py."""
    junit = tmp / "junit.xml"
    proc = subprocess.run([*AS_ON_A_HOST, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(str(BUILD / "tests" / f"{level}.py") for level in levels),
                           f"--junitxml={junit}", f"--basetemp={tmp / 'base'}"],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "MINIRUN": str(implementation)})
    assert junit.exists(), proc.stdout + proc.stderr
    results: dict[str, dict[str, str]] = {level: {} for level in levels}
    for case in ET.parse(junit).getroot().iter("testcase"):
        level = case.get("classname").split(".")[-1]
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        outcome = (f"failed: {failure.get('message')}" if failure is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        results.setdefault(level, {})[case.get("name")] = outcome
    return results


def is_todo(function: ast.AST) -> bool:
    """A function the student writes: its body raises NotImplementedError."""
    return isinstance(function, ast.FunctionDef) and any(
        isinstance(node, ast.Raise) and "NotImplementedError" in ast.unparse(node) for node in ast.walk(function))


def level_of(function: ast.FunctionDef) -> int | None:
    """The level a skeleton function belongs to, from its 'level N: f() is not written yet'."""
    found = re.search(r"level (\d+): \w+\(\) is not written yet", ast.unparse(function))
    return int(found.group(1)) if found else None


def minirun_up_to(n: int, path: Path, written: dict[str, str] | None = None) -> Path:
    """The skeleton with the solution's bodies of exactly the functions of levels 1..n — or, for
    a function named in `written`, the source given there (a student's attempt)."""
    skeleton_text = (BUILD / "minirun.py").read_text()
    solution_text = (BUILD / "solutions" / "minirun.py").read_text()
    solved = {f.name: ast.get_source_segment(solution_text, f) for f in ast.parse(solution_text).body
              if isinstance(f, ast.FunctionDef)}
    solved.update(written or {})
    lines = skeleton_text.splitlines(keepends=True)
    todo = [f for f in ast.parse(skeleton_text).body if isinstance(f, ast.FunctionDef) and level_of(f)]
    for function in sorted(todo, key=lambda f: f.lineno, reverse=True):   # bottom-up: line numbers hold
        if level_of(function) <= n:
            lines[function.lineno - 1:function.end_lineno] = [solved[function.name] + "\n"]
    path.write_text("".join(lines))
    return path


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


def selected_levels(request, test: str) -> list[str]:
    """The levels this session's `test` is selected for, to run in one batch: all seven here; in
    the cgroup-v2 VM stage only level 6 (tests/vm/vmrunner.py selects one parametrization)."""
    wanted = {item.callspec.params["level"] for item in request.session.items
              if getattr(item, "originalname", None) == test and hasattr(item, "callspec")}
    return [level for level in LEVELS if level in wanted]


@pytest.fixture(scope="module")
def on_skeleton(request, tmp_path_factory):
    return run_levels(BUILD / "minirun.py", tmp_path_factory.mktemp("skeleton"),
                      selected_levels(request, "test_level_fails_on_the_skeleton"))


@pytest.fixture(scope="module")
def on_solution(request, tmp_path_factory):
    return run_levels(BUILD / "solutions" / "minirun.py", tmp_path_factory.mktemp("solution"),
                      selected_levels(request, "test_level_passes_on_the_solution"))


def test_seven_levels():
    assert [level.split("_")[1] for level in LEVELS] == [f"level{n}" for n in range(1, 8)]


@pytest.mark.parametrize("level", LEVELS)
def test_level_fails_on_the_skeleton(level, on_skeleton):
    results = on_skeleton[level]
    assert results, f"no tests ran for {level}"
    passing = [name for name, outcome in results.items() if not outcome.startswith("failed")]
    assert not passing, f"{level}: these pass (or skip) on the untouched skeleton: {passing}"


@pytest.mark.parametrize("level", LEVELS)
def test_level_passes_on_the_solution(level, on_solution):
    results = on_solution[level]
    assert results, f"no tests ran for {level}"
    failing = [name for name, outcome in results.items() if outcome != "passed"]
    assert not failing, f"{level}: not passing on labs/build/solutions/minirun.py: {failing}"


@pytest.mark.parametrize("n", range(len(LEVELS)))
def test_levels_are_independent(n, tmp_path):
    """Levels 1..n written: they pass, and every test of level n+1 fails with level n+1's message."""
    implementation = minirun_up_to(n, tmp_path / "minirun.py")
    results = run_levels(implementation, tmp_path, LEVELS[:n + 1])
    for level in LEVELS[:n]:
        failing = {name: outcome for name, outcome in results[level].items() if outcome != "passed"}
        assert results[level] and not failing, f"with levels 1..{n} written, {level} does not pass: {failing}"
    following = results[LEVELS[n]]
    wrong = {name: outcome for name, outcome in following.items()
             if not (outcome.startswith("failed")
                     and re.search(rf"this test needs level {n + 1}: \w+\(\) is not written yet", outcome))}
    assert following and not wrong, f"with levels 1..{n} written, {LEVELS[n]} should fail naming level {n + 1}: {wrong}"


# Mistakes students make, and what the failing test must say (not a bare Python error, not a
# claim that the function did not run): level → (function source, {test: words its message holds}).
MISTAKES = {
    "no chdir after chroot": ("test_level2_chroot", """
def enter_chroot(rootfs: str) -> None:
    os.chroot(rootfs)
""", {"test_working_directory_is_inside": "where does the process stand after chroot?"}),
    "rprivate without MS_REC": ("test_level3_mounts", """
def make_mounts_private() -> None:
    mount(None, "/", None, MS_PRIVATE)
""", {test: "/ is private, but" for test in ("test_proc_is_mounted_inside", "test_mounts_are_private")}),
    "make_mounts_private does nothing": ("test_level3_mounts", """
def make_mounts_private() -> None:
    pass
""", {test: "/ is still a shared mount after make_mounts_private()"
      for test in ("test_proc_is_mounted_inside", "test_mounts_are_private")}),
    "sys.exit in the forked child": ("test_level1_fork_exec", """
def exec_command(argv: list[str]) -> None:
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        sys.exit(127)
""", {"test_command_not_found_is_127": "minirun: SystemExit: 127 (in exec_command(), line"}),
    "a typo in wait_for": ("test_level1_fork_exec", """
def wait_for(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(statsu)
""", {"test_exit_status": "NameError: name 'statsu' is not defined (in wait_for(), line"}),
    "pivot_root of a plain directory": ("test_level4_pivot_root", """
def enter_pivot_root(rootfs: str) -> None:
    os.chdir(rootfs)
    pivot_root(".", ".")
""", {"test_root_is_the_rootfs": "pivot_root: EBUSY"}),   # ERRORS in pivot_root(2): "on the current root mount"
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_fails_saying_what_was_seen(mistake, tmp_path):
    level, source, expected = MISTAKES[mistake]
    name = ast.parse(source).body[0].name
    implementation = minirun_up_to(int(level[len("test_level")]), tmp_path / "minirun.py",
                                   written={name: source.strip()})
    results = run_levels(implementation, tmp_path, [level])[level]
    for test, words in expected.items():
        outcome = results.get(test, "did not run")
        assert outcome.startswith("failed") and words in outcome, \
            f"{mistake}: {level}::{test} should fail saying {words!r}; it {outcome}"


def test_every_todo_belongs_to_a_level():
    tree = ast.parse((BUILD / "minirun.py").read_text())
    todo = [f for f in tree.body if is_todo(f)]
    assert sorted({level_of(f) for f in todo}) == list(range(1, len(LEVELS) + 1)), \
        [(f.name, level_of(f)) for f in todo]


def test_todos_do_not_spell_out_the_code():
    """A TODO asks questions and points to man pages: no line of the solution's code is in it
    (compared without spaces and with one kind of quotes)."""
    squeeze = lambda text: re.sub(r"\s+", "", text.replace('"', "'"))
    skeleton_text = (BUILD / "minirun.py").read_text()
    solution = {f.name: f for f in ast.parse((BUILD / "solutions" / "minirun.py").read_text()).body
                if isinstance(f, ast.FunctionDef)}
    spelled = []
    for function in ast.parse(skeleton_text).body:
        if isinstance(function, ast.FunctionDef) and level_of(function):
            todo = squeeze(ast.get_source_segment(skeleton_text, function))
            solved = solution[function.name]
            code = ast.unparse(solved.body[1:] if ast.get_docstring(solved) else solved.body).splitlines()
            spelled += [f"{function.name}: {line.strip()}" for line in code
                        if len(squeeze(line)) >= 10 and squeeze(line) in todo]
    assert not spelled, f"the skeleton's TODOs give away the solution's code: {spelled}"


def test_skeleton_is_the_solution_with_todos():
    """Same given code (kernel interface, configuration, sequence): only the TODO bodies differ."""
    def functions(path: Path) -> dict[str, str]:
        tree = ast.parse(path.read_text())
        return {n.name: ast.unparse(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    skeleton, solution = functions(BUILD / "minirun.py"), functions(BUILD / "solutions" / "minirun.py")
    assert skeleton.keys() == solution.keys()
    todo = [f.name for f in ast.parse((BUILD / "minirun.py").read_text()).body if is_todo(f)]
    assert len(todo) == 14, "labs/build/README*.md and docs/labs.md count the functions to write"
    assert all(skeleton[n] == solution[n] for n in skeleton if n not in todo), "given code differs"
    assert len((BUILD / "minirun.py").read_text().splitlines()) < 420
