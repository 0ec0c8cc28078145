"""The lab runner behind `minicontainer lab list|start|check`.

A lab is a directory labs/NN-topic/ with

    README.md, README.de.md   the exercise (English, German): goals, background, steps, questions
    starter/                  the files a student starts from (scripts with TODOs, answers.toml)
    solution/                 the reference solution (same file names), for instructors and CI
    checks.py                 pytest tests, one per task; each docstring is the task's title,
                              its German title (a `de:` line), a `Hint:` and a `Hinweis:`

The student works in a *work directory*: labs/NN-topic/work/ (created from starter/ by
`lab start`), or the directory given by --workdir or $MC_LAB_WORKDIR. `lab check NN` runs
pytest on checks.py with that directory in $MC_LAB_WORKDIR and prints one line per task:

    ✓ 1  make-rootfs.sh builds a root directory that chroot can run
    ✗ 2  escape.c climbs out of a chroot
         why:  …the assertion's message…
         hint: …the docstring's Hint…

`--junit FILE` also writes pytest's JUnit XML, which grading systems read. The checks' shared
fixtures (work, mc, run_script, answers, …) are in labs/conftest.py.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import ConfigError
from .records import record

REPO = Path(__file__).resolve().parent.parent


def labs_dir() -> Path:
    return Path(os.environ.get("MC_LABS_DIR") or REPO / "labs")


@record
class Lab:
    number: str            # "01"
    path: Path             # …/labs/01-chroot
    title: str
    title_de: str

    @property
    def slug(self) -> str:
        return self.path.name

    @property
    def checks(self) -> Path:
        return self.path / "checks.py"


def read_title(readme: Path) -> str:
    """The first '# ' heading of a README, without a leading 'Lab NN —'."""
    try:
        for line in readme.read_text().splitlines():
            if line.startswith("# "):
                return re.sub(r"^(Lab|Labor)\s+\d+\s*[—:-]\s*", "", line[2:]).strip()
    except OSError:
        pass
    return readme.parent.name


def list_labs() -> list[Lab]:
    """Every labs/NN-*/ directory that has a checks.py, in number order."""
    labs = []
    root = labs_dir()
    for path in sorted(root.glob("[0-9][0-9]-*")):
        if (path / "checks.py").is_file():
            labs.append(Lab(path.name[:2], path, read_title(path / "README.md"),
                            read_title(path / "README.de.md")))
    return labs


def find_lab(ref: str) -> Lab:
    """'1', '01', '01-chroot' or 'chroot' → the lab."""
    labs = list_labs()
    wanted = ref.strip().lower()
    for lab in labs:
        if wanted.isdigit() and int(wanted) == int(lab.number):
            return lab
        if wanted in (lab.slug, lab.slug[3:]):
            return lab
    known = ", ".join(lab.slug for lab in labs) or f"none (no labs in {labs_dir()})"
    raise ConfigError(f"no lab {ref!r}: use a number or name from `minicontainer lab list` ({known})")


def workdir_for(lab: Lab, workdir: str | os.PathLike | None = None) -> Path:
    """--workdir, else $MC_LAB_WORKDIR, else labs/NN-topic/work."""
    chosen = workdir or os.environ.get("MC_LAB_WORKDIR")
    return Path(chosen).resolve() if chosen else lab.path / "work"


def start_lab(lab: Lab, workdir: Path, force: bool = False) -> list[str]:
    """Copy starter/ into the work directory; existing files are kept unless force. Returns the
    names copied."""
    starter = lab.path / "starter"
    if not starter.is_dir():
        raise ConfigError(f"{starter} is missing: the lab has no starter files")
    copied = []
    for src in sorted(starter.rglob("*")):
        rel = src.relative_to(starter)
        dst = workdir / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif force or not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied.append(str(rel))
    return copied


# ── task metadata from the check's docstring ─────────────────────────────────────────────

@record
class Task:
    title: str
    title_de: str = ""
    hint: str = ""
    hint_de: str = ""

    def text(self, lang: str) -> tuple[str, str]:
        if lang == "de":
            return self.title_de or self.title, self.hint_de or self.hint
        return self.title, self.hint


def parse_docstring(doc: str | None, fallback: str) -> Task:
    """First line: title; `de: …` German title; `Hint: …` / `Hinweis: …` paragraphs."""
    lines = [line.strip() for line in (doc or "").strip().splitlines()]
    task = Task(lines[0] if lines and lines[0] else fallback)
    current = None
    for line in lines[1:]:
        for key, attr in (("de:", "title_de"), ("Hint:", "hint"), ("Hinweis:", "hint_de")):
            if line.startswith(key):
                current = attr
                setattr(task, attr, line[len(key):].strip())
                break
        else:
            if not line:
                current = None
            elif current in ("hint", "hint_de"):
                setattr(task, current, (getattr(task, current) + " " + line).strip())
    return task


# ── the pytest plugin that prints ✓/✗ ──────────────────────────────────────────────────

class Reporter:
    """Prints one line per task as it finishes, and the reason and hint of each failure."""

    def __init__(self, lang: str = "en", out=None):
        self.lang, self.out = lang, out or sys.stdout
        self.tasks: dict[str, Task] = {}
        self.selected: list[str] = []                      # after -k
        self.results: dict[str, tuple[str, str]] = {}      # nodeid → (outcome, reason)
        self.errors: list[str] = []

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def pytest_collection_modifyitems(self, items):
        for item in items:
            doc = getattr(getattr(item, "obj", None), "__doc__", None)
            self.tasks[item.nodeid] = parse_docstring(doc, item.name)

    def pytest_collection_finish(self, session):
        self.selected = [item.nodeid for item in session.items]

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"cannot load the checks: {first_lines(report.longrepr, 6)}")

    def pytest_runtest_logreport(self, report):
        done = report.nodeid in self.results
        if report.when == "call" or (report.outcome != "passed" and not done):
            outcome = report.outcome
            reason = "" if outcome == "passed" else failure_reason(report)
            if report.when == "teardown" and outcome == "failed" and done:
                return
            self.results[report.nodeid] = (outcome, reason)
            self.print_task(report.nodeid, outcome, reason)

    def print_task(self, nodeid: str, outcome: str, reason: str) -> None:
        number = list(self.tasks).index(nodeid) + 1 if nodeid in self.tasks else "?"
        title, hint = self.tasks.get(nodeid, Task(nodeid)).text(self.lang)
        mark = {"passed": "✓", "failed": "✗", "skipped": "–"}[outcome]
        self.say(f"  {mark} {number:>2}  {title}")
        pad = " " * 8
        if outcome == "failed":
            why, tip = ("warum", "Tipp") if self.lang == "de" else ("why", "hint")
            if reason:
                self.say(f"{pad}{why}:  " + reason.replace("\n", "\n" + pad + " " * (len(why) + 3)))
            if hint:
                self.say(f"{pad}{tip}: {hint}")
        elif outcome == "skipped" and reason:
            self.say(f"{pad}skipped: {reason}")

    def summary(self) -> str:
        passed = sum(1 for outcome, _ in self.results.values() if outcome == "passed")
        total = len(self.selected or self.tasks)
        if self.lang == "de":
            return f"{passed} von {total} Aufgaben erledigt."
        return f"{passed} of {total} tasks done."


def first_lines(text, n: int, width: int = 200) -> str:
    lines = [line if len(line) <= width else line[:width] + " …"
             for line in str(text).strip().splitlines() if line.strip()]
    out = "\n".join(lines[:n])
    return out + (" …" if len(lines) > n else "")


def failure_reason(report) -> str:
    """The message a check failed with: its assertion message, without pytest's code listing."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):                          # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(longrepr)
    message = re.sub(r"^(AssertionError|Failed): ", "", message)
    message = message.split("\nassert ")[0]                 # drop pytest's rewritten expression
    return first_lines(message, 8)


