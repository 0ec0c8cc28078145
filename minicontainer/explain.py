"""--explain: narrate each step of the run sequence as it happens, for students.

Every step function in runtime.py and rootfs.py calls `ctx.explain.step(...)` right before the
system call it describes, so the narration and the code cannot drift apart. Each step shows:

    ▸ what happens and who does it (the CLI process, the setup child, or the container's PID 1)
      $ the equivalent shell command
      syscall: the call with its flags          man: where to read more
      why it matters, in one sentence

Output goes to stderr with os.write, because three processes (parent, setup child, PID 1)
share the terminal and Python's buffered streams would repeat or reorder lines across fork().

An Explainer is handed to the run sequence by its caller (`Container(…, explainer=…)`), so a
test can pass its own — tests/crashing_explainer.py kills the run at a named step.

To fit a screen, repeats are shown once, as the loop they are:
  * a step that differs from the one before only in one word (`mount cgroup on …/cpu`, `…/cpuacct`,
    …) is printed in full the first time; the others become one `for c in …; do …; done` line;
  * a step's shell lines that differ only in one path component (mkdir, `echo 0 > …/tasks` and
    rmdir once per cgroup controller) become one loop line too.
Held-back lines are written before the next step, before fork() and at exit, never lost.
`--explain=brief` prints one line per step: who, what, and its shell equivalent.
"""
from __future__ import annotations

import os
import re
import weakref


class Explainer:
    """Prints steps when enabled; costs one attribute check when not."""

    def __init__(self, enabled: bool | str = False, fd: int = 2, brief: bool = False):
        self.enabled, self.fd = bool(enabled), fd
        self.brief = brief or enabled == "brief"            # --explain=brief: one line per step
        self.who = "minicontainer"
        self.names: dict[str, str] = {}     # long path → shell variable, e.g. $MERGED
        self.report_fd: int | None = None   # a child's message pipe: "at TITLE" for each step
        self.details: list[tuple[str, str]] = []        # this step's shell lines, grouped when it ends
        self.last: tuple | None = None                  # (who, title, shell, why) of the last step shown
        self.repeats: list[str] = []                    # the varying word of steps that repeat it
        self.first_value = ""                           # …and that word in the step shown
        if enabled:
            flush_before_fork(self)

    def define(self, var: str, value: str) -> None:
        """Print `VAR=value` once; later steps show $VAR instead of the long path."""
        if self.enabled:
            self.flush()
            if not self.brief:
                self._write(f"    {var}={value}\n")
        self.names[str(value)] = f"${var}"

    def _short(self, text: str) -> str:
        for long, var in sorted(self.names.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(long, var)
        return text

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, self._short(text).encode())
        except OSError:                 # the reader went away (`… 2>&1 | head`): stop narrating,
            self.enabled = False        # but never let the narration break the container

    def step(self, title: str, shell: str = "", syscall: str = "", man: str = "", why: str = "") -> None:
        if self.report_fd is not None:      # so a child that dies is named by its step (runtime.Report)
            os.write(self.report_fd, b"at " + title.encode(errors="replace") + b"\n")
        if not self.enabled:
            return
        self.flush_details()
        value = self.repeat_value(title, shell, why)
        if value is not None:
            self.repeats.append(value)
            return
        self.flush()
        self.last = (self.who, title, shell, why)
        if self.brief:                      # one line: who, what, and the start of its shell line
            shown = self._short(shell)
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            self._write(f"▸ [{self.who}] {title}" + (f"   $ {shown}" if shown else "") + "\n")
            return
        lines = [f"\n▸ [{self.who}] {title}"]
        if shell:
            lines.append(f"    $ {shell}")
        if syscall or man:
            lines.append("    " + "   ".join(p for p in (f"syscall: {syscall}" if syscall else "",
                                                        f"man: {man}" if man else "") if p))
        if why:
            lines.append(f"    why: {why}")
        self._write("\n".join(lines) + "\n")

    def section(self, title: str) -> None:
        """A heading between parts of the narration, e.g. the clean-up after the container exits."""
        if self.enabled:
            self.flush()
            self.last = None
            self._write(f"\n── {title} " + "─" * max(0, 60 - len(title)) + "\n")

    def detail(self, shell: str, why: str = "") -> None:
        """A sub-step given as shell, e.g. each cgroup file written (`echo 33554432 > …`)."""
        if self.enabled:
            self.flush_repeats()
            self.details.append((shell, why))

    def callback(self):
        """The `explain(shell, why)` callable that cgroups/ and network/ accept, or None."""
        return self.detail if self.enabled else None

    # ── repeats, shown as loops ──────────────────────────────────────────────────────────

    def repeat_value(self, title: str, shell: str, why: str) -> str | None:
        """The one word in which this step differs from the last one shown (its shell line the
        same with that word swapped), or None if it is a step of its own."""
        if self.last is None or self.last[0] != self.who or self.last[3] != why:
            return None
        varying = varying_part(self.last[1], title)
        if varying is None or swap_word(self.last[2], varying[0], varying[1]) != shell:
            return None
        if self.repeats and varying[0] != self.first_value:
            return None
        self.first_value = varying[0]
        return varying[1]

    def flush_repeats(self) -> None:
        if self.repeats:
            values = [self.first_value, *self.repeats]
            loop = swap_word(self.last[2], self.first_value, "$c")
            self._write(f"    ↻ the same for {', '.join(self.repeats)}"
                        + ("" if self.brief or not loop else f":\n    $ for c in {' '.join(values)}; do {loop}; done")
                        + "\n")
        self.repeats = []

    def flush_details(self) -> None:
        if self.details and not self.brief:
            self._write("".join(f"    $ {shell}" + (f"    # {why}" if why else "") + "\n"
                                for shell, why in group_as_loops(self.details)))
        self.details = []

    def flush(self) -> None:
        """Write what is held back (a step's shell lines, the repeats of a step)."""
        if self.enabled:
            self.flush_details()
            self.flush_repeats()


