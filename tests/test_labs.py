"""The labs: every checker is proven both ways, and `minicontainer lab list|start|check` works.

For each labs/NN-topic/:
  * the untouched starter files fail EVERY check (a check that passes on the starter tests nothing);
  * the reference solution (solution/ copied over the starter) passes EVERY check;
  * the lab has what a student needs: README.md + README.de.md, starter/, solution/ with the same
    file names, and each check a docstring with a title, a `de:` title, a `Hint:` and a `Hinweis:`.
The checks run through the real CLI (`lab check NN --workdir DIR --junit FILE`) against the session's
state root, and the JUnit XML says which check passed.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from minicontainer.labs import list_labs, parse_docstring  # noqa: E402

LABS = {lab.number: lab for lab in list_labs()}


# Each lab's checks run in a network namespace of their own (with lo up): the bridge, veth pairs
# and NAT rules that containers get by default — and lab 06's published ports — stay there.
IN_OWN_NETNS = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def skipped_here(number: str) -> set[str]:
    """Checks that cannot run on this machine and say so (skipped, with the reason): lab 08's
    modprobe task needs a kernel that loads modules. The VM stage runs lab 08 both ways on one that
    does (tests/vm/vmrunner.py GUEST_SELECTION), so there the task must fail and pass for real."""
    return {"test_modprobe"} if number == "08" and not os.path.exists("/proc/modules") else set()


def run_cli(root: Path, *args, timeout: float = 600, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    """The CLI as a subprocess. Past its timeout it gets SIGTERM first, as a grader would send,
    so a lab check cleans up what it started (then SIGKILL, if it does not end in a minute)."""
    proc = subprocess.Popen([*(wrap or []), sys.executable, "-m", "minicontainer", "--root", str(root),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LANG": "C.UTF-8"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def lab_root(tmp_path, busybox_tar) -> Path:
    """A state root of its own for one lab run (busybox imported), so the lab's network state
    lives and dies with its network namespace."""
    from minicontainer.api import image_store
    root = tmp_path / "root"
    image_store(root).import_archive(busybox_tar, "busybox")
    return root


def make_workdir(lab, tmp_path: Path, with_solution: bool) -> Path:
    work = tmp_path / "work"
    shutil.copytree(lab.path / "starter", work)
    if with_solution:
        shutil.copytree(lab.path / "solution", work, dirs_exist_ok=True)
    return work


def junit_outcomes(path: Path) -> dict[str, str]:
    """testcase name → passed | failed | skipped."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[case.get("name")] = "failed"
        elif case.find("skipped") is not None:
            outcomes[case.get("name")] = "skipped"
        else:
            outcomes[case.get("name")] = "passed"
    return outcomes


