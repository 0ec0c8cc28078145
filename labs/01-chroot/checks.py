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

from minicontainer.api import msg

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
    if shutil.which("gcc") is None:
        pytest.fail(msg("gcc is not installed: apt-get install gcc", "gcc ist nicht installiert: apt-get install gcc"),
                    pytrace=False)
    built = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(source)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(msg(f"gcc -static {source.name} failed:\n", f"gcc -static {source.name} ist gescheitert:\n")
                    + built.stderr.strip(), pytrace=False)
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

    Hint: chroot runs DIR/bin/sh, so everything the shell needs must be inside DIR. Which single static binary is a shell, ls and cat at once (`busybox --list`)?
    Hint 2: copy /bin/busybox to DIR/bin/, let busybox create its applet links itself (its --install option, run inside the chroot), and create the directories /proc, /tmp and /etc.
    Hinweis: chroot startet DIR/bin/sh, also muss alles, was die Shell braucht, in DIR liegen. Welches einzelne statische Programm ist zugleich Shell, ls und cat (`busybox --list`)?
    Hinweis 2: /bin/busybox nach DIR/bin/ kopieren, busybox die Applet-Links selbst anlegen lassen (Option --install, in der chroot ausgeführt) und die Verzeichnisse /proc, /tmp und /etc anlegen.
    """
    root = tmp_path / "root"
    made = run_script("make-rootfs.sh", root)
    assert made.returncode == 0, msg(f"make-rootfs.sh {root} failed: ", f"make-rootfs.sh {root} ist gescheitert: ") + made.describe()
    inside = subprocess.run(["chroot", str(root), "/bin/sh", "-c", "echo inside; ls /"],
                            capture_output=True, text=True)
    assert inside.returncode == 0 and inside.stdout.startswith("inside\n"), \
        msg(f"`chroot {root} /bin/sh` does not run: ", f"`chroot {root} /bin/sh` läuft nicht: ") \
        + (inside.stderr.strip() or inside.stdout.strip())
    entries = set(inside.stdout.split()[1:])
    missing = ", ".join(sorted({"bin", "proc", "tmp", "etc"} - entries))
    assert not missing, msg(f"`ls /` in the chroot lacks {missing}", f"`ls /` in der chroot zeigt kein {missing}")
    for applet in ("ls", "cat", "mkdir"):
        assert (root / "bin" / applet).exists(), msg(f"{root}/bin/{applet} is missing (busybox --install -s)",
                                                     f"{root}/bin/{applet} fehlt (busybox --install -s)")


@pytest.fixture
def escape_image(written, mc, busybox, tmp_path):
    """busybox plus the student's escape.c, compiled static, as image lab01-escape:latest."""
    binary = compile_static(written("escape.c"), tmp_path / "escape")
    from minicontainer.api import build_recipe
    tar = Path(build_recipe("busybox", tmp_path / "busybox.tar").path)
    with tarfile.open(tar, "a") as t:
        t.add(binary, "escape")
    imported = mc("image", "import", tar, "lab01-escape")
    assert imported.returncode == 0, imported.stderr
    yield "lab01-escape"
    mc("image", "rm", "lab01-escape")


