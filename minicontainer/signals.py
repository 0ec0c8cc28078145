"""Signal names and numbers, as `kill -s`, `docker stop --signal` and STOPSIGNAL take them.

    man 7 signal
"""
from __future__ import annotations

import signal

from .errors import ConfigError


def parse_signal(value: str | int) -> int:
    """'TERM', 'SIGTERM', 'term' or '15' → 15."""
    text = str(value).strip().upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if sig is None:
        raise ConfigError(f"invalid signal {value!r}: use a name (TERM, KILL, HUP, INT, USR1 …) or a number")
    return int(sig)
