"""The `minicontainer` command: verbs that parse, call the library API, and print.

    minicontainer run [OPTIONS] IMAGE [COMMAND…]     runtime.py via api.Container
    minicontainer ps [-a] | rm [-f] NAME…            state.py via api
    minicontainer image import|build|ls|rm|inspect   storage/images.py, rootfs-builder/

Nothing here knows how containers work: that is the library's job. main() picks a parser —
the fast lane for a well-formed `run` (run_verb.py, no typer), typer for everything else
(typer_app.py and the verb files) — and turns every error into Docker's exit statuses:
one line and 125 for minicontainer's own errors, never a traceback (exits.py).

The rule that keeps it thin: of minicontainer, cli/ imports only minicontainer.api and
minicontainer.errors (tests/test_cli_fastlane.py checks it). A new verb calls a library
function that api.py defines and lists in its __all__.
"""
from __future__ import annotations

import sys

from .exits import exit_now, exit_status


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script. Ends with os._exit once the output is flushed
    (exits.exit_now): no interpreter shutdown."""
    args = sys.argv[1:] if argv is None else argv
    exit_now(exit_status(lambda: dispatch(args)))


def dispatch(args: list[str]) -> int:
    from .run_verb import parse_run_args, run_container
    parsed = parse_run_args(args) if "run" in args else None
    if parsed is not None:
        return run_container(**parsed)
    from .typer_app import dispatch as typer_dispatch
    return typer_dispatch(args)


def __getattr__(name: str):
    """`from minicontainer.cli import app` still works (the typer app loads on first use)."""
    if name in ("app", "image_app", "root_of"):
        from . import typer_app
        return getattr(typer_app, name)
    raise AttributeError(name)
