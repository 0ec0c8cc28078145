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
"""
from __future__ import annotations

import os


class Explainer:
    """Prints steps when enabled; costs one attribute check when not."""

    def __init__(self, enabled: bool = False, fd: int = 2):
        self.enabled, self.fd = enabled, fd
        self.who = "minicontainer"
        self.names: dict[str, str] = {}     # long path → shell variable, e.g. $MERGED
        self.report_fd: int | None = None   # a child's message pipe: "at TITLE" for each step

    def define(self, var: str, value: str) -> None:
        """Print `VAR=value` once; later steps show $VAR instead of the long path."""
        if self.enabled:
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
        lines = [f"\n▸ [{self.who}] {title}"]
        if shell:
            lines.append(f"    $ {shell}")
        if syscall or man:
            lines.append("    " + "   ".join(p for p in (f"syscall: {syscall}" if syscall else "",
                                                        f"man: {man}" if man else "") if p))
        if why:
            lines.append(f"    why: {why}")
        self._write("\n".join(lines) + "\n")

    def detail(self, shell: str, why: str = "") -> None:
        """A sub-step given as shell, e.g. each cgroup file written (`echo 33554432 > …`)."""
        if self.enabled:
            self._write(f"    $ {shell}" + (f"    # {why}" if why else "") + "\n")

    def callback(self):
        """The `explain(shell, why)` callable that cgroups/ and network/ accept, or None."""
        return self.detail if self.enabled else None
