"""Teaching verbs: labs, classroom demos, and the machine check.

    minicontainer lab list                      the labs in labs/, with their titles
    minicontainer lab start NN [--workdir DIR]  copy the lab's starter files into the work dir
    minicontainer lab check NN [--junit FILE]   run the lab's checks: ✓/✗ per task, a hint per ✗
    minicontainer demo list | NAME [--auto]     narrated demos for a projector (labs.py, demos/)
    minicontainer doctor [--format json]        can this machine run containers? (doctor.py)
    minicontainer dashboard [--port P] [--bind ADDR] [--allow-actions]
                                                a live view in a browser (dashboard/)

Thin like every verb: the work is in minicontainer/labs.py, minicontainer/demos/ and
minicontainer/doctor.py, reached through minicontainer.api and imported only when the verb runs.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import click
import typer

from .exits import fail
from .typer_app import app, root_of

lab_app = typer.Typer(no_args_is_help=True, help="Exercises with checkers (labs/NN-topic/).")
app.add_typer(lab_app, name="lab")

LANG_HELP = "en or de (default: de when $LANG starts with de)."


def pick_lang(lang: Optional[str]) -> str:
    lang = lang or ("de" if os.environ.get("LANG", "").startswith("de") else "en")
    if lang not in ("en", "de"):
        fail(f"invalid --lang {lang!r}: use en or de (ungültige Sprache: en oder de)")
    return lang


@lab_app.command("list")
def lab_list(lang: Optional[str] = typer.Option(None, "--lang", help=LANG_HELP)):
    """List the labs."""
    from ..api import list_labs
    lang = pick_lang(lang)
    for lab in list_labs():
        title = lab.title_de if lang == "de" else lab.title
        started = "  (started)" if (lab.path / "work").is_dir() else ""
        click.echo(f"{lab.number}  {title}{started}")


@lab_app.command("start")
def lab_start(number: str = typer.Argument(..., help="Lab number or name, e.g. 01 or chroot."),
              workdir: Optional[str] = typer.Option(None, "--workdir", help="Work here instead of labs/NN-topic/work."),
              force: bool = typer.Option(False, "--force", help="Overwrite files you already changed.")):
    """Copy a lab's starter files into your work directory."""
    from ..api import find_lab, start_lab, workdir_for
    lab = find_lab(number)
    target = workdir_for(lab, workdir)
    copied = start_lab(lab, target, force=force)
    click.echo(f"lab {lab.number} — {lab.title}")
    click.echo(f"work dir: {target}" + (f" ({len(copied)} starter file(s) copied)" if copied
                                       else " (your files were kept; --force to start over)"))
    click.echo(f"read: {lab.path / 'README.md'}  (Deutsch: README.de.md)")
    click.echo(f"then: minicontainer lab check {lab.number}")


@lab_app.command("check")
def lab_check(ctx: typer.Context,
              number: str = typer.Argument(..., help="Lab number or name, e.g. 01 or chroot."),
              junit: Optional[str] = typer.Option(None, "--junit", help="Also write JUnit XML here (for grading)."),
              workdir: Optional[str] = typer.Option(None, "--workdir", help="Check this directory instead of labs/NN-topic/work."),
              keyword: Optional[str] = typer.Option(None, "-k", help="Only these tasks: numbers as shown (4, 1,3) or a word of a title."),
              hint: int = typer.Option(1, "--hint", min=1, help="Hint tier: 1 a nudge (default), 2 more."),
              lang: Optional[str] = typer.Option(None, "--lang", help=LANG_HELP)):
    """Run a lab's checks: ✓ or ✗ per task, with a hint for each ✗."""
    from ..api import check_lab, find_lab, start_lab, workdir_for
    lang = pick_lang(lang)
    lab = find_lab(number, lang)
    target = workdir_for(lab, workdir)
    if not target.is_dir():
        start_lab(lab, target, lang=lang)
        click.echo(f"(noch kein Arbeitsverzeichnis: {target} aus den Startdateien angelegt)\n" if lang == "de"
                   else f"(no work dir yet: created {target} from the starter files)\n")
    raise SystemExit(check_lab(lab, target, junit=junit, lang=lang, root=root_of(ctx),
                               keyword=keyword, hint_level=hint))


@app.command()
def demo(ctx: typer.Context,
         name: str = typer.Argument(..., help="A demo name, or `list`."),
         auto: bool = typer.Option(False, "--auto", help="Run straight through, without pausing."),
         delay: float = typer.Option(0.0, "--delay", help="With --auto: seconds to wait between steps.")):
    """Narrated classroom demos (`demo list` shows them); Enter goes to the next step."""
    from ..api import list_demos, run_demo
    if name == "list":
        for demo_name, summary in list_demos():
            click.echo(f"{demo_name.ljust(18)} {summary}")
        return
    raise SystemExit(run_demo(name, auto=auto, delay=delay, root=root_of(ctx)))


@app.command()
def doctor(format: str = typer.Option("text", "--format", help="text or json.")):
    """Check this machine: kernel, namespaces, cgroups, modules, user namespaces, environment."""
    from ..api import diagnose, format_report
    if format not in ("text", "json"):
        fail(f"invalid --format {format!r}: use text or json")
    report = diagnose()
    if format == "json":
        click.echo(json.dumps({"ok": report.ok, "findings": report.as_dicts()}, indent=1))
    else:
        click.echo(format_report(report))
    raise SystemExit(0 if report.ok else 1)


@app.command()
def dashboard(ctx: typer.Context,
              port: int = typer.Option(8080, "--port", "-p", help="TCP port (0: any free port)."),
              bind: str = typer.Option("127.0.0.1", "--bind",
                                       help="Address to listen on; any but the loopback one needs the printed token."),
              allow_actions: bool = typer.Option(False, "--allow-actions",
                                                 help="Show stop, kill, scale and node-fail buttons (demos).")):
    """A live view for the lecture hall: containers, namespaces, cgroups, the cluster (Ctrl-C stops)."""
    from ..api import serve_dashboard

    def ready(url: str) -> None:
        mode = "actions enabled" if allow_actions else "read-only (--allow-actions for buttons)"
        click.echo(f"minicontainer dashboard: {url}  [{mode}; Ctrl-C stops]")
        if "token=" in url:
            click.echo("The token in that URL is needed on this address: share it only with whom may look.")
        if "://0.0.0.0:" in url or "://[::]:" in url:
            click.echo("From other machines: this machine's address in place of 0.0.0.0 (`ip -br addr`).")
    serve_dashboard(root_of(ctx), port=port, bind=bind, allow_actions=allow_actions, ready=ready)