def check_names(lab) -> list[str]:
    tree = ast.parse(lab.checks.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


# ── structure ─────────────────────────────────────────────────────────────────────────────

def test_the_required_labs_exist():
    assert {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10"} <= set(LABS), sorted(LABS)


@pytest.mark.parametrize("number", sorted(LABS))
def test_lab_has_everything_a_student_needs(number):
    lab = LABS[number]
    for name in ("README.md", "README.de.md", "checks.py"):
        assert (lab.path / name).is_file(), f"{lab.slug}/{name} is missing"
    starter = sorted(p.relative_to(lab.path / "starter") for p in (lab.path / "starter").rglob("*") if p.is_file())
    solution = sorted(p.relative_to(lab.path / "solution") for p in (lab.path / "solution").rglob("*") if p.is_file())
    assert starter, f"{lab.slug}/starter is empty"
    assert set(solution) <= set(starter), f"solution files without a starter: {set(solution) - set(starter)}"
    english, german = (lab.path / "README.md").read_text(), (lab.path / "README.de.md").read_text()
    for heading in ("## Goals", "## Background", "## Steps", "## Questions", "## Expected transcript"):
        assert heading in english, f"{lab.slug}/README.md has no {heading!r} section"
    for heading in ("## Ziele", "## Hintergrund", "## Schritte", "## Fragen", "## Erwartete Ausgabe"):
        assert heading in german, f"{lab.slug}/README.de.md has no {heading!r} section"
    assert "Vorlesung" in german and "Lecture" in english, "each README ties the lab to the lecture notes"
    tree = ast.parse(lab.checks.read_text())
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert checks, f"{lab.slug}/checks.py has no checks"
    for node in checks:
        task = parse_docstring(ast.get_docstring(node), node.name)
        assert task.title != node.name and task.title_de and task.hint and task.hint_de, \
            f"{lab.slug}::{node.name} needs a docstring with a title, de:, Hint: and Hinweis:"


# ── both ways ─────────────────────────────────────────────────────────────────────────────

# Labs whose checks still fail with English reasons under --lang de (none: every lab's checks
# write their reasons with msg(en, de), minicontainer/labs.py). A new lab is held to it at once.
ENGLISH_REASONS_PENDING: set[str] = set()

# Words that give an English sentence away. Quoted text (a command, a path, a script's own
# output after "Ausgabe:") is data, not the checker's sentence, and is left out.
ENGLISH_WORDS = re.compile(r"\b(the|is|are|was|not|no|did|does|should|must|missing|failed|with|within|"
                           r"expected|got|cannot|only|output|exit status)\b")


def english_in_reasons(stdout: str) -> list[str]:
    """The 'warum:' reasons of a German `lab check` that read as English."""
    found = []
    for block in re.findall(r"warum:  (.*?)(?=\n\s*Tipp|\n  [✓✗–] |\n\n)", stdout, flags=re.S):
        sentence = block.split("Ausgabe:")[0]
        sentence = re.sub(r"""`[^`]*`|'[^']*'|"[^"]*"|„[^“]*“|\([^)]*\)|/\S+""", "", sentence)
        if ENGLISH_WORDS.search(sentence):
            found.append(block.strip())
    return found


@pytest.mark.root
@pytest.mark.parametrize("number", sorted(LABS))
def test_every_check_fails_on_the_starter(number, lab_root, tmp_path):
    """…and says why in German (--lang de): every reason, not only the titles and hints."""
    lab = LABS[number]
    work = make_workdir(lab, tmp_path, with_solution=False)
    junit = tmp_path / "starter.xml"
    proc = run_cli(lab_root, "lab", "check", number, "--workdir", work, "--junit", junit, "--lang", "de",
                   wrap=IN_OWN_NETNS)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    outcomes = junit_outcomes(junit)
    assert sorted(outcomes) == sorted(check_names(lab)), proc.stdout
    skipped = skipped_here(number)
    passing = [name for name, outcome in outcomes.items()
               if outcome != "failed" and not (outcome == "skipped" and name in skipped)]
    assert not passing, f"these checks do not fail on the untouched starter: {passing}\n{proc.stdout}"
    failed = len(outcomes) - len(skipped)
    assert proc.stdout.count("✗") == failed and "✓" not in proc.stdout
    assert proc.stdout.count("Tipp: ") == failed, "every ✗ comes with a hint"
    assert proc.stdout.count("warum:  ") == failed, "every ✗ says why"
    if number not in ENGLISH_REASONS_PENDING:
        assert not english_in_reasons(proc.stdout), f"English reasons under --lang de: {english_in_reasons(proc.stdout)}"


# How long `lab check NN` may take with the solution (issue 20: lab 10 in 15 s, the others in 10 s;
# lab 12 migrates a QEMU VM under TCG). On a machine busier than its CPUs the budget grows with
# the load average, so a shared CI machine measures the checker, not its neighbours.
# Lab 10 waits for replicas, a kill -9 heal, a scale up and down and a teardown through the
# controller: 11.5 s quiet (issue 20's 15 s met), 75 s at load 14-16 on 2 CPUs, so its bound
# stays wider — a hang guard with room for a slower CI machine (docs/orchestration.md).
SECONDS = {"10": 30, "11": 120, "12": 120}     # 11: a cluster, six replicas, a failover, a migration


# The cgroup-v2 stage runs lab 08 inside a QEMU guest under TCG, which emulates every instruction:
# there the bound is a safety net for a hang, not issue 20's figure (measured on the host).
TCG_GUEST = 6 if "mc_job=" in Path("/proc/cmdline").read_text() else 1


def time_budget(number: str) -> float:
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return SECONDS.get(number, 10) * max(1.0, load) * TCG_GUEST


@pytest.mark.root
@pytest.mark.parametrize("number", sorted(LABS))
def test_every_check_passes_with_the_solution(number, lab_root, tmp_path):
    """…within its time: the run is bounded by a timeout, not timed and asserted afterwards."""
    lab = LABS[number]
    if number in VM_LABS and os.environ.get("MC_SKIP_VM") == "1" and os.environ.get("CI") != "true":
        pytest.skip(f"lab {number} boots a QEMU VM: MC_SKIP_VM=1 is set")
    work = make_workdir(lab, tmp_path, with_solution=True)
    junit = tmp_path / "solution.xml"
    run_cli(lab_root, "image", "inspect", "busybox")           # (a first CLI start warms the caches)
    budget = time_budget(number)
    try:
        proc = run_cli(lab_root, "lab", "check", number, "--workdir", work, "--junit", junit,
                       wrap=IN_OWN_NETNS, timeout=budget)
    except subprocess.TimeoutExpired as e:
        shown = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"lab check {number} took longer than {budget:.0f} s ({SECONDS.get(number, 10)} s × load"
                    f"{' × 6 under TCG' if TCG_GUEST > 1 else ''}):\n{shown}")
    outcomes = junit_outcomes(junit)
    skipped = skipped_here(number)
    failing = [name for name, outcome in outcomes.items()
               if outcome != "passed" and not (outcome == "skipped" and name in skipped)]
    assert proc.returncode == 0 and not failing, \
        f"exit {proc.returncode}; not passing with the reference solution: {failing}\n{proc.stdout}\n{proc.stderr}"
    assert sorted(outcomes) == sorted(check_names(lab))
    assert f"{len(outcomes) - len(skipped)} of {len(outcomes)} tasks done." in proc.stdout
    leftovers = [p.name for p in (lab_root / "containers").glob("*") if not p.name.startswith(".")]
    assert not leftovers, f"the lab's checks left containers behind: {leftovers}"
    vms = [p.name for p in (lab_root / "vms").glob("*")]
    assert not vms, f"the lab's checks left VMs behind: {vms}"


VM_LABS = {"12"}         # their solutions boot a QEMU VM (minicontainer vm), like tests/test_vm_qemu.py


# ── the CLI ───────────────────────────────────────────────────────────────────────────────

def test_lab_list(mc_root):
    proc = run_cli(mc_root, "lab", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line[:2] for line in lines] == sorted(LABS)
    assert any("chroot" in line for line in lines)
    german = run_cli(mc_root, "lab", "list", "--lang", "de").stdout
    assert german.splitlines()[0].startswith("01  ") and german != proc.stdout


def test_lab_check_unknown_lab_is_one_line(mc_root):
    proc = run_cli(mc_root, "lab", "check", "99")
    assert proc.returncode == 125
    assert proc.stderr.count("\n") == 1 and "no lab '99'" in proc.stderr and "lab list" in proc.stderr


def test_lab_start_copies_starter_and_keeps_your_files(mc_root, tmp_path):
    work = tmp_path / "mywork"
    first = run_cli(mc_root, "lab", "start", "chroot", "--workdir", work)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in work.iterdir()) == sorted(p.name for p in (LABS["01"].path / "starter").iterdir())
    (work / "answers.toml").write_text('q1 = "b"\n')
    again = run_cli(mc_root, "lab", "start", "01", "--workdir", work)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (work / "answers.toml").read_text() == 'q1 = "b"\n'
    forced = run_cli(mc_root, "lab", "start", "01", "--workdir", work, "--force")
    assert forced.returncode == 0 and (work / "answers.toml").read_text().startswith("# Lab 01")


