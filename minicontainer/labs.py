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

Two languages. `--lang de` makes EVERY line German, the reasons included. A check writes each
message it fails with in both languages and `msg` picks one (the language travels to the checks
in $MC_LAB_LANG):

    from minicontainer.labs import msg
    assert ok, msg(f"replicas.sh is missing in {work}", f"replicas.sh fehlt in {work}")
    pytest.fail(msg("…", "…"), pytrace=False)

Hints come in tiers, so the first ✗ nudges rather than solves. In a check's docstring:

    Hint: which man page or concept to read               (shown with every ✗)
    Hint 2: the next step, more concrete                   (shown with --hint 2)
    Hinweis: / Hinweis 2:                                  the same in German
The full answer is never a hint: it stays in solution/.

`-k` picks tasks by the number `lab check` prints (`-k 4`, `-k 1,3`) or by a word of a title or
check name (`-k answers`); an unknown one is an error that lists the choices.

Stopped by SIGTERM (a grader's timeout, `kill`) or Ctrl-C, a check still cleans up: the
signal becomes a KeyboardInterrupt, pytest ends the running check and runs the fixtures'
teardowns (lab 10's removes its Deployment, pods and controller), and `lab check` exits 143.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from .errors import ConfigError
from .records import field, record

REPO = Path(__file__).resolve().parent.parent
LANG_ENV = "MC_LAB_LANG"         # en | de: the language `lab check` runs the checks in


def lab_lang() -> str:
    return "de" if os.environ.get(LANG_ENV) == "de" else "en"


def msg(en: str, de: str) -> str:
    """The message in the student's language (`lab check --lang de` → `de`). Checks and the
    labs' conftest write every reason, error and skip message through this."""
    return de if lab_lang() == "de" else en


def say_in(lang: str, en: str, de: str) -> str:
    """`msg` for code that knows the language itself (the runner, before the checks run)."""
    return de if lang == "de" else en


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


def find_lab(ref: str, lang: str = "en") -> Lab:
    """'1', '01', '01-chroot' or 'chroot' → the lab."""
    labs = list_labs()
    wanted = ref.strip().lower()
    for lab in labs:
        if wanted.isdigit() and int(wanted) == int(lab.number):
            return lab
        if wanted in (lab.slug, lab.slug[3:]):
            return lab
    known = ", ".join(lab.slug for lab in labs) or say_in(lang, f"none (no labs in {labs_dir()})",
                                                           f"keine (keine Labore in {labs_dir()})")
    raise ConfigError(say_in(lang, f"no lab {ref!r}: use a number or name from `minicontainer lab list` ({known})",
                             f"kein Labor {ref!r}: nimm eine Nummer oder einen Namen aus `minicontainer lab list` ({known})"))


def workdir_for(lab: Lab, workdir: str | os.PathLike | None = None) -> Path:
    """--workdir, else $MC_LAB_WORKDIR, else labs/NN-topic/work."""
    chosen = workdir or os.environ.get("MC_LAB_WORKDIR")
    return Path(chosen).resolve() if chosen else lab.path / "work"


def start_lab(lab: Lab, workdir: Path, force: bool = False, lang: str = "en") -> list[str]:
    """Copy starter/ into the work directory; existing files are kept unless force. Returns the
    names copied."""
    starter = lab.path / "starter"
    if not starter.is_dir():
        raise ConfigError(say_in(lang, f"{starter} is missing: the lab has no starter files",
                                 f"{starter} fehlt: das Labor hat keine Startdateien"))
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
    hint: str = ""                 # tier 1: the nudge
    hint_de: str = ""
    more: dict = field(default_factory=dict)       # tier → (hint, hint_de), tiers 2, 3, …

    def text(self, lang: str, level: int = 1) -> tuple[str, list[str]]:
        """(title, hints up to `level`) in `lang`."""
        de = lang == "de"
        hints = [(self.hint_de or self.hint) if de else self.hint]
        for tier in sorted(self.more):
            if tier <= level:
                en_hint, de_hint = self.more[tier]
                hints.append((de_hint or en_hint) if de else (en_hint or de_hint))
        return ((self.title_de or self.title) if de else self.title), [h for h in hints if h]


HINT_KEY = re.compile(r"^(de|Hint|Hinweis)(?: (\d+))?:")


def parse_docstring(doc: str | None, fallback: str) -> Task:
    """First line: title; `de: …` German title; `Hint: …` / `Hinweis: …` paragraphs, and the
    further tiers `Hint 2: …` / `Hinweis 2: …`."""
    lines = [line.strip() for line in (doc or "").strip().splitlines()]
    task = Task(lines[0] if lines and lines[0] else fallback)
    current = None                  # (key, tier) of the paragraph being read
    for line in lines[1:]:
        found = HINT_KEY.match(line)
        if found:
            current = (found[1], int(found[2] or 1))
            set_hint(task, *current, line[found.end():].strip())
        elif not line:
            current = None
        elif current and current[0] != "de":
            set_hint(task, *current, (get_hint(task, *current) + " " + line).strip())
    return task


def get_hint(task: Task, key: str, tier: int) -> str:
    if tier == 1:
        return task.hint if key == "Hint" else task.hint_de
    return task.more.get(tier, ("", ""))[0 if key == "Hint" else 1]


def set_hint(task: Task, key: str, tier: int, text: str) -> None:
    if key == "de":
        task.title_de = text
    elif tier == 1:
        setattr(task, "hint" if key == "Hint" else "hint_de", text)
    else:
        en_hint, de_hint = task.more.get(tier, ("", ""))
        task.more[tier] = (text, de_hint) if key == "Hint" else (en_hint, text)


def lab_tasks(lab: Lab) -> list[tuple[str, Task]]:
    """The lab's checks in file order, the order `lab check` numbers them: (name, Task)."""
    import ast
    tree = ast.parse(lab.checks.read_text())
    return [(node.name, parse_docstring(ast.get_docstring(node), node.name))
            for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def select_tasks(lab: Lab, keyword: str, lang: str = "en") -> list[str]:
    """`-k` → check names. Comma-separated task numbers (as printed) or words of a title or check
    name; an unknown one raises ConfigError listing the choices."""
    tasks = lab_tasks(lab)
    chosen: list[str] = []
    for wanted in (w.strip() for w in keyword.split(",")):
        if wanted.isdigit() and 1 <= int(wanted) <= len(tasks):
            matches = [tasks[int(wanted) - 1][0]]
        else:
            low = wanted.lower()
            matches = [name for name, task in tasks
                       if low and (low in name.lower() or low in task.title.lower() or low in task.title_de.lower())]
        if not matches:
            choices = "; ".join(f"{n} {task.text(lang)[0]}" for n, (_, task) in enumerate(tasks, 1))
            raise ConfigError(say_in(lang, f"lab {lab.number} has no task {wanted!r}: give -k a number or a word from a title: {choices}",
                                     f"Labor {lab.number} hat keine Aufgabe {wanted!r}: gib -k eine Nummer oder ein Wort aus einem Titel: {choices}"))
        chosen += [name for name in matches if name not in chosen]
    return chosen


# ── the pytest plugin that prints ✓/✗ ──────────────────────────────────────────────────

class Reporter:
    """Prints one line per task as it finishes, and the reason and hints of each failure."""

    def __init__(self, lang: str = "en", out=None, numbers: dict[str, int] | None = None, hint_level: int = 1):
        self.lang, self.out, self.hint_level = lang, out or sys.stdout, hint_level
        self.numbers = numbers or {}                       # check name → the task number shown
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
            self.errors.append(say_in(self.lang, "cannot load the checks: ", "die Checks lassen sich nicht laden: ")
                               + first_lines(report.longrepr, 6))

    def pytest_runtest_logreport(self, report):
        done = report.nodeid in self.results
        if report.when == "call" or (report.outcome != "passed" and not done):
            outcome = report.outcome
            reason = "" if outcome == "passed" else failure_reason(report, self.lang)
            if report.when == "teardown" and outcome == "failed" and done:
                return
            self.results[report.nodeid] = (outcome, reason)
            self.print_task(report.nodeid, outcome, reason)

    def print_task(self, nodeid: str, outcome: str, reason: str) -> None:
        name = nodeid.rpartition("::")[2]
        number = self.numbers.get(name) or (list(self.tasks).index(nodeid) + 1 if nodeid in self.tasks else "?")
        title, hints = self.tasks.get(nodeid, Task(nodeid)).text(self.lang, self.hint_level)
        mark = {"passed": "✓", "failed": "✗", "skipped": "–"}[outcome]
        self.say(f"  {mark} {number:>2}  {title}")
        pad = " " * 8
        de = self.lang == "de"
        if outcome == "failed":
            why = "warum" if de else "why"
            if reason:
                self.say(f"{pad}{why}:  " + reason.replace("\n", "\n" + pad + " " * (len(why) + 3)))
            for tier, hint in enumerate(hints, 1):
                label = ("Tipp" if de else "hint") + (f" {tier}" if tier > 1 else "")
                self.say(f"{pad}{label}: {hint}")
        elif outcome == "skipped" and reason:
            self.say(f"{pad}{'übersprungen' if de else 'skipped'}: {reason}")

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


def failure_reason(report, lang: str = "en") -> str:
    """The message a check failed with: its assertion message, without pytest's code listing.
    An exception the check did not expect is named as one (its text is the program's own)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):                          # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(longrepr)
    expected = re.match(r"^(AssertionError|Failed)(: |$)", message)
    message = re.sub(r"^(AssertionError|Failed): ", "", message)
    message = message.split("\nassert ")[0]                 # drop pytest's rewritten expression
    if not expected:
        message = say_in(lang, "the checker met an error it did not expect: ",
                         "der Checker ist auf einen unerwarteten Fehler gestossen: ") + message
    return first_lines(message, 8)


# ── lab check ─────────────────────────────────────────────────────────────────────────────

def check_lab(lab: Lab, workdir: Path, *, junit: str | None = None, lang: str = "en",
              root: str | None = None, keyword: str | None = None, hint_level: int = 1, out=None) -> int:
    """Run the lab's checks against `workdir`: 0 when every task passes, 1 otherwise. `keyword`
    is -k (task numbers or title words, see select_tasks); `hint_level` 2 adds the second hints."""
    import pytest
    out = out or sys.stdout
    numbers = {name: n for n, (name, _) in enumerate(lab_tasks(lab), 1)}
    targets = [f"{lab.checks}::{name}" for name in select_tasks(lab, keyword, lang)] if keyword else [str(lab.checks)]
    reporter = Reporter(lang, out, numbers, hint_level)
    header = f"lab {lab.number} — {lab.title_de if lang == 'de' else lab.title}"
    reporter.say(header)
    reporter.say(("Arbeitsverzeichnis: " if lang == "de" else "work dir: ") + str(workdir) + "\n")
    args = [*targets, "-p", "no:cacheprovider", "-p", "no:terminal",
            "--rootdir", str(labs_dir()), "-o", f"junit_suite_name=lab-{lab.number}"]
    if junit:
        args += [f"--junitxml={Path(junit).resolve()}"]
    # A private base for tmp_path: pytest would otherwise prune older numbered directories in
    # /tmp/pytest-of-USER, which may belong to a pytest run that is calling us.
    basetemp = tempfile.mkdtemp(prefix=f"mc-lab{lab.number}-")
    args += ["--basetemp", basetemp]
    saved = {k: os.environ.get(k) for k in ("MC_LAB_WORKDIR", "MINICONTAINER_ROOT", LANG_ENV)}
    os.environ["MC_LAB_WORKDIR"] = str(workdir)
    os.environ[LANG_ENV] = lang
    if root:
        os.environ["MINICONTAINER_ROOT"] = str(root)
    stopped = []

    def stop(signum, frame):                # the first SIGTERM only: the teardowns then run
        if not stopped:                     # to their end, a second one does not cut them off
            stopped.append(signum)
            raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = pytest.main(args, plugins=[reporter])
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(basetemp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if stopped:
        reporter.say("\n" + say_in(lang, "stopped (SIGTERM); what the checks had started is removed",
                                   "abgebrochen (SIGTERM); was die Checks gestartet hatten, ist entfernt"))
        return 128 + signal.SIGTERM
    for error in reporter.errors:
        reporter.say(f"  ✗ {error}")
    reporter.say("\n" + reporter.summary())
    if code in (0, 1) and not reporter.errors:
        return int(code)
    if not reporter.results:
        raise ConfigError(say_in(lang, f"the checks of lab {lab.number} could not run (pytest exit {int(code)}): "
                                       f"see the messages above, or run `pytest {lab.checks}`",
                                 f"die Checks von Labor {lab.number} liessen sich nicht ausführen (pytest-Status {int(code)}): "
                                 f"siehe die Meldungen oben, oder führe `pytest {lab.checks}` aus"))
    return 1
