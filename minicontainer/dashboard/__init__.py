"""The dashboard: a live view of containers, namespaces, cgroups and the cluster in a browser.

    minicontainer dashboard [--port P] [--bind ADDR] [--allow-actions]

    sampler.py   once a second: every container's record, cgroup counters, processes and
                 namespaces (/proc/PID/ns inode numbers), the events, the pods on their nodes —
                 one snapshot, built from the same library functions api.py offers (status,
                 inspection, stop, the stores) and the kernel's files
    server.py    http.server: the page, /api/state, /api/stream (Server-Sent Events, one
                 message a second), the actions (POST, only with --allow-actions); the token
                 check when it listens on more than the loopback address
    static/      index.html, app.js, style.css: no build step, the charts are hand-written SVG

Nothing here runs a kernel step of its own: stop, kill and scale call the same library
functions the CLI calls, and every number shown is read from a file the lecture names
(memory.usage_in_bytes, cpuacct.usage, pids.current, /proc/PID/ns/*).
"""
from __future__ import annotations

from .server import serve

__all__ = ["serve"]