def test_lab_check_one_task_in_german(mc_root, tmp_path):
    """-k selects tasks; --lang de prints German titles, reasons and hints."""
    work = make_workdir(LABS["01"], tmp_path, with_solution=False)
    proc = run_cli(mc_root, "lab", "check", "01", "--workdir", work, "-k", "questions", "--lang", "de")
    assert proc.returncode == 1
    assert "Arbeitsverzeichnis:" in proc.stdout and "0 von 1 Aufgaben erledigt." in proc.stdout
    assert "✗  4  Die Fragen" in proc.stdout and "Tipp: " in proc.stdout and "warum:" in proc.stdout


# ── Swiss German ──────────────────────────────────────────────────────────────────────────

GERMAN_SOURCES = ("labs", "docs", "minicontainer", "README.de.md")


def german_files() -> list[Path]:
    """The files German text lives in: the labs (READMEs, checks, starters, solutions), the docs
    (lecture.de.md …) and the package (the checker's and the CLI's German messages)."""
    files = []
    for top in GERMAN_SOURCES:
        path = REPO / top
        candidates = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        files += [p for p in candidates if p.is_file() and p.suffix in {".md", ".py", ".sh", ".toml", ".txt", ".c", ".json"}
                  and not {"work", "__pycache__"} & set(p.relative_to(REPO).parts)]
    return files


def test_german_is_swiss_no_sharp_s():
    """The lecture is Swiss ("Grössere", "innert"): Swiss orthography writes ss, never ß."""
    sharp_s = "\u00df"
    found = [f"{p.relative_to(REPO)}:{n}" for p in german_files()
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if sharp_s in line or "\u1e9e" in line]
    assert len(german_files()) > 20 and not found, f"ß in: {found}"


# ── task selection and hints ──────────────────────────────────────────────────────────────

def test_lab_check_k_takes_the_task_number_it_shows(mc_root, tmp_path):
    work = make_workdir(LABS["01"], tmp_path, with_solution=False)
    proc = run_cli(mc_root, "lab", "check", "01", "--workdir", work, "-k", "4")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗  4  The questions" in proc.stdout and "0 of 1 tasks done." in proc.stdout
    by_title = run_cli(mc_root, "lab", "check", "01", "--workdir", work, "-k", "answers")
    assert "✗  4  The questions" in by_title.stdout and "0 of 1 tasks done." in by_title.stdout


