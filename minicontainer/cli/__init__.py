"""The `minicontainer` command: verbs that parse, call the library API, and print.

    minicontainer run [OPTIONS] IMAGE [COMMAND…]     runtime.py via api.Container
    minicontainer ps [-a] | rm [-f] NAME…            state.py via api
    minicontainer image import|build|ls|rm|inspect   storage/images.py, rootfs-builder/

Nothing here knows how containers work: that is the library's job. main() picks a parser —
the fast lane for a well-formed `run` (run_verb.py, no typer), typer for everything else
(typer_app.py and the verb files) — and turns every error into Docker's exit statuses:
one line and 125 for minicontainer's own errors, never a traceback.
"""
from __future__ import annotations

import os
import sys

from ..errors import MinicontainerError


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script. Ends with os._exit once the output is flushed:
    nothing is left to clean up by then, and the interpreter's own shutdown would add
    ~20 ms to every call."""
    args = sys.argv[1:] if argv is None else argv
    code = exit_status(lambda: dispatch(args))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def dispatch(args: list[str]) -> int:
    from .run_verb import parse_run_args, run_container
    parsed = parse_run_args(args) if "run" in args else None
    if parsed is not None:
        return run_container(**parsed)
    from .typer_app import dispatch as typer_dispatch
    return typer_dispatch(args)


def exit_status(call) -> int:
    """call()'s status; every error becomes one line on stderr and Docker's exit status."""
    try:
        return call()
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except MinicontainerError as e:
        return report(str(e), e.exit_code)
    except KeyboardInterrupt:
        return report("interrupted", 130)
    except PermissionError as e:
        return report(f"{e.strerror}: {e.filename} — minicontainer needs root (try sudo)")
    except OSError as e:                      # e.g. --root below a regular file
        where = f": {e.filename}" if e.filename else ""
        return report(f"{e.strerror or e}{where}")
    except Exception as e:                    # a bug: still one line, the traceback on request
        if os.environ.get("MINICONTAINER_DEBUG"):
            raise
        return report(f"internal error: {type(e).__name__}: {e} "
                      "(MINICONTAINER_DEBUG=1 shows the traceback; please report it)")


def report(message: str, code: int = 125) -> int:
    print(f"minicontainer: {message}", file=sys.stderr)
    return code


def fail(message: str, code: int = 125) -> None:
    """One line on stderr and Docker's exit status for minicontainer's own errors."""
    raise SystemExit(report(message, code))


def __getattr__(name: str):
    """`from minicontainer.cli import app` still works (the typer app loads on first use)."""
    if name in ("app", "image_app", "root_of"):
        from . import typer_app
        return getattr(typer_app, name)
    raise AttributeError(name)
