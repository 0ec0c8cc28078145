"""OCI lifecycle hooks: programs run at fixed points of the lifecycle, the state JSON on stdin.

    the OCI runtime spec, config.md "POSIX-platform Hooks"; runtime.md "Lifecycle"

    hook             who runs it, where                          when
    prestart,        the runtime (create's process), in the      PID 1 has made its namespaces and
    createRuntime    runtime's namespaces (HookAnswer)           mounts and waits before pivot_root
    createContainer  PID 1, in the container's namespaces;       right after them, still before
                     the path is the host's                      pivot_root (runtime.run_create_hooks)
    startContainer   PID 1, in the container (its root, user,    `start` released it, before execve
                     capabilities), the path is the container's
    poststart        the runtime (`start`)                       after execve, before start returns
    poststop         the runtime (`delete`)                      after the container is gone

Each hook is {path, args (argv[0] included), env, timeout}. A hook that fails (non-zero exit, or
past its timeout) fails its operation and stops the container (runtime.md steps 3-9); only a
poststop failure is a warning.
"""
from __future__ import annotations

import json
import os
import subprocess

from ..errors import ContainerError

def run(hooks: dict, kind: str, state: dict, also: tuple = (), warn_only: bool = False,
        explain=None) -> None:
    """Run the hooks of `also` (older names first, e.g. prestart) and `kind`, in order."""
    for name in (*also, kind):
        for hook in hooks.get(name) or ():
            if explain is not None:
                explain.step(f"run the {name} hook {hook['path']}",
                             f"echo $STATE_JSON | {' '.join(hook.get('args') or [hook['path']])}",
                             f"fork(2), execve(\"{hook['path']}\")", "the OCI runtime spec, config.md",
                             f"status {state.get('status')}: the state JSON on its stdin")
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