def test_lab_check_unknown_task_lists_the_choices(mc_root, tmp_path):
    work = make_workdir(LABS["01"], tmp_path, with_solution=False)
    proc = run_cli(mc_root, "lab", "check", "01", "--workdir", work, "-k", "9")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no task '9'" in proc.stderr and "4 The questions" in proc.stderr and "1 make-rootfs.sh" in proc.stderr
    german = run_cli(mc_root, "lab", "check", "01", "--workdir", work, "-k", "nichts", "--lang", "de")
    assert german.returncode == 125 and "keine Aufgabe 'nichts'" in german.stderr and "4 Die Fragen" in german.stderr


def test_hints_come_in_tiers():
    from minicontainer.labs import parse_docstring
    task = parse_docstring("Title\nde: Titel\n\nHint: read chroot(2)\nHint 2: chdir(\"..\")\n  in a loop\n"
                           "Hinweis: lies chroot(2)\nHinweis 2: chdir(\"..\") in einer Schleife\n", "test_x")
    assert task.text("en") == ("Title", ["read chroot(2)"])
    assert task.text("en", 2) == ("Title", ["read chroot(2)", 'chdir("..") in a loop'])
    assert task.text("de", 2) == ("Titel", ["lies chroot(2)", 'chdir("..") in einer Schleife'])


@pytest.mark.root
def test_lab04_check_leaves_the_students_image_alone(lab_root, tmp_path):
    """`lab check 04` builds app.toml for its checks, and the student's own lab04-app is there
    afterwards: untouched when it was built from the same app.toml, put back when it was built
    from an older one."""
    work = make_workdir(LABS["04"], tmp_path, with_solution=True)
    older = tmp_path / "older.toml"
    older.write_text((work / "app.toml").read_text().replace("Servus from lab 04", "an older greeting"))
    assert run_cli(lab_root, "image", "build", older).returncode == 0
    check = run_cli(lab_root, "lab", "check", "04", "--workdir", work, "-k", "1", wrap=IN_OWN_NETNS)
    assert check.returncode == 0, check.stdout + check.stderr
    greet = run_cli(lab_root, "run", "--rm", "--net", "none", "lab04-app", "greet")
    assert (greet.returncode, greet.stdout) == (0, "an older greeting\n"), greet.stderr

    assert run_cli(lab_root, "image", "build", work / "app.toml").returncode == 0
    before = run_cli(lab_root, "image", "inspect", "lab04-app").stdout
    check = run_cli(lab_root, "lab", "check", "04", "--workdir", work, "-k", "1", wrap=IN_OWN_NETNS)
    assert check.returncode == 0, check.stdout + check.stderr
    assert run_cli(lab_root, "image", "inspect", "lab04-app").stdout == before, "the image was replaced"


@pytest.mark.root
def test_lab02_scripts_that_only_echo_fail(lab_root, tmp_path):
    """A check observes the behaviour the task asks for, not the text: scripts that print the
    expected lines without making a container or a namespace fail, and say why."""
    work = make_workdir(LABS["02"], tmp_path, with_solution=True)
    (work / "compare-ns.sh").write_text("printf '%s\\n' 'cgroup different' 'ipc different' 'mnt different' "
                                        "'net different' 'pid different' 'time same' 'user same' 'uts different'\n")
    (work / "uts.sh").write_text("echo lab02\n")
    proc = run_cli(lab_root, "lab", "check", "02", "--workdir", work, "-k", "1,2", wrap=IN_OWN_NETNS)
    assert proc.returncode == 1 and "0 of 2 tasks done." in proc.stdout, proc.stdout + proc.stderr
    assert "--net host" in proc.stdout and "no `unshare --uts` ran" in proc.stdout, proc.stdout


@pytest.mark.root
def test_a_lab_check_stopped_by_sigterm_removes_what_it_started(lab_root, tmp_path):
    """A grader's timeout (SIGTERM) in the middle of lab 10's check: the check's teardown still
    runs — no container, pod or controller of the lab is left, and the exit status says 143."""
    from minicontainer.api import controller_status, list_containers, list_pods
    work = make_workdir(LABS["10"], tmp_path, with_solution=True)
    proc = subprocess.Popen([*IN_OWN_NETNS, sys.executable, "-m", "minicontainer", "--root", str(lab_root),
                             "lab", "check", "10", "--workdir", str(work), "-k", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not any(
                r.name.startswith("lab10-web-") and r.status == "running" for r in list_containers(lab_root)):
            time.sleep(0.1)
        assert proc.poll() is None, "the check ended before a replica ran: " + proc.communicate()[0]
        proc.terminate()
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, out
    assert [r.name for r in list_containers(lab_root)] == [], out
    assert list_pods(lab_root) == [] and not controller_status(lab_root)["running"], out
