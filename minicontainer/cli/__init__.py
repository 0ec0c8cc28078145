"""The `minicontainer` command: typer verbs that parse, call the library API, and print.

    minicontainer run [OPTIONS] IMAGE [COMMAND…]     runtime.py via api.Container
    minicontainer ps [-a] | rm [-f] NAME…            state.py via api
    minicontainer image import|build|ls|rm|inspect   storage/images.py, rootfs-builder/

Nothing here knows how containers work: that is the library's job. This module only turns
errors into Docker's exit statuses — 125 and one line for minicontainer's own errors, 2 never
(Docker uses 125 for a bad flag too) — and keeps imports lazy so `run` starts fast.
"""
from __future__ import annotations


import sys

import click
import typer

from ..errors import MinicontainerError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="A teaching container runtime: namespaces, chroot/pivot_root, cgroups, overlayfs.")
image_app = typer.Typer(no_args_is_help=True, help="Manage images (unpacked root filesystems).")
app.add_typer(image_app, name="image")

ROOT_HELP = ("State directory (default $MINICONTAINER_ROOT, else /var/lib/minicontainer for root, "
             "~/.local/share/minicontainer for a user).")


@app.callback()
def global_options(ctx: typer.Context,
                   root: str = typer.Option(None, "--root", help=ROOT_HELP, envvar="MINICONTAINER_ROOT")):
    ctx.obj = {"root": root}


def root_of(ctx: typer.Context):
    return (ctx.find_root().obj or {}).get("root")


def fail(message: str, code: int = 125) -> None:
    """One line on stderr and Docker's exit status for minicontainer's own errors."""
    click.echo(f"minicontainer: {message}", err=True)
    raise SystemExit(code)


# Which file defines each verb. typer turns every registered function into a click command on
# every start (about 0.4 ms each), so a call imports only the file its verb lives in; `--help`
# and unknown verbs get all of them.
VERB_FILES = {"network": ("network",), "lab": ("teaching",), "demo": ("teaching",),
              "doctor": ("teaching",), "volume": ("storage",), "diff": ("storage",),
              "commit": ("storage",), "export": ("storage",), "snapshot": ("storage",),
              "image": ("commands", "storage"), "system": ("commands", "storage")}
COMMANDS_VERBS = {"run", "ps", "rm", "logs", "inspect", "stop", "kill", "wait", "pause",
                  "unpause", "top", "exec", "gc", "stats"}
ALL_FILES = ("commands", "teaching", "storage", "network")


def register_verbs(args: list[str]) -> None:
    """Import the cli/ file(s) that define the verb in args (see VERB_FILES)."""
    import importlib
    verb, skip = None, False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True                              # the global option's value
        elif not arg.startswith("-"):
            verb = arg
            break
    files = VERB_FILES.get(verb) or (("commands",) if verb in COMMANDS_VERBS else ALL_FILES)
    if "--help" in args:
        files = ALL_FILES if verb is None else files
    for name in files:
        importlib.import_module(f"{__name__}.{name}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run typer, map every error to one line + 125.
    Ends with os._exit once the output is flushed: nothing is left to clean up by then, and
    the interpreter's own shutdown would add ~20 ms to every call."""
    import os
    args = sys.argv[1:] if argv is None else argv
    register_verbs(args)
    try:
        code = dispatch(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            click.echo(e.code, err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def dispatch(args: list[str]) -> int:
    """Run the verb; every error becomes one line and Docker's exit status."""
    try:
        app(args=args, prog_name="minicontainer", standalone_mode=False)
        return 0
    except click.exceptions.NoArgsIsHelpError as e:     # `minicontainer` alone: the help, like `docker`
        e.show()
        return 0
    except click.exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        fail(f"{e.format_message()}{hint}")
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.exceptions.Exit as e:
        return e.exit_code
    except MinicontainerError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except PermissionError as e:
        fail(f"{e.strerror}: {e.filename} — minicontainer needs root (try sudo)")
