"""Lab 04 — a userland: an app image with its configuration and libraries, and the classic text
tools inside it. One check per task (see README.md). Tasks 2–4 use the image of task 1.
"""
from __future__ import annotations

import json
import os

import pytest

from minicontainer.api import msg

IMAGE = "lab04-app"


@pytest.fixture(scope="session")
def app_image(work, mc, busybox, state_root, tmp_path_factory):
    """lab04-app as work/app.toml builds it, for tasks 1–4 — and the student's own lab04-app
    left alone. rootfs-builder builds byte for byte reproducibly: an image built from the same
    app.toml has the same digest and is used as it is. If it differs (app.toml changed since),
    the student's is exported first and imported back afterwards; one the check had to make is
    removed again. Yields the image's name."""
    from minicontainer.api import image_store
    from minicontainer.api import load_builder
    recipe = work / "app.toml"
    if not recipe.is_file():
        pytest.fail(msg(f"app.toml is missing in {work}", f"app.toml fehlt in {work}"), pytrace=False)
    tmp = tmp_path_factory.mktemp("lab04")
    try:
        built = load_builder().build(recipe, tmp / "app.tar")
    except (ValueError, OSError) as e:
        pytest.fail(msg("app.toml does not build (minicontainer image build app.toml): ",
                        "app.toml lässt sich nicht bauen (minicontainer image build app.toml): ") + str(e), pytrace=False)
    if built.name != IMAGE:
        pytest.fail(msg(f"app.toml builds {built.name}, not {IMAGE}: keep [image] name = \"{IMAGE}\"",
                        f"app.toml baut {built.name}, nicht {IMAGE}: [image] name = \"{IMAGE}\" beibehalten"), pytrace=False)
    shown = mc("image", "inspect", IMAGE)
    before = json.loads(shown.stdout)["digest"] if shown.returncode == 0 else None
    saved = None
    if before != f"sha256:{built.sha256}":
        if before:
            saved = tmp / "students-lab04-app.tar"
            exported = mc("image", "export", IMAGE, "-o", saved, timeout=120)
            if exported.returncode != 0:
                pytest.fail(msg(f"cannot keep your {IMAGE} aside: ", f"dein {IMAGE} lässt sich nicht beiseitelegen: ")
                            + exported.stderr.strip(), pytrace=False)
        image_store(state_root).import_archive(built.path, f"{IMAGE}:{built.tag}", source=str(recipe),
                                               config=built.config)
    yield IMAGE
    if saved:
        mc("image", "import", saved, IMAGE, timeout=120)
    elif before is None:
        mc("image", "rm", IMAGE)


def test_app_image(app_image, image_fs, mc):
    """app.toml builds lab04-app: hello with its loader and libc, and greet reads /etc/greet.conf
    de: app.toml baut lab04-app: hello mit Loader und libc, und greet liest /etc/greet.conf

    Hint: rootfs-builder/README.md, "The recipe format": which section adds a dynamic program with its loader and libraries, which one a file with a given content and mode?
    Hint 2: [app] binary = "/usr/bin/hello", and [[text]] entries (path, mode, content) for /etc/greet.conf (0644) and /usr/local/bin/greet (0755), as app.toml's TODOs describe.
    Hinweis: rootfs-builder/README.md, „The recipe format“: welcher Abschnitt fügt ein dynamisches Programm mit Loader und Bibliotheken hinzu, welcher eine Datei mit gegebenem Inhalt und Modus?
    Hinweis 2: [app] binary = "/usr/bin/hello", dazu [[text]]-Einträge (path, mode, content) für /etc/greet.conf (0644) und /usr/local/bin/greet (0755), wie es die TODOs in app.toml beschreiben.
    """
    fs = image_fs(IMAGE)
    names = {path.rsplit("/", 1)[-1] for path in fs.paths()}
    assert fs.file("/usr/bin/hello"), msg("the image has no /usr/bin/hello: add an [app] section",
                                          "das Image hat kein /usr/bin/hello: einen [app]-Abschnitt ergänzen")
    assert "libc.so.6" in names, msg("the image has no libc.so.6: hello cannot start without it",
                                     "das Image hat keine libc.so.6: ohne sie startet hello nicht")
    assert any(n.startswith("ld-linux") for n in names), msg("the image has no loader (ld-linux…)",
                                                             "das Image hat keinen Loader (ld-linux…)")
    ran = mc("run", "--rm", IMAGE, "hello")
    assert ran.returncode == 0 and "Hello, world!" in ran.stdout, \
        msg("hello does not run: ", "hello läuft nicht: ") + ran.stderr.strip()
    assert fs.file("/etc/greet.conf"), msg("the image has no /etc/greet.conf", "das Image hat kein /etc/greet.conf")
    greet = fs.file("/usr/local/bin/greet")
    assert greet, msg("the image has no /usr/local/bin/greet", "das Image hat kein /usr/local/bin/greet")
    assert os.access(greet, os.X_OK), msg("/usr/local/bin/greet is not executable: mode = \"0755\"",
                                          "/usr/local/bin/greet ist nicht ausführbar: mode = \"0755\"")
    greeted = mc("run", "--rm", IMAGE, "sh", "-c", "echo 'GREETING=\"Moin from the check\"' > /etc/greet.conf; greet")
    shown = repr(greeted.stdout.strip() or greeted.stderr.strip())
    assert greeted.stdout.strip() == "Moin from the check", \
        msg(f"greet does not print the GREETING of /etc/greet.conf: {shown}",
            f"greet gibt nicht das GREETING aus /etc/greet.conf aus: {shown}")


