"""The CLI stays thin and fast: the fast lane for `run` (cli/run_verb.py) parses exactly as
typer does, or hands over; cli/ reaches the library only through minicontainer.api; and the
package's imports have no cycle.

No containers here: run_container is replaced by a recorder, and the same argv goes through
parse_run_args() and through typer (cli/typer_app.py); both must produce the same call. The
import rules are read from the source (ast), lazy imports inside functions included.
"""
from __future__ import annotations

import ast
from pathlib import Path

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
    """typer's `run`, built from run_verb.RUN_OPTIONS: every option string, its parameter,
    flag/value/list kind and default as the fast lane reads them."""
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
    ["run", "-l", "a=b", "--label", "c", "--env-file", "f", "--entrypoint", "", "--cidfile", "c", "--stop-signal",
     "USR1", "--stop-timeout", "3", "--dns", "192.0.2.1", "--dns-search", "x.org", "--add-host", "h:192.0.2.2",
     "--platform", "linux/amd64", "--pull", "never", "busybox"],
    ["run", "--ulimit", "nofile=10:20", "--sysctl", "net.ipv4.ip_forward=1", "--pid", "host", "--ipc", "host",
     "--uts", "host", "--oom-score-adj", "5", "--group-add", "10", "--shm-size", "1m", "busybox"],
    ["run", "--memory-reservation", "32m", "--cpu-period", "50000", "--cpu-quota", "25000", "busybox"],
    ["run", "-P", "--expose", "80", "--publish-all", "-p", "80", "--mount", "type=tmpfs,target=/t", "--device",
     "/dev/fuse:/dev/f:r", "--cgroup-parent", "/g", "busybox"],
    ["run", "-a", "stdout", "--attach=STDERR", "--sig-proxy=false", "--health-cmd", "true", "--health-interval",
     "1s", "--health-timeout", "2s", "--health-start-period", "3s", "--health-retries", "4", "busybox"],
    ["run", "-Pit", "--no-healthcheck", "-astdin", "busybox"],
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


# ── the import rules ──────────────────────────────────────────────────────────────────────

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "minicontainer"
THROUGH_THE_API = {"minicontainer", "minicontainer.api", "minicontainer.errors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file — at the top or inside a function — with
    relative imports resolved; `from pkg import mod` names the module pkg.mod."""
    name = module_name(path) if path.is_relative_to(PACKAGE) else ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            found += [(m, []) for m in submodules] or [(target, names)]
    return [(m, names) for m, names in found if m == "minicontainer" or m.startswith("minicontainer.")]


def test_the_cli_imports_only_the_api():
    """cli/ knows the library only as minicontainer.api and minicontainer.errors: a new verb
    adds its function to api.py (and to its __all__) and calls it from there."""
    wrong = [f"{path.relative_to(REPO)}: {module}" for path in (PACKAGE / "cli").glob("*.py")
             for module, _ in imports(path)
             if module not in THROUGH_THE_API and not module.startswith("minicontainer.cli")]
    assert not wrong, "cli/ may import only minicontainer.api and minicontainer.errors:\n" + "\n".join(wrong)


def test_cli_labs_and_demos_use_only_what_the_api_exports():
    """Every name the CLI, the labs' checks and the demos take from minicontainer.api is in
    its __all__, and resolves; labs and demos, too, reach the library only through it."""
    from minicontainer import api
    users = [*(PACKAGE / "cli").glob("*.py"), *(PACKAGE / "demos").glob("*.py"), *(REPO / "labs").rglob("*.py")]
    wrong, missing = [], []
    for path in users:
        for module, names in imports(path):
            if module == "minicontainer.api":
                missing += [f"{path.relative_to(REPO)}: {n}" for n in names if n not in api.__all__]
            elif module not in THROUGH_THE_API and not module.startswith(("minicontainer.cli", "minicontainer.demos")):
                wrong.append(f"{path.relative_to(REPO)}: {module}")
    assert not wrong, "use minicontainer.api (add the name to its __all__):\n" + "\n".join(wrong)
    assert not missing, "add these to minicontainer.api.__all__:\n" + "\n".join(missing)
    assert [n for n in api.__all__ if not hasattr(api, n)] == []


def test_the_package_has_no_import_cycle():
    """No module imports, directly or through others, a module that imports it — counting the
    imports inside functions too: a cycle hidden in a lazy import is still a cycle."""
    graph = {name: {m for m, _ in imports(path) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    cycles = []
    for start in graph:                              # depth-first search for a path back
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" → ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_no_module_takes_another_modules_private_names():
    """A name with a leading underscore belongs to its module: what another module needs is
    public (unpack's Extractor, images.write_image …). cli/'s verb modules share commands.py's
    table printer among themselves — inside the CLI package, not the library."""
    wrong = [f"{path.relative_to(REPO)}: {module}.{name}" for path in MODULES.values()
             if not path.is_relative_to(PACKAGE / "cli")
             for module, names in imports(path) for name in names
             if name.startswith("_") and not name.startswith("__")]
    assert not wrong, "make these public (or keep them in one module):\n" + "\n".join(wrong)
