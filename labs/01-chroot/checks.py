"""Lab 01 — chroot and its escape, then pivot_root. One check per task (see README.md).

Run: minicontainer lab check 01     (as root: chroot, mounts and containers need it)
"""
from __future__ import annotations

import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parent
REPO = LAB.parent.parent


@pytest.fixture
def secret_file(tmp_path) -> tuple[Path, str]:
    """A file on the host that no image contains: whoever prints it has left the jail."""
    secret = secrets.token_hex(8)
    path = tmp_path / f"host-secret-{secret[:4]}"
    path.write_text(secret + "\n")
    return path, secret


def compile_static(source: Path, out: Path) -> Path:
    if not source.is_file():
        pytest.fail(f"{source.name} is missing in {source.parent}", pytrace=False)
    if shutil.which("gcc") is None:
        pytest.fail("gcc is not installed: apt-get install gcc", pytrace=False)
    built = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(source)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"gcc -static {source.name} failed:\n{built.stderr.strip()}", pytrace=False)
    return out


def make_reference_rootfs(root: Path) -> Path:
    """A busybox root directory made by the checker itself (so task 3 does not need task 1)."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")      # relative: right inside and outside
    for name in ("proc", "tmp", "etc"):
        (root / name).mkdir()
    return root


def test_make_rootfs(work, run_script, tmp_path):
    """make-rootfs.sh builds a root directory that `chroot DIR /bin/sh` runs in
    de: make-rootfs.sh baut ein Wurzelverzeichnis, in dem `chroot DIR /bin/sh` läuft

    Hint: copy the static /bin/busybox to DIR/bin/, run `chroot DIR /bin/busybox --install -s /bin`, mkdir DIR/proc DIR/tmp DIR/etc.
    Hinweis: /bin/busybox (statisch gelinkt) nach DIR/bin/ kopieren, `chroot DIR /bin/busybox --install -s /bin` ausführen, DIR/proc DIR/tmp DIR/etc anlegen.
    """
    root = tmp_path / "root"
    made = run_script("make-rootfs.sh", root)
    assert made.returncode == 0, f"make-rootfs.sh {root} failed: {made.describe()}"
    inside = subprocess.run(["chroot", str(root), "/bin/sh", "-c", "echo inside; ls /"],
                            capture_output=True, text=True)
    assert inside.returncode == 0 and inside.stdout.startswith("inside\n"), \
        f"`chroot {root} /bin/sh` does not run: {inside.stderr.strip() or inside.stdout.strip()}"
    entries = set(inside.stdout.split()[1:])
    missing = {"bin", "proc", "tmp", "etc"} - entries
    assert not missing, f"`ls /` in the chroot lacks {', '.join(sorted(missing))}"
    for applet in ("ls", "cat", "mkdir"):
        assert (root / "bin" / applet).exists(), f"{root}/bin/{applet} is missing (busybox --install -s)"


@pytest.fixture
def escape_image(work, mc, busybox, tmp_path):
    """busybox plus the student's escape.c, compiled static, as image lab01-escape:latest."""
    binary = compile_static(work / "escape.c", tmp_path / "escape")
    from minicontainer.builder import find_recipe, load_builder
    tar = Path(load_builder().build(find_recipe("busybox"), tmp_path / "busybox.tar").path)
    with tarfile.open(tar, "a") as t:
        t.add(binary, "escape")
    imported = mc("image", "import", tar, "lab01-escape")
    assert imported.returncode == 0, imported.stderr
    yield "lab01-escape"
    mc("image", "rm", "lab01-escape")


def test_escape_chroot_not_pivot_root(escape_image, mc, secret_file):
    """escape.c gets out of a chroot container, but not out of a pivot_root one
    de: escape.c bricht aus einem chroot-Container aus, aber nicht aus einem mit pivot_root

    Hint: mkdir("/.escape"), chroot("/.escape") WITHOUT chdir, then chdir("..") in a loop, then chroot(".") and execv.
    Hinweis: mkdir("/.escape"), chroot("/.escape") OHNE chdir, dann chdir("..") in einer Schleife, dann chroot(".") und execv.
    """
    path, secret = secret_file
    jailed = mc("run", "--rm", "--isolation", "chroot", escape_image, "/escape", "/bin/cat", path)
    assert secret in jailed.stdout, (
        f"under --isolation chroot, `/escape /bin/cat {path}` did not print the host's file "
        f"(exit {jailed.returncode}): {jailed.stderr.strip().splitlines()[-1] if jailed.stderr.strip() else 'no message'}")
    pivoted = mc("run", "--rm", escape_image, "/escape", "/bin/cat", path)
    assert secret not in pivoted.stdout, "under pivot_root (the default) the escape must not work"


def test_pivot_root(work, run_script, tmp_path, secret_file):
    """pivot.sh runs a command in ROOT with pivot_root, and no escape leads back to the host
    de: pivot.sh startet einen Befehl in ROOT mit pivot_root, und kein Ausbruch führt zurück zum Host

    Hint: in the new mount namespace: mount --bind ROOT ROOT; cd ROOT; pivot_root . .; umount -l .; cd /; exec "$@".
    Hinweis: im neuen Mount-Namespace: mount --bind ROOT ROOT; cd ROOT; pivot_root . .; umount -l .; cd /; exec "$@".
    """
    path, secret = secret_file
    root = make_reference_rootfs(tmp_path / "root")
    compile_static(REPO / "tests" / "helpers" / "chroot_escape.c", root / "bin" / "escape")
    (root / "marker-inside").write_text("in the new root\n")
    # The checker adds its own mount namespace around the script: a mistake cannot reach the host.
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", str(work / "pivot.sh"), str(root),
         "/bin/sh", "-c", f"cat /marker-inside; /bin/escape /bin/cat {path}; echo escaped=$?"],
        capture_output=True, text=True, timeout=30, cwd=work)
    out = result.stdout
    assert "in the new root" in out, \
        f"the command did not run in ROOT (no /marker-inside): exit {result.returncode}, " \
        f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}"
    assert secret not in out, "a chroot escape still reached the host's files: did you unmount the old root (umount -l .)?"
    assert "escaped=" in out, f"the command did not finish: {result.stderr.strip()}"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: re-read "Background"; chroot(2) and pivot_root(2) answer q1 to q3, the section on daemons q4.
    Hinweis: Lies „Hintergrund“ noch einmal; chroot(2) und pivot_root(2) beantworten q1 bis q3, der Abschnitt über Daemons q4.
    """
    answers.expect({"q1": "b", "q2": "a", "q3": "b", "q4": "b"})
