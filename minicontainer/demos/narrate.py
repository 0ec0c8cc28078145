"""A tiny framework for classroom demos: narration, shown commands, a pause between steps.

A demo is a module with TITLE, SUMMARY and run(demo). It talks to the room through a Demo:

    demo.say("chroot only changes where path lookups start …")     narration, wrapped
    demo.step("Escape from a chroot container")                     a numbered step; pauses first
    demo.mc("run", "--rm", "busybox", "hostname")                   shows `$ minicontainer …`, runs it
    demo.sh("cat /sys/fs/cgroup/…")                                 shows `$ …`, runs it in bash
    demo.columns("host", left, "container", right)                  two views side by side

Without --auto, each step waits for Enter (so the teacher talks at their own pace); with --auto
everything runs straight through (the test suite runs every demo that way). Commands are real:
what the room sees is what the machine did.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ..errors import MinicontainerError


class DemoError(MinicontainerError):
    """A demo could not go on (a tool is missing, a command failed unexpectedly)."""


class Demo:
    def __init__(self, title: str, *, auto: bool = False, delay: float = 0.0, root: str | None = None,
                 out=None):
        self.title, self.auto, self.delay = title, auto, delay
        self.root = root or os.environ.get("MINICONTAINER_ROOT")
        self.out = out or sys.stdout
        self.steps = 0
        self.color = self.out.isatty() and os.environ.get("NO_COLOR") is None
        self.width = min(shutil.get_terminal_size((100, 24)).columns, 110)
        self.cleanups: list = []

    # ── output ────────────────────────────────────────────────────────────────────────────
    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def banner(self) -> None:
        self.print(self._style(f"━━ {self.title} ━━", "1"))

    def say(self, text: str) -> None:
        """Narration: dedented, wrapped, marked so it stands apart from command output."""
        for paragraph in textwrap.dedent(text).strip().split("\n\n"):
            wrapped = textwrap.fill(" ".join(paragraph.split()), self.width - 4)
            self.print(self._style(textwrap.indent(wrapped, "  │ "), "36"))

    def step(self, title: str) -> None:
        self.steps += 1
        self.pause()
        self.print(self._style(f"\n▶ {self.steps}. {title}", "1;33"))

    def pause(self) -> None:
        if self.auto:
            if self.delay:
                time.sleep(self.delay)
            return
        try:
            input(self._style("  [Enter: next step] ", "2"))
        except EOFError:
            self.auto = True                # no one at the keyboard: go on by ourselves

    def show(self, command: str) -> None:
        self.print(self._style(f"$ {command}", "1;32"))

    def output(self, text: str, limit: int = 25) -> None:
        lines = text.rstrip("\n").splitlines()
        for line in lines[:limit]:
            self.print(line[: self.width] if self.color else line)     # a projector: cut long lines
        if len(lines) > limit:
            self.print(f"… ({len(lines) - limit} more lines)")

    def columns(self, left_title: str, left: list[str], right_title: str, right: list[str]) -> None:
        """Two listings side by side, e.g. the host's view and the container's view."""
        half = (self.width - 3) // 2
        self.print(self._style(f"{left_title:<{half}} │ {right_title}", "1"))
        self.print("─" * half + "─┼─" + "─" * half)
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            self.print(f"{a[:half]:<{half}} │ {b[:half]}")
        self.print()

    # ── running things ────────────────────────────────────────────────────────────────────
    def env(self) -> dict:
        """Our environment, with MINICONTAINER_ROOT and a `minicontainer` command on PATH that
        runs this very Python's minicontainer (the shell lines shown work as typed)."""
        env = dict(os.environ)
        if self.root:
            env["MINICONTAINER_ROOT"] = str(self.root)
        env["PATH"] = f"{self.shim_dir()}:{env.get('PATH') or '/usr/sbin:/usr/bin:/sbin:/bin'}"
        return env

    def shim_dir(self) -> str:
        if not getattr(self, "_shims", None):
            import tempfile
            self._shims = tempfile.mkdtemp(prefix="mc-demo-bin-")
            script = Path(self._shims) / "minicontainer"
            script.write_text(f"#!/bin/sh\nexec {sys.executable} -m minicontainer \"$@\"\n")
            script.chmod(0o755)
            self.on_exit(lambda: shutil.rmtree(self._shims, ignore_errors=True))
        return self._shims

    def mc_argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "minicontainer", *map(str, args)]

    def mc(self, *args, show: bool = True, check: bool = False, timeout: float = 120,
           input: str | None = None) -> subprocess.CompletedProcess:
        """Run the CLI as the audience would type it; print the command and its output."""
        if show:
            self.show("minicontainer " + " ".join(shlex.quote(str(a)) for a in args))
        proc = subprocess.run(self.mc_argv(*args), capture_output=True, text=True, timeout=timeout,
                              env=self.env(), input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if show:
            # On a terminal a warning comes before the container's output (the CLI says it before
            # the container starts); captured apart, it is put back in front.
            errors = proc.stderr.splitlines(keepends=True)
            warnings = [line for line in errors if line.startswith("minicontainer: warning:")]
            self.output("".join(warnings) + proc.stdout + "".join(l for l in errors if l not in warnings))
        if check and proc.returncode != 0:
            raise DemoError(f"`minicontainer {' '.join(map(str, args))}` failed (exit {proc.returncode}): "
                            f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")
        return proc

    def mc_background(self, *args, show: bool = True, **popen) -> subprocess.Popen:
        if show:
            self.show("minicontainer " + " ".join(shlex.quote(str(a)) for a in args) + " &")
        return subprocess.Popen(self.mc_argv(*args), env=self.env(), text=True, **popen)

    def sh(self, command: str, *, show: bool = True, check: bool = False, timeout: float = 60,
           display: str | None = None) -> subprocess.CompletedProcess:
        """Run a shell command on the host (bash -c); print it and its output."""
        if show:
            self.show(display or command)
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout,
                              env=self.env(), stdin=subprocess.DEVNULL)
        if show:
            self.output(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            raise DemoError(f"`{display or command}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc

    def need(self, *tools: str) -> None:
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            raise DemoError(f"this demo needs {', '.join(missing)}: install it (`minicontainer doctor` "
                            "lists the packages)")

    def ensure_image(self, name: str = "busybox") -> str:
        """The image the demo uses, built from rootfs-builder's recipe if the store lacks it."""
        if self.mc("image", "inspect", name, show=False).returncode != 0:
            self.say(f"(first, the {name} image: built from rootfs-builder/recipes/{name}.toml)")
            self.mc("image", "build", name, check=True, timeout=600)
        return name

    def state_root(self) -> Path:
        from ..api import state_root
        return state_root(self.root)

    def on_exit(self, cleanup) -> None:
        self.cleanups.append(cleanup)

    def finish(self) -> None:
        """Run the cleanups, last registered first (one may register another: the shim dir)."""
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                cleanup()
            except Exception as e:          # cleanup must not hide the demo's own result
                self.print(f"(cleanup: {e})")
