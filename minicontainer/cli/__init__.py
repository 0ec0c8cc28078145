"""The `minicontainer` command: typer verbs that parse, call the library API, and print.

    minicontainer run [OPTIONS] IMAGE [COMMAND…]     runtime.py via api.Container
    minicontainer ps [-a] | rm [-f] NAME…            state.py via api
    minicontainer image import|build|ls|rm|inspect   storage/images.py, rootfs-builder/

Nothing here knows how containers work: that is the library's job. This module only turns
errors into Docker's exit statuses — 125 and one line for minicontainer's own errors, 2 never
(Docker uses 125 for a bad flag too) — and keeps imports lazy so `run` starts fast.
"""
from __future__ import annotations


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run typer, map every error to one line + 125."""
    from . import commands  # noqa: F401  (registers the verbs)
    from . import teaching  # noqa: F401  (lab, demo, doctor)
    from . import storage  # noqa: F401  (volume, diff, commit, snapshot, export, system df)
    try:
        app(args=argv, prog_name="minicontainer", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:     # help was printed; like `docker` alone
        raise SystemExit(0) from e
    except click.exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        fail(f"{e.format_message()}{hint}")
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.exceptions.Exit as e:
        raise SystemExit(e.exit_code) from None
    except MinicontainerError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except PermissionError as e:
        fail(f"{e.strerror}: {e.filename} — minicontainer needs root (try sudo)")
