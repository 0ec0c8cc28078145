"""Lab 04 — a userland: an app image with its configuration and libraries, and the classic text
tools inside it. One check per task (see README.md). Tasks 2–4 use the image of task 1.
"""
from __future__ import annotations

import json
import os

import pytest

IMAGE = "lab04-app"


@pytest.fixture(scope="session")
def app_image(work, mc, busybox, state_root, tmp_path_factory):
    """lab04-app as work/app.toml builds it, for tasks 1–4 — and the student's own lab04-app
    left alone. rootfs-builder builds byte for byte reproducibly: an image built from the same
    app.toml has the same digest and is used as it is. If it differs (app.toml changed since),
    the student's is exported first and imported back afterwards; one the check had to make is
    removed again. Yields the image's name."""
    from minicontainer.api import image_store
    from minicontainer.builder import load_builder
    recipe = work / "app.toml"
    if not recipe.is_file():
        pytest.fail(f"app.toml is missing in {work}", pytrace=False)
    tmp = tmp_path_factory.mktemp("lab04")
    try:
        built = load_builder().build(recipe, tmp / "app.tar")
    except (ValueError, OSError) as e:
        pytest.fail(f"app.toml does not build (minicontainer image build app.toml): {e}", pytrace=False)
    if built.name != IMAGE:
        pytest.fail(f"app.toml builds {built.name}, not {IMAGE}: keep [image] name = \"{IMAGE}\"", pytrace=False)
    shown = mc("image", "inspect", IMAGE)
    before = json.loads(shown.stdout)["digest"] if shown.returncode == 0 else None
    saved = None
    if before != f"sha256:{built.sha256}":
        if before:
            saved = tmp / "students-lab04-app.tar"
            exported = mc("image", "export", IMAGE, "-o", saved, timeout=120)
            if exported.returncode != 0:
                pytest.fail(f"cannot keep your {IMAGE} aside: {exported.stderr.strip()}", pytrace=False)
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

    Hint: add [app] binary = "/usr/bin/hello", and [[text]] entries for /etc/greet.conf (0644) and /usr/local/bin/greet (0755).
    Hinweis: [app] binary = "/usr/bin/hello" ergänzen, dazu [[text]]-Einträge für /etc/greet.conf (0644) und /usr/local/bin/greet (0755).
    """
    fs = image_fs(IMAGE)
    names = {path.rsplit("/", 1)[-1] for path in fs.paths()}
    assert fs.file("/usr/bin/hello"), "the image has no /usr/bin/hello: add an [app] section"
    assert "libc.so.6" in names, "the image has no libc.so.6: hello cannot start without it"
    assert any(n.startswith("ld-linux") for n in names), "the image has no loader (ld-linux…)"
    ran = mc("run", "--rm", IMAGE, "hello")
    assert ran.returncode == 0 and "Hello, world!" in ran.stdout, f"hello does not run: {ran.stderr.strip()}"
    assert fs.file("/etc/greet.conf"), "the image has no /etc/greet.conf"
    greet = fs.file("/usr/local/bin/greet")
    assert greet, "the image has no /usr/local/bin/greet"
    assert os.access(greet, os.X_OK), "/usr/local/bin/greet is not executable: mode = \"0755\""
    greeted = mc("run", "--rm", IMAGE, "sh", "-c", "echo 'GREETING=\"Moin from the check\"' > /etc/greet.conf; greet")
    assert greeted.stdout.strip() == "Moin from the check", \
        f"greet does not print the GREETING of /etc/greet.conf: {greeted.stdout.strip() or greeted.stderr.strip()!r}"


def test_users_table(app_image, image_fs, run_script):
    r"""users.sh prints the image's users as NAME<TAB>UID<TAB>SHELL, sorted by UID
    de: users.sh gibt die Benutzer des Images als NAME<TAB>UID<TAB>SHELL aus, nach UID sortiert

    Hint: in the container: cut -d: -f1 (and -f3, -f7) into files, paste them, sort -t "$(printf '\t')" -k2,2n.
    Hinweis: im Container: cut -d: -f1 (und -f3, -f7) in Dateien, mit paste verbinden, sort -t "$(printf '\t')" -k2,2n.
    """
    rows = [line.split(":") for line in image_fs(IMAGE).file("/etc/passwd").read_text().splitlines() if line]
    expected = ["\t".join((r[0], r[2], r[6])) for r in sorted(rows, key=lambda r: int(r[2]))]
    result = run_script("users.sh")
    got = [line for line in result.stdout.splitlines() if line.strip()]
    if got and all("\t" not in line for line in got):
        pytest.fail(f"the columns must be separated by a tab (paste does that): {got[0]!r}", pytrace=False)
    assert got == expected, "expected (from the image's /etc/passwd):\n" + "\n".join(expected) + \
        f"\n… got:\n" + "\n".join(got[:8])


def test_count_processes(app_image, run_script):
    """procs.sh counts exactly the three sleep processes in its container
    de: procs.sh zählt genau die drei sleep-Prozesse in seinem Container

    Hint: ps also shows `grep sleep` and the shell's own command line; count `ps -o comm | grep -x sleep | wc -l`.
    Hinweis: ps zeigt auch `grep sleep` und die Kommandozeile der Shell; zähle mit `ps -o comm | grep -x sleep | wc -l`.
    """
    result = run_script("procs.sh", timeout=90)
    numbers = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert numbers[-1:] == ["3"], f"expected the number 3, got {numbers[-1] if numbers else 'nothing'} ({result.describe()})"


def test_image_diff(app_image, image_fs, run_script):
    """diff.sh lists exactly the paths lab04-app has and busybox has not
    de: diff.sh listet genau die Pfade, die lab04-app hat und busybox nicht

    Hint: { diff busybox.txt app.txt || true; } | grep '^>' | cut -c3-   (diff exits 1 when the files differ)
    Hinweis: { diff busybox.txt app.txt || true; } | grep '^>' | cut -c3-   (diff endet mit 1, wenn sich die Dateien unterscheiden)
    """
    expected = sorted(image_fs(IMAGE).paths() - image_fs("busybox").paths())
    if not expected:
        pytest.fail(f"{IMAGE} has no path that busybox has not, so there is nothing to find yet: "
                    "finish app.toml (task 1) first", pytrace=False)
    result = run_script("diff.sh", timeout=90)
    got = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    extra, missing = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    assert not extra and not missing, \
        (f"missing: {', '.join(missing[:6]) or '-'}; not expected: {', '.join(extra[:6]) or '-'} "
         f"({result.describe()})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: rootfs-builder/README.md (static vs dynamic, the library closure) answers q1 and q2.
    Hinweis: rootfs-builder/README.md (statisch vs. dynamisch, der Bibliotheksabschluss) beantwortet q1 und q2.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
