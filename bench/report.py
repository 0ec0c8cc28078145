"""Turn one hyperfine --export-json run into a table of medians, ratios and target verdicts.

    bench/report.py RESULTS.json [--ref podman --ref runc …]
                    [--per-container api=API.jsonl] [--divide api-loop=50]
                    [--target 'mc-cli <= 0.5 podman' --target 'mc-big ~ mc-cli 10%' …]
                    [--markdown]

Rows are hyperfine's commands, named with `hyperfine -n NAME`. Two kinds of synthetic row:
  --per-container NAME=FILE[@LABEL]   the per-container times api_loop.py appended to FILE
                                      (only those of variant LABEL, e.g. busybox+limits)
  --divide CMD=N                      CMD's hyperfine time divided by N ("CMD/N": start-up amortised)
Targets compare medians of rows from the same run (a ratio, not an absolute time, so a slower or
busier machine moves both sides):
  'A <= X B'     median(A) / median(B) must be at most X          → PASS / MISS
  'A ~ B P%'     median(A) must be within P % of median(B)        → PASS / MISS
A target whose rows are missing (e.g. minicontainer's CLI not there yet) is SKIP, not a failure.
Exit status is always 0 when the report could be made: a benchmark never fails a build.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    median: float           # seconds
    mean: float
    stddev: float
    minimum: float
    runs: int
    command: str


def load_hyperfine(path: str) -> dict[str, Row]:
    rows = {}
    for r in json.load(open(path))["results"]:
        times = r.get("times") or [r["mean"]]
        name = r["command"]
        rows[name] = Row(name, r.get("median", statistics.median(times)), r["mean"],
                         r.get("stddev") or 0.0, r.get("min", min(times)), len(times),
                         r.get("command", name))
    return rows


def add_per_container(rows: dict[str, Row], spec: str) -> None:
    """NAME=FILE[@LABEL]: one row from the per-container times in api_loop.py's JSON lines."""
    name, _, path = spec.partition("=")
    path, _, label = path.partition("@")
    try:
        records = [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return
    times = [t for r in records if not label or r.get("label", r.get("image")) == label
             for t in r["times_s"]]
    if times:
        rows[name] = Row(name, statistics.median(times), statistics.fmean(times),
                         statistics.stdev(times) if len(times) > 1 else 0.0, min(times),
                         len(times), f"per container, in-process ({path})")


def add_divided(rows: dict[str, Row], spec: str) -> None:
    """CMD=N: CMD's whole-process times divided by the N containers each run started."""
    cmd, _, n = spec.partition("=")
    if cmd in rows:
        r, k = rows[cmd], int(n)
        rows[f"{cmd}/{k}"] = Row(f"{cmd}/{k}", r.median / k, r.mean / k, r.stddev / k,
                                 r.minimum / k, r.runs, f"({r.command}) / {k}")


RATIO = re.compile(r"^\s*(\S+)\s*<=\s*([0-9.]+)\s*[x×*]?\s*(\S+)\s*$")
WITHIN = re.compile(r"^\s*(\S+)\s*~\s*(\S+)\s+([0-9.]+)\s*%\s*$")


def judge(rows: dict[str, Row], target: str) -> tuple[str, str]:
    """(verdict, detail) for one target string."""
    if m := RATIO.match(target):
        a, limit, b = m.group(1), float(m.group(2)), m.group(3)
        if a not in rows or b not in rows:
            return "SKIP", f"no result for {a if a not in rows else b}"
        ratio = rows[a].median / rows[b].median
        return ("PASS" if ratio <= limit else "MISS"), f"{ratio:.2f}× (target ≤ {limit}×)"
    if m := WITHIN.match(target):
        a, b, pct = m.group(1), m.group(2), float(m.group(3))
        if a not in rows or b not in rows:
            return "SKIP", f"no result for {a if a not in rows else b}"
        diff = (rows[a].median / rows[b].median - 1) * 100
        return ("PASS" if abs(diff) <= pct else "MISS"), f"{diff:+.1f} % (target within ±{pct:g} %)"
    raise SystemExit(f"report: cannot read target {target!r}: use 'A <= 0.5 B' or 'A ~ B 10%'")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds * 1000 < 100 else f"{seconds * 1000:.0f}"


def render(rows: dict[str, Row], refs: list[str], targets: list[str], markdown: bool) -> str:
    refs = [r for r in refs if r in rows]
    head = ["command", "median ms", "mean ± σ ms", "min ms", "runs"] + [f"× {r}" for r in refs]
    body = []
    for r in rows.values():
        ratios = [f"{r.median / rows[ref].median:.2f}" for ref in refs]
        body.append([r.name, ms(r.median), f"{ms(r.mean)} ± {ms(r.stddev)}", ms(r.minimum),
                     str(r.runs)] + ratios)
    verdicts = [[t, *judge(rows, t)] for t in targets]
    return table(head, body, markdown) + ("\n\n" + table(["target", "verdict", "measured"],
                                                          verdicts, markdown) if verdicts else "")


def table(head: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(row)) + " |"
                  for row in body]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in body])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("--ref", action="append", default=[], help="a row to show ratios against")
    p.add_argument("--per-container", action="append", default=[], metavar="NAME=FILE[@LABEL]")
    p.add_argument("--divide", action="append", default=[], metavar="CMD=N")
    p.add_argument("--target", action="append", default=[])
    p.add_argument("--markdown", action="store_true", help="GitHub tables (for docs/performance.md)")
    args = p.parse_args(argv)
    rows = load_hyperfine(args.results)
    for spec in args.divide:
        add_divided(rows, spec)
    for spec in args.per_container:
        add_per_container(rows, spec)
    print(render(rows, args.ref, args.target, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