def varying_part(a: str, b: str) -> tuple[str, str] | None:
    """Two texts that differ in one thing only, each time after the same prefix up to a '/', ','
    or '=': the differing parts ("…/cgroup/cpu", "…/cgroup/cpuacct" → ("cpu", "cpuacct"))."""
    words_a, words_b = a.split(" "), b.split(" ")
    if len(words_a) != len(words_b):
        return None
    found = set()
    for x, y in zip(words_a, words_b):
        if x != y:
            start = len(os.path.commonprefix([x, y]))
            while start and x[start - 1] not in "/,=":
                start -= 1
            found.add((x[start:], y[start:]))
    if len(found) != 1:
        return None
    (x, y), = found
    return (x, y) if "/" not in x + y else None


def swap_word(text: str, old: str, new: str) -> str:
    """`old` replaced by `new` wherever it stands as a word of its own (not inside "cpuacct")."""
    if not old:
        return text
    return re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w.-])", new.replace("\\", "\\\\"), text)


def group_as_loops(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(shell, why) lines; those with the same why that differ in one path component only
    become one `for c in A B …; do …/$c/…; done` line, where the first of them stood."""
    groups: list[dict] = []
    for shell, why in lines:
        parts = shell.split("/")
        for group in groups:
            if group["why"] != why or len(group["parts"]) != len(parts):
                continue
            differ = [i for i, (x, y) in enumerate(zip(group["parts"], parts)) if x != y]
            if len(differ) == 1 and group["index"] in (None, differ[0]):
                group["index"] = differ[0]
                group["values"].append(parts[differ[0]])
                break
        else:
            groups.append({"why": why, "parts": parts, "index": None, "values": [], "shell": shell})
    out = []
    for group in groups:
        if group["index"] is None:
            out.append((group["shell"], group["why"]))
            continue
        parts = list(group["parts"])
        values = [parts[group["index"]], *group["values"]]
        parts[group["index"]] = "$c"
        out.append((f"for c in {' '.join(values)}; do {'/'.join(parts)}; done", group["why"]))
    return out


def flush_before_fork(explainer: Explainer) -> None:
    """Held-back lines are written before fork() (or the child would write them again)."""
    ref = weakref.ref(explainer)

    def flush() -> None:
        alive = ref()
        if alive is not None:
            alive.flush()
    os.register_at_fork(before=flush)

