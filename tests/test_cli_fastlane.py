"""The fast lane for `run` (cli/run_verb.py) parses exactly as typer does, or hands over.

No containers here: run_container is replaced by a recorder, and the same argv goes through
parse_run_args() and through typer (cli/typer_app.py); both must produce the same call.
"""
from __future__ import annotations

import pytest

from minicontainer.cli import run_verb, typer_app


def typer_call(monkeypatch, args: list[str]) -> dict | None:
    """What typer passes to run_container for args (None: typer refused them)."""
    calls = []
    monkeypatch.setattr(run_verb, "run_container", lambda **kw: calls.append(kw) or 0)
    try:
        typer_app.dispatch(args)
    except SystemExit:
        pass
    return calls[0] if calls else None


def test_the_option_table_is_typers():
    """Every option string, its parameter, flag/value/list kind and default, as typer declares them."""
    import typer.main
    typer_app.register_verbs(["run"])
    command = typer.main.get_command(typer_app.app).commands["run"]
    declared = {}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        kind = "flag" if param.is_flag else "list" if param.multiple else "value"
        for opt in param.opts + param.secondary_opts:
            declared[opt] = (param.name, kind)
        default = [] if param.multiple else param.default
        assert run_verb.defaults()[param.name] == default, param.name
    assert declared == run_verb.OPTIONS


SAME = [
    ["run", "busybox"],
    ["run", "--rm", "busybox", "true"],
    ["--root", "/tmp/r", "run", "--rm", "busybox", "sh", "-c", "echo $HOSTNAME"],
    ["--root=/tmp/r", "run", "busybox"],
    ["run", "-it", "--name", "web", "-e", "A=1", "-eB=2", "--env=C=3", "busybox", "sh"],
    ["run", "-ite", "A=1", "busybox"],
    ["run", "-d", "--restart", "on-failure:3", "-p", "8080:80", "-p127.0.0.1:8081:81/udp", "busybox"],
    ["run", "--net=none", "--network", "host", "-m", "64m", "--memory-swap", "-1", "busybox"],
    ["run", "--pids-limit", "20", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "busybox"],
    ["run", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges=false",
     "--privileged", "--read-only", "--init", "--explain", "busybox"],
    ["run", "-v", "/data:/data:ro", "--volume", "vol:/v", "--tmpfs", "/run:size=1m", "busybox"],
    ["run", "-u", "1000:1000", "-w", "/tmp", "-h", "box", "--hostname", "box2", "busybox"],
    ["run", "--isolation", "chroot", "busybox", "--rm", "-it", "--", "x"],      # after IMAGE: the command's
    ["run", "--rm", "--", "busybox", "ls", "-l"],
    ["run", "--name", "--rm", "busybox"],                                        # a value may start with -
    ["run", "-", "true"],
]


@pytest.mark.parametrize("args", SAME, ids=lambda a: " ".join(a)[:60])
def test_same_call_both_ways(monkeypatch, args):
    monkeypatch.delenv("MINICONTAINER_ROOT", raising=False)
    fast = run_verb.parse_run_args(args)
    assert fast is not None, "the fast lane should take this"
    assert fast == typer_call(monkeypatch, args)


@pytest.mark.parametrize("args", [
    ["run"],                                    # no IMAGE: typer's usage message
    ["run", "--rm"],
    ["run", "--help"],
    ["run", "--no-such-flag", "busybox"],
    ["run", "-Z", "busybox"],
    ["run", "--rm=yes", "busybox"],             # a flag with a value
    ["run", "--name"],                          # a value missing
    ["run", "-e"],
    ["--help", "run", "busybox"],
    ["--root", "/tmp/r"],
    ["ps", "run"],                              # another verb
    ["run", "--root", "/tmp/r", "busybox"],     # a global option after the verb
])
def test_hands_over_what_it_does_not_understand(args):
    assert run_verb.parse_run_args(args) is None


def test_root_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINICONTAINER_ROOT", "/tmp/from-env")
    assert run_verb.parse_run_args(["run", "busybox"])["root"] == "/tmp/from-env"
    assert run_verb.parse_run_args(["--root", "/tmp/flag", "run", "busybox"])["root"] == "/tmp/flag"
    assert typer_call(monkeypatch, ["run", "busybox"])["root"] == "/tmp/from-env"
