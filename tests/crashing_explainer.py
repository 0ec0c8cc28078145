"""Fault injection for tests/test_gc.py: a run whose owner is SIGKILLed at a named step.

    python tests/crashing_explainer.py ROOT STEP [-d] [-t] [--init] IMAGE [COMMAND…]

runs IMAGE as `minicontainer --root ROOT run [-d] [-t] [--init] IMAGE COMMAND` would, except that
its Explainer is a CrashingExplainer(STEP): when the run sequence announces a step whose title
starts with STEP, the process that owns the run (this one, or the supervisor with -d) dies by
SIGKILL. A step in a child goes on, orphaned, as after a real crash of its parent. The package
knows nothing of this: Container takes the explainer as an argument (api.Container).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

from minicontainer.explain import Explainer


class CrashingExplainer(Explainer):
    """SIGKILLs the run's owner when the step `target` is announced.

    A child cannot simply kill(owner): PID 1 of the new PID namespace cannot even name a
    process outside it. So the owner keeps a thread blocked on a pipe; a child writes one
    byte, and the owner's thread SIGKILLs its own process."""

    def __init__(self, target: str):
        super().__init__(False)
        self.target, self.owner, self.trigger = target, 0, -1

    def define(self, var: str, value: str) -> None:
        if not self.owner:                          # prepare() runs in the owner: arm it there
            self.owner = os.getpid()
            r, self.trigger = os.pipe()
            threading.Thread(target=self.kill_owner_when_told, args=(r,), daemon=True).start()
        super().define(var, value)

    @staticmethod
    def kill_owner_when_told(r: int) -> None:
        os.read(r, 1)
        os.kill(os.getpid(), signal.SIGKILL)

    def step(self, title: str, *args, **kwargs) -> None:
        super().step(title, *args, **kwargs)
        if not title.startswith(self.target):
            return
        if os.getpid() == self.owner or self.trigger < 0:
            os.kill(os.getpid(), signal.SIGKILL)
        os.write(self.trigger, b"!")
        time.sleep(0.2)                             # the owner is gone before this step goes on


def main(argv: list[str]) -> int:
    from minicontainer.api import Container
    root, step, *rest = argv
    flags = {"-d": "detach", "-t": "tty", "--init": "init"}
    options = {}
    while rest and rest[0] in flags:
        options[flags[rest.pop(0)]] = True
    image, *command = rest
    null = os.open("/dev/null", os.O_RDONLY)        # as `run` without -i: stdin reads EOF
    os.dup2(null, 0)
    container = Container(image, command, root=root, explainer=CrashingExplainer(step), **options)
    if options.get("detach"):
        print(container.start())
        return 0
    return container.run()


if __name__ == "__main__":
    from minicontainer.cli.exits import exit_status
    sys.exit(exit_status(lambda: main(sys.argv[1:])))
