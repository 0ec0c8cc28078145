"""The typer application: every verb's options, help and usage errors.

cli/__init__.py's main() comes here for every call the fast lane (cli/run_verb.py) does not
take. Only the cli/ file that defines the verb asked for is imported (VERB_FILES): typer turns
every registered function into a click command on each start, about 0.4 ms apiece.
"""
from __future__ import annotations

import importlib

import click
import typer

from .exits import fail

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


# Which file defines each verb; a call imports only that one. `--help` and unknown verbs get all.
VERB_FILES = {"network": ("network",), "lab": ("teaching",), "demo": ("teaching",),
              "doctor": ("teaching",), "dashboard": ("teaching",), "volume": ("storage",), "diff": ("storage",),
              "commit": ("storage",), "export": ("storage",), "snapshot": ("storage",),
              "image": ("commands", "storage"), "system": ("commands", "storage"),
              "pod": ("orchestration",), "apply": ("orchestration",), "get": ("orchestration",),
              "describe": ("orchestration",), "delete": ("orchestration",), "scale": ("orchestration",),
              "rollout": ("orchestration",), "controller": ("orchestration",), "vm": ("vm",),
              "cluster": ("cluster",), "node": ("cluster",), "migrate": ("cluster",)}
COMMANDS_VERBS = {"run", "create", "ps", "rm", "logs", "inspect", "stop", "kill", "wait", "pause",
                  "unpause", "top", "exec", "gc", "stats", "start", "restart", "rename", "port",
                  "attach", "cp", "build", "container", "events"}
ALL_FILES = ("commands", "teaching", "storage", "network", "orchestration", "vm", "cluster")


def register_verbs(args: list[str]) -> None:
    """Import the cli/ file(s) that define the verb in args (see VERB_FILES)."""
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
        importlib.import_module(f"{__package__}.{name}")


def dispatch(args: list[str]) -> int:
    """Parse with typer and run the verb; click's own errors become one line and 125
    (Docker uses 125 for a bad flag too, never click's 2)."""
    register_verbs(args)
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
