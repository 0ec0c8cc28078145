"""Container: one container, configured at construction, run in the foreground or detached.

    Container(image, command, **options)   options are ContainerConfig's fields (config.py)
        .run() -> int                      prepare, start, wait, teardown (runtime.py)
        .start() -> str                    `run -d`: the same, under a supervisor (supervisor.py)

The core's entry point, below everything that builds on it: orchestration/ makes its pods'
containers with it (their options first through orchestration/pods.join_pod), and api.py's
Container adds `pod=NAME` the same way. Joining a pod is orchestration's business, and the
core must not import what imports it.
"""
from __future__ import annotations

from .config import ContainerConfig
from .explain import Explainer
from .state import ContainerRecord, open_store


class Container:
    """One container: configured at construction (validated at once), started by run()."""

    def __init__(self, image: str, command=(), *, root=None, explain: bool = False,
                 explainer: Explainer | None = None, **options):
        """explainer: who narrates the steps (default: an Explainer, printing if `explain`);
        tests pass their own (tests/crashing_explainer.py)."""
        self.config = ContainerConfig(image=image, command=list(command), **options).validate()
        self.store = open_store(root)
        self.explain = explainer or Explainer(explain)
        self.record: ContainerRecord | None = None

    def run(self) -> int:
        """Run in the foreground; returns the exit status (128+N if signal N killed it)."""
        from . import runtime
        ctx = runtime.Context(self.config, self.store, self.explain)
        if self.config.tty:
            from .tty import Console
            ctx.console = Console(interactive=self.config.interactive)
        try:
            return runtime.run(ctx)
        finally:
            self.record = ctx.record

    def start(self) -> str:
        """Run detached under a supervisor; returns the ID once PID 1 runs (`run -d`)."""
        from .supervisor import start_detached
        self.config.detach = True
        cid = start_detached(self)
        self.record = self.store.load(cid)
        return cid

    @property
    def id(self) -> str | None:
        return self.record.id if self.record else None

    @property
    def name(self) -> str | None:
        return self.record.name if self.record else None
