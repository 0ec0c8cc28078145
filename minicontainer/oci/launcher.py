"""A faster `minicontainer-oci` script: the interpreter started with `-I -S`, the paths that
`site` would have added written into the script at install time.

    python -m minicontainer.oci.launcher .venv/bin/minicontainer-oci      (scripts/setup.sh)

Why: podman (conmon) and containerd-shim start the runtime anew for every step of every
container — create, start, state, kill, delete — so its start-up is paid three to five times
per `podman run`. pip's console script starts a full interpreter: `site` reads the venv's .pth
files (the editable install's path, setuptools' distutils hook) and that is ~5 ms of every
call here. `-S` skips `site`; `-I` (isolated) also ignores PYTHON* variables and the user's
site directory, as a runtime that engines run as root should. What `site` contributed is only
sys.path entries, and those are fixed by the install: this writes them into the script. Run
it again after moving the checkout or the venv (scripts/setup.sh does, on every run).

The script replaces pip's; a non-editable or other install keeps pip's, which works the same,
only slower. supervisor.py starts its small phases the same way (SMALL_BOOT).
"""
from __future__ import annotations

import os
import subprocess
import sys

TEMPLATE = """#!{python} -IS
# minicontainer-oci, written by `python -m minicontainer.oci.launcher` (scripts/setup.sh) over
# pip's script: -I -S skips `site`, so the paths it would add are given here.
import sys; sys.path += {paths!r}
from minicontainer.oci.cli import entry; entry()
"""


def site_paths(python: str) -> list[str]:
    """The sys.path entries `python` has with `site` and lacks without it (its site-packages,
    the editable install's checkout), in their order."""
    show = "import sys; print('\\n'.join(sys.path))"
    full = subprocess.run([python, "-c", show], capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    bare = subprocess.run([python, "-I", "-S", "-c", show], capture_output=True, text=True, check=True)
    without = set(bare.stdout.splitlines())
    return [p for p in full.stdout.splitlines() if p and p not in without]


def write(script: str, python: str = sys.executable) -> None:
    """Write the launcher to `script` (atomically: an engine may be calling it right now)."""
    text = TEMPLATE.format(python=python, paths=site_paths(python))
    tmp = f"{script}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, script)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m minicontainer.oci.launcher PATH-OF-THE-SCRIPT")
    write(sys.argv[1])
