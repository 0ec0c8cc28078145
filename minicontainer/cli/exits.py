"""Every error becomes one line on stderr and Docker's exit status — never a traceback.

    125   minicontainer's own error (a bad option, no such image, a failed step), as Docker;
          MinicontainerError.exit_code may say otherwise (126/127: the command cannot run)
    130   interrupted (Ctrl-C)
    N     a verb's own status (`run` returns the container's)
"""
from __future__ import annotations

import os
import sys

from ..errors import MinicontainerError


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


def exit_now(code: int) -> None:
    """Flush stdout and stderr, then os._exit(code): a command-line call has nothing left to
    clean up by then, and the interpreter's own shutdown would add ~20 ms to every call
    (minicontainer's CLI; minicontainer-oci, which engines call several times a container)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def report(message: str, code: int = 125) -> int:
    print(f"minicontainer: {message}", file=sys.stderr)
    return code


def fail(message: str, code: int = 125) -> None:
    """One line on stderr and Docker's exit status for minicontainer's own errors."""
    raise SystemExit(report(message, code))