def test_users_table(app_image, image_fs, run_script):
    r"""users.sh prints the image's users as NAME<TAB>UID<TAB>SHELL, sorted by UID
    de: users.sh gibt die Benutzer des Images als NAME<TAB>UID<TAB>SHELL aus, nach UID sortiert

    Hint: run the pipeline inside the container (its /etc/passwd is the image's); passwd(5) numbers the fields, cut(1) picks them, paste(1) joins columns with a tab, sort(1) -t and -k sort by one field.
    Hint 2: cut -d: -f1 (and -f3, -f7) into files in /tmp, paste them, then sort -t "$(printf '\t')" -k2,2n.
    Hinweis: die Pipeline im Container ausführen (dort ist /etc/passwd die des Images); passwd(5) nummeriert die Felder, cut(1) wählt sie aus, paste(1) verbindet Spalten mit Tab, sort(1) -t und -k sortiert nach einem Feld.
    Hinweis 2: cut -d: -f1 (und -f3, -f7) in Dateien unter /tmp, mit paste verbinden, dann sort -t "$(printf '\t')" -k2,2n.
    """
    rows = [line.split(":") for line in image_fs(IMAGE).file("/etc/passwd").read_text().splitlines() if line]
    expected = ["\t".join((r[0], r[2], r[6])) for r in sorted(rows, key=lambda r: int(r[2]))]
    result = run_script("users.sh")
    got = [line for line in result.stdout.splitlines() if line.strip()]
    if got and all("\t" not in line for line in got):
        pytest.fail(msg(f"the columns must be separated by a tab (paste does that): {got[0]!r}",
                        f"die Spalten müssen durch einen Tab getrennt sein (paste macht das): {got[0]!r}"), pytrace=False)
    assert got == expected, msg("expected (from the image's /etc/passwd):\n", "erwartet (aus /etc/passwd des Images):\n") + \
        "\n".join(expected) + msg("\n… got:\n", "\n… erhalten:\n") + "\n".join(got[:8])


def test_count_processes(app_image, run_script):
    """procs.sh counts exactly the three sleep processes in its container
    de: procs.sh zählt genau die drei sleep-Prozesse in seinem Container

    Hint: run `ps` alone in that container (sh -c '…; ps') and read every line that contains "sleep": which of them are not a sleep process?
    Hint 2: let ps print only the program names (ps -o comm) and let grep match whole lines only (grep -x), then count.
    Hinweis: `ps` allein in diesem Container ausführen (sh -c '…; ps') und jede Zeile lesen, die „sleep“ enthält: welche davon sind kein sleep-Prozess?
    Hinweis 2: ps nur die Programmnamen ausgeben lassen (ps -o comm) und grep nur ganze Zeilen finden lassen (grep -x), dann zählen.
    """
    result = run_script("procs.sh", timeout=90)
    numbers = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    last = numbers[-1] if numbers else msg("nothing", "nichts")
    assert numbers[-1:] == ["3"], msg(f"expected the number 3, got {last} ", f"erwartet die Zahl 3, erhalten {last} ") \
        + f"({result.describe()})"


