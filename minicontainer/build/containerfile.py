"""Reading a Containerfile (Dockerfile): lines → instructions, variables substituted.

    Docker's "Dockerfile reference"; podman-build(1), containerfile(5)

    # comment                       whole-line comments; `\\` at a line's end continues it
    FROM busybox AS base            a stage; `AS name` for COPY --from=name
    RUN echo hi                     shell form: ["/bin/sh", "-c", "echo hi"] (or SHELL's)
    RUN ["echo", "hi"]              exec form: a JSON array, run as it is
    ENV A=1 B="two words"           KEY=VALUE pairs (or the old `ENV KEY VALUE`)

$VAR, ${VAR}, ${VAR:-default} and ${VAR:+alternative} are replaced in the instructions
Docker names (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL)
from ARG and ENV values; RUN is left to its shell, which sees them in its environment.
"""
from __future__ import annotations

import json
import re
import shlex

from ..errors import ConfigError

INSTRUCTIONS = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT",
                "EXPOSE", "LABEL", "VOLUME", "SHELL", "HEALTHCHECK", "STOPSIGNAL")
NOT_SUPPORTED = {"ONBUILD": "triggers for later builds are not supported",
                 "MAINTAINER": "deprecated by Docker: use LABEL maintainer=…"}
SUBSTITUTED = {"FROM", "COPY", "ADD", "ENV", "ARG", "LABEL", "EXPOSE", "USER", "WORKDIR", "VOLUME",
               "STOPSIGNAL"}


class Instruction:
    """One instruction: its keyword, its text (after `KEYWORD `), where it was."""

    def __init__(self, keyword: str, text: str, line: int, path: str):
        self.keyword, self.text, self.line, self.path = keyword, text, line, path

    def __str__(self) -> str:
        return f"{self.keyword} {self.text}".rstrip()

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{self.line}: {self.keyword}: {message}")


def parse(text: str, path: str = "Containerfile") -> list[Instruction]:
    """The instructions, in order; an unknown keyword is a one-line error naming its line."""
    out, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue                                      # comments inside a continuation
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(split_instruction(pending + line, start, path))
        pending = ""
    if pending.strip():
        out.append(split_instruction(pending, start, path))
    if not out:
        raise ConfigError(f"{path}: no instructions (a Containerfile starts with FROM)")
    if out[0].keyword not in ("FROM", "ARG"):
        raise out[0].error("the first instruction must be FROM (or ARG before FROM)")
    return out


def split_instruction(line: str, number: int, path: str) -> Instruction:
    keyword, _, rest = line.strip().partition(" ")
    keyword = keyword.upper()
    if keyword in NOT_SUPPORTED:
        raise ConfigError(f"{path}:{number}: {keyword}: {NOT_SUPPORTED[keyword]}")
    if keyword not in INSTRUCTIONS:
        raise ConfigError(f"{path}:{number}: unknown instruction {keyword!r} "
                          f"(known: {', '.join(INSTRUCTIONS)})")
    return Instruction(keyword, rest.strip(), number, path)


# ── forms and arguments ───────────────────────────────────────────────────────────────────

def exec_form(text: str) -> list[str] | None:
    """["a", "b"] → the list, else None (shell form)."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None                                       # Docker: then it is shell form
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def command(text: str, shell: list[str]) -> list[str]:
    """RUN/CMD/ENTRYPOINT: the exec form as given, the shell form as SHELL + [text]."""
    form = exec_form(text)
    return form if form is not None else [*shell, text]


def key_values(ins: Instruction, text: str) -> list[tuple[str, str]]:
    """ENV/LABEL: `K=V K2="v 2"` pairs, or the legacy `ENV K the value`."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError as e:
        raise ins.error(f"{e}: check the quotes") from None
    if words and "=" not in words[0]:
        if ins.keyword == "ENV" and len(words) >= 2:       # ENV KEY VALUE…
            return [(words[0], text.split(None, 1)[1])]
        raise ins.error("use KEY=VALUE")
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ins.error(f"{word!r}: use KEY=VALUE")
        pairs.append((key, value))
    return pairs


def flags(ins: Instruction, text: str, allowed: tuple[str, ...]) -> tuple[dict, str]:
    """Leading --flag=value words (COPY --from=, --chown=; FROM --platform=) → (flags, rest)."""
    found = {}
    while text.startswith("--"):
        word, _, text = text.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in allowed or not eq:
            raise ins.error(f"unknown or incomplete flag {word!r} (known: "
                            f"{', '.join('--' + a + '=…' for a in allowed)})")
        found[name] = value
        text = text.strip()
    return found, text


# ── variables ─────────────────────────────────────────────────────────────────────────────

_VAR = re.compile(r"\\\$|\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


def substitute(text: str, values: dict[str, str]) -> str:
    """$VAR, ${VAR}, ${VAR:-default}, ${VAR:+alternative}; `\\$` keeps a literal $."""
    def one(m) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = values.get(name)
        if m.group(2) == "-":
            return value if value else m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value or ""
    return _VAR.sub(one, text)
