"""OCI lifecycle hooks: programs the runtime runs at fixed points, the state JSON on stdin.

    the OCI runtime spec, config.md "POSIX-platform Hooks"; runtime.md "Lifecycle"

    prestart, createRuntime   after create made the namespaces, in the runtime's namespace (here:
                              when PID 1 waits for `start`, so after its pivot_root)
    createContainer, startContainer   not supported: config.py refuses them
    poststart                 after start released PID 1 (a failure is only a warning)
    poststop                  after delete removed the container (a failure is only a warning)

Each hook is {path, args (argv[0] included), env, timeout}; a non-zero exit or a timeout of
prestart/createRuntime fails create, and create removes the container again.
"""
from __future__ import annotations

import json
import os
import subprocess

from ..errors import ContainerError


def run(hooks: dict, kind: str, state: dict, also: tuple = (), warn_only: bool = False) -> None:
    """Run the hooks of `also` (older names first, e.g. prestart) and `kind`, in order."""
    for name in (*also, kind):
        for hook in hooks.get(name) or ():
            try:
                run_one(name, hook, state)
            except ContainerError as e:
                if not warn_only:
                    raise
                os.write(2, f"minicontainer-oci: warning: {e}\n".encode())


def run_one(kind: str, hook: dict, state: dict) -> None:
    argv = hook.get("args") or [hook["path"]]
    env = dict(item.partition("=")[::2] for item in hook.get("env") or [])
    try:
        proc = subprocess.run(argv, executable=hook["path"], input=json.dumps(state).encode(), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=hook.get("timeout"))
    except subprocess.TimeoutExpired:
        raise ContainerError(f"{kind} hook {hook['path']} timed out after {hook['timeout']} s") from None
    except OSError as e:
        raise ContainerError(f"{kind} hook {hook['path']} cannot run: {e.strerror}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ContainerError(f"{kind} hook {hook['path']} failed with exit status {proc.returncode}"
                             + (f": {detail[-1]}" if detail else ""))