def test_image_diff(app_image, image_fs, run_script):
    """diff.sh lists exactly the paths lab04-app has and busybox has not
    de: diff.sh listet genau die Pfade, die lab04-app hat und busybox nicht

    Hint: diff(1) marks a line that is only in the second file with "> ": keep those lines and cut the marker off. Its exit status is 1 when the files differ — what does set -e make of that?
    Hint 2: { diff busybox.txt app.txt || true; } | grep '^>' | cut -c3-
    Hinweis: diff(1) markiert eine Zeile, die nur in der zweiten Datei steht, mit „> “: diese Zeilen behalten und die Markierung abschneiden. Der Exit-Status ist 1, wenn sich die Dateien unterscheiden — was macht set -e daraus?
    Hinweis 2: { diff busybox.txt app.txt || true; } | grep '^>' | cut -c3-
    """
    expected = sorted(image_fs(IMAGE).paths() - image_fs("busybox").paths())
    if not expected:
        pytest.fail(msg(f"{IMAGE} has no path that busybox has not, so there is nothing to find yet: "
                        "finish app.toml (task 1) first",
                        f"{IMAGE} hat noch keinen Pfad, den busybox nicht hat, also gibt es nichts zu finden: "
                        "zuerst app.toml fertigstellen (Aufgabe 1)"), pytrace=False)
    result = run_script("diff.sh", timeout=90)
    got = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    extra, missing = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    lists = (', '.join(missing[:6]) or '-', ', '.join(extra[:6]) or '-')
    assert not extra and not missing, \
        msg("missing: {}; not expected: {} ", "fehlt: {}; nicht erwartet: {} ").format(*lists) + f"({result.describe()})"


def test_containerfile(app_image, work, mc, image_fs):
    """greet/Containerfile builds lab04-greet on lab04-app: its own greet.conf in one layer, greet as the entry point
    de: greet/Containerfile baut lab04-greet auf lab04-app: ein eigenes greet.conf in einer Schicht, greet als Einstiegspunkt

    Hint: docs/docker-compat.md, "build": which instruction copies a file from the build context into the image, and which one says what `run` starts without a command?
    Hint 2: `COPY greet.conf /etc/greet.conf` and `ENTRYPOINT ["/usr/local/bin/greet"]` after FROM lab04-app.
    Hinweis: docs/docker-compat.md, „build“: welche Anweisung kopiert eine Datei aus dem Build-Kontext ins Image, und welche sagt, was `run` ohne Befehl startet?
    Hinweis 2: `COPY greet.conf /etc/greet.conf` und `ENTRYPOINT ["/usr/local/bin/greet"]` nach FROM lab04-app.
    """
    if not (work / "greet" / "Containerfile").is_file():
        pytest.fail(msg("greet/Containerfile is missing", "greet/Containerfile fehlt"), pytrace=False)
    built = mc("build", "-t", "lab04-greet", work / "greet", timeout=120)
    try:
        assert built.returncode == 0, msg("the build fails: ", "der Build schlägt fehl: ") + built.stderr.strip()[-300:]
        base, image = image_fs(IMAGE), image_fs("lab04-greet")
        assert image.file("/usr/bin/hello"), msg("lab04-greet is not built on lab04-app: FROM lab04-app",
                                                 "lab04-greet baut nicht auf lab04-app auf: FROM lab04-app")
        added = [layer for layer in image.layers if layer not in base.layers]
        conf = [layer for layer in added if (layer / "etc" / "greet.conf").is_file()]
        assert conf, msg("no layer of lab04-greet holds its own /etc/greet.conf: COPY it",
                         "keine Schicht von lab04-greet enthält ein eigenes /etc/greet.conf: mit COPY kopieren")
        ran = mc("run", "--rm", "--net", "none", "lab04-greet")
        expected = (work / "greet" / "greet.conf").read_text().partition("=")[2].strip().strip('"')
        shown = repr(ran.stdout.strip() or ran.stderr.strip())
        assert ran.stdout.strip() == expected, \
            msg(f"`minicontainer run --rm lab04-greet` should print {expected!r}, got {shown}: is greet the ENTRYPOINT?",
                f"`minicontainer run --rm lab04-greet` sollte {expected!r} ausgeben, erhalten {shown}: ist greet der ENTRYPOINT?")
    finally:
        mc("image", "rm", "lab04-greet")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: rootfs-builder/README.md (static vs dynamic, the library closure) answers q1 and q2; for q2, run lab04-nolibs (step 1).
    Hinweis: rootfs-builder/README.md (statisch vs. dynamisch, die transitive Hülle der Bibliotheken) beantwortet q1 und q2; für q2 lab04-nolibs starten (Schritt 1).
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