# ── lab check ─────────────────────────────────────────────────────────────────────────────

def check_lab(lab: Lab, workdir: Path, *, junit: str | None = None, lang: str = "en",
              root: str | None = None, keyword: str | None = None, out=None) -> int:
    """Run the lab's checks against `workdir`: 0 when every task passes, 1 otherwise."""
    import pytest
    out = out or sys.stdout
    reporter = Reporter(lang, out)
    header = f"lab {lab.number} — {lab.title_de if lang == 'de' else lab.title}"
    reporter.say(header)
    reporter.say(("Arbeitsverzeichnis: " if lang == "de" else "work dir: ") + str(workdir) + "\n")
    args = [str(lab.checks), "-p", "no:cacheprovider", "-p", "no:terminal",
            "--rootdir", str(labs_dir()), "-o", f"junit_suite_name=lab-{lab.number}"]
    if junit:
        args += [f"--junitxml={Path(junit).resolve()}"]
    if keyword:
        args += ["-k", keyword]
    # A private base for tmp_path: pytest would otherwise prune older numbered directories in
    # /tmp/pytest-of-USER, which may belong to a pytest run that is calling us.
    basetemp = tempfile.mkdtemp(prefix=f"mc-lab{lab.number}-")
    args += ["--basetemp", basetemp]
    saved = {k: os.environ.get(k) for k in ("MC_LAB_WORKDIR", "MINICONTAINER_ROOT")}
    os.environ["MC_LAB_WORKDIR"] = str(workdir)
    if root:
        os.environ["MINICONTAINER_ROOT"] = str(root)
    try:
        code = pytest.main(args, plugins=[reporter])
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for error in reporter.errors:
        reporter.say(f"  ✗ {error}")
    reporter.say("\n" + reporter.summary())
    if code in (0, 1) and not reporter.errors:
        return int(code)
    if not reporter.results:
        raise ConfigError(f"the checks of lab {lab.number} could not run (pytest exit {int(code)}): "
                          f"see the messages above, or run `pytest {lab.checks}`")
    return 1