def test_escape_chroot_not_pivot_root(escape_image, mc, secret_file):
    """escape.c gets out of a chroot container, but not out of a pivot_root one
    de: escape.c bricht aus einem chroot-Container aus, aber nicht aus einem mit pivot_root

    Hint: chroot(2) changes the root directory, not the current one: read its NOTES section. Where is your current directory after a second chroot into a sub-directory?
    Hint 2: after chroot into a new sub-directory (without chdir), ".." from the current directory is no longer stopped at the root: climb, then make where you arrived the root again.
    Hinweis: chroot(2) ändert das Wurzelverzeichnis, nicht das aktuelle Verzeichnis: lies den Abschnitt NOTES. Wo liegt das aktuelle Verzeichnis nach einem zweiten chroot in ein Unterverzeichnis?
    Hinweis 2: nach einem chroot in ein neues Unterverzeichnis (ohne chdir) hält ".." vom aktuellen Verzeichnis aus nicht mehr an der Wurzel: hochklettern, dann das Erreichte wieder zur Wurzel machen.
    """
    path, secret = secret_file
    jailed = mc("run", "--rm", "--isolation", "chroot", escape_image, "/escape", "/bin/cat", path)
    last = jailed.stderr.strip().splitlines()[-1] if jailed.stderr.strip() else msg("no message", "keine Meldung")
    assert secret in jailed.stdout, msg(
        f"under --isolation chroot, `/escape /bin/cat {path}` did not print the host's file (exit {jailed.returncode}): {last}",
        f"unter --isolation chroot hat `/escape /bin/cat {path}` die Datei des Hosts nicht ausgegeben (Exit {jailed.returncode}): {last}")
    pivoted = mc("run", "--rm", escape_image, "/escape", "/bin/cat", path)
    assert secret not in pivoted.stdout, msg("under pivot_root (the default) the escape must not work",
                                             "unter pivot_root (der Vorgabe) darf der Ausbruch nicht gelingen")


def test_pivot_root(work, written, tmp_path, secret_file):
    """pivot.sh runs a command in ROOT with pivot_root, and no escape leads back to the host
    de: pivot.sh startet einen Befehl in ROOT mit pivot_root, und kein Ausbruch führt zurück zum Host

    Hint: pivot_root(2), section "the new root must be a mount point", and pivot_root(8): the old root stays mounted under the new one until you unmount it.
    Hint 2: make ROOT a mount point by bind-mounting it onto itself; inside it, `pivot_root . .` puts the old root on top of the new one, and a lazy unmount of "." then removes it.
    Hinweis: pivot_root(2), Abschnitt zu "new_root must be a mount point", und pivot_root(8): die alte Wurzel bleibt unter der neuen eingehängt, bis du sie aushängst.
    Hinweis 2: ROOT wird zum Mountpunkt, wenn du es per Bind-Mount auf sich selbst einhängst; darin legt `pivot_root . .` die alte Wurzel über die neue, und ein verzögertes Aushängen von "." entfernt sie.
    """
    path, secret = secret_file
    root = make_reference_rootfs(tmp_path / "root")
    compile_static(REPO / "tests" / "helpers" / "chroot_escape.c", root / "bin" / "escape")
    (root / "marker-inside").write_text("in the new root\n")
    # The checker adds its own mount namespace around the script: a mistake cannot reach the host.
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", str(written("pivot.sh")), str(root),
         "/bin/sh", "-c", f"cat /marker-inside; /bin/escape /bin/cat {path}; echo escaped=$?"],
        capture_output=True, text=True, timeout=30, cwd=work)
    out = result.stdout
    last = (result.stderr.strip().splitlines() or [msg("no message", "keine Meldung")])[-1]
    assert "in the new root" in out, msg(
        f"the command did not run in ROOT (no /marker-inside): exit {result.returncode}, {last}",
        f"der Befehl lief nicht in ROOT (kein /marker-inside): Exit {result.returncode}, {last}")
    assert secret not in out, msg("a chroot escape still reached the host's files: did you unmount the old root (umount -l .)?",
                                  "ein chroot-Ausbruch erreicht noch die Dateien des Hosts: hast du die alte Wurzel ausgehängt (umount -l .)?")
    assert "escaped=" in out, msg("the command did not finish: ", "der Befehl ist nicht zu Ende gelaufen: ") + result.stderr.strip()


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: re-read "Background"; chroot(2) and pivot_root(2) answer q1 to q3, the section on daemons q4.
    Hinweis: Lies „Hintergrund“ noch einmal; chroot(2) und pivot_root(2) beantworten q1 bis q3, der Abschnitt über Daemons q4.
    """
    answers.expect({"q1": "b", "q2": "a", "q3": "b", "q4": "b"})
