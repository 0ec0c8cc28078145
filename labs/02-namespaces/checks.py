"""Lab 02 — namespaces one by one. One check per task (see README.md).

The checks look at what a script does, not only at what it prints:
  * every script runs inside an extra mount + UTS namespace that the checker makes (so a script
    that forgets its own `unshare` cannot rename or remount the host); the checker then looks at
    that wrapper namespace to see whether the script's change leaked out of the script's own;
  * `unshare` on the scripts' PATH is a wrapper that notes its options before it runs the real
    one, so the checker knows which namespaces a script created;
  * compare-ns.sh runs twice, the second time with a `minicontainer` whose containers share the
    host's network namespace (--net host): a script that compares says "net same" then.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from minicontainer.api import msg

NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")

# unshare's options that take a value (the next word), so the command after them is found
UNSHARE_VALUE_OPTIONS = {"--propagation", "--setgroups", "-S", "--setuid", "-G", "--setgid", "--map-user",
                         "--map-group", "-w", "--wd", "-R", "--root", "--monotonic", "--boottime"}
SHORT_FLAGS = {"m": "mount", "u": "uts", "i": "ipc", "n": "net", "p": "pid", "U": "user", "C": "cgroup",
               "T": "time", "f": "fork", "r": "map-root-user"}


@pytest.fixture
def watched(env):
    """(env, calls): the scripts' environment with an `unshare` that notes its options, and
    calls() → one set of option names (long form: uts, pid, fork, …) per unshare run.
    World-readable: user.sh runs unshare as the user nobody."""
    real = shutil.which("unshare", path=env["PATH"])
    bindir = Path(tempfile.mkdtemp(prefix="mc-lab02-"))
    bindir.chmod(0o755)
    log = bindir / "unshare.log"
    log.touch(mode=0o666)
    log.chmod(0o666)
    (bindir / "unshare").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    (bindir / "unshare").chmod(0o755)

    def calls() -> list[set[str]]:
        return [unshare_options(line.split()) for line in log.read_text().splitlines()]
    yield {**env, "PATH": f"{bindir}:{env['PATH']}"}, calls
    shutil.rmtree(bindir, ignore_errors=True)


def unshare_options(argv: list[str]) -> set[str]:
    """The options of one unshare command line, long names without dashes: {"uts", "fork"}."""
    found, words = set(), iter(argv)
    for word in words:
        if word == "--" or not word.startswith("-"):
            break
        if word.split("=")[0] in UNSHARE_VALUE_OPTIONS and "=" not in word:
            next(words, None)
        if word.startswith("--"):
            found.add(word[2:].split("=")[0])
        else:
            found |= {SHORT_FLAGS.get(c, c) for c in word[1:]}
    return found


def require_unshare(calls, script: str, *options: str) -> None:
    """Fails unless one unshare run of the script had all `options`."""
    runs = calls()
    if any(set(options) <= run for run in runs):
        return
    wanted = " ".join(f"--{o}" for o in options)
    seen = "; ".join("unshare " + " ".join(f"--{o}" for o in sorted(run)) for run in runs)
    pytest.fail(msg(f"{script} printed the expected lines, but no `unshare {wanted}` ran "
                    f"({'it ran: ' + seen if runs else 'it ran no unshare at all'}): the task asks for the namespace, "
                    "not for the text", f"{script} gibt die erwarteten Zeilen aus, aber kein `unshare {wanted}` lief "
                    f"({'gelaufen ist: ' + seen if runs else 'es lief gar kein unshare'}): verlangt ist der Namespace, "
                    "nicht der Text"), pytrace=False)


def wrapped(work, env, script: str, after: str = "", timeout: float = 30):
    """bash SCRIPT inside `unshare --mount --uts --propagation private`, then the `after` commands
    in that same wrapper namespace; stdout is split at a marker line."""
    command = f'bash {script}; echo "status=$?"; echo "----after----"; {after}'
    proc = subprocess.run([shutil.which("unshare"), "--mount", "--uts", "--propagation", "private", "sh", "-c", command],
                          cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    script_out, _, after_out = proc.stdout.partition("----after----\n")
    lines = script_out.splitlines()
    status = int(lines.pop()[len("status="):]) if lines and lines[-1].startswith("status=") else -1
    return "\n".join(lines), status, after_out, proc.stderr


def net_host_minicontainer(env, tmp_path) -> dict:
    """The scripts' environment with a `minicontainer` whose `run` adds --net host."""
    real = shutil.which("minicontainer", path=env["PATH"])
    bindir = tmp_path / "net-host-bin"
    bindir.mkdir()
    (bindir / "minicontainer").write_text(
        f'#!/bin/sh\nif [ "$1" = run ]; then shift; exec {real} run --net host "$@"; fi\nexec {real} "$@"\n')
    (bindir / "minicontainer").chmod(0o755)
    return {"PATH": f"{bindir}:{env['PATH']}"}


def compare_lines(result) -> dict[str, str]:
    said = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in NAMES:
            said[words[0]] = words[1]
    return said


def test_compare_ns(run_script, mc, busybox, env, tmp_path):
    """compare-ns.sh says which namespaces a container shares with the host
    de: compare-ns.sh sagt, welche Namespaces ein Container mit dem Host teilt

    Hint: namespaces(7), section "The /proc/[pid]/ns/ directory": two processes share a namespace when the links there are equal. Compare the host's links with a container's.
    Hint 2: one `minicontainer run --rm busybox sh -c '…'` can print all eight links (a for loop over the names); then, per name, compare with the host's readlink and print "NAME same" or "NAME different".
    Hinweis: namespaces(7), Abschnitt "The /proc/[pid]/ns/ directory": zwei Prozesse teilen einen Namespace, wenn die Links dort gleich sind. Vergleiche die Links des Hosts mit denen eines Containers.
    Hinweis 2: ein `minicontainer run --rm busybox sh -c '…'` kann alle acht Links ausgeben (eine for-Schleife über die Namen); dann pro Name mit dem readlink des Hosts vergleichen und "NAME same" oder "NAME different" ausgeben.
    """
    loop = "for n in " + " ".join(NAMES) + "; do readlink /proc/self/ns/$n; done"
    inside = mc("run", "--rm", busybox, "sh", "-c", loop).stdout.split()
    truth = {n: "same" if os.readlink(f"/proc/self/ns/{n}") in inside else "different" for n in NAMES}
    for extra, label in (([], ""), (["--net", "host"], " --net host")):
        if extra:
            truth["net"] = "same"
        result = run_script("compare-ns.sh", extra_env=net_host_minicontainer(env, tmp_path) if extra else None)
        said = compare_lines(result)
        missing = ", ".join(n for n in NAMES if n not in said)
        assert not missing, msg(f"no 'NAME same|different' line for: {missing} ({result.describe()})",
                                f"keine Zeile 'NAME same|different' für: {missing} ({result.describe()})")
        wrong = ", ".join(n for n in NAMES if said[n] != truth[n])
        if extra:
            assert not wrong, msg(
                f"when the checker's containers share the host's network namespace (run{label}), compare-ns.sh "
                f"is wrong for: {wrong}. Does it really read /proc/self/ns in a container and compare?",
                f"wenn die Container des Checkers den Netzwerk-Namespace des Hosts teilen (run{label}), liegt "
                f"compare-ns.sh falsch bei: {wrong}. Liest es wirklich /proc/self/ns in einem Container und vergleicht?")
        assert not wrong, msg(f"not right for: {wrong}", f"nicht richtig für: {wrong}")


def test_uts(work, watched, written):
    """uts.sh renames the host in a new UTS namespace only
    de: uts.sh benennt den Host nur in einem neuen UTS-Namespace um

    Hint: uts_namespaces(7) and unshare(1): which option gives a command its own hostname?
    Hint 2: run `hostname lab02; hostname` in a shell started by unshare with that option.
    Hinweis: uts_namespaces(7) und unshare(1): welche Option gibt einem Befehl einen eigenen Hostnamen?
    Hinweis 2: `hostname lab02; hostname` in einer Shell ausführen, die unshare mit dieser Option startet.
    """
    env, calls = watched
    written("uts.sh")
    out, status, after, err = wrapped(work, env, "uts.sh", "hostname")
    assert status == 0, msg(f"uts.sh failed (exit {status}): ", f"uts.sh ist gescheitert (Exit {status}): ") + err.strip()
    assert out.strip().splitlines()[-1:] == ["lab02"], msg(f"uts.sh should print lab02, printed: {out.strip()!r}",
                                                           f"uts.sh sollte lab02 ausgeben, gab aus: {out.strip()!r}")
    assert after.strip() == socket.gethostname(), msg(
        "the hostname outside uts.sh's own namespace changed: did you forget `unshare --uts`?",
        "der Hostname ausserhalb des Namespace von uts.sh hat sich geändert: `unshare --uts` vergessen?")
    require_unshare(calls, "uts.sh", "uts")


def test_pid(run_script, watched):
    """pid.sh shows a shell that is PID 1 and sees only its own processes
    de: pid.sh zeigt eine Shell mit PID 1, die nur ihre eigenen Prozesse sieht

    Hint: pid_namespaces(7): which process becomes PID 1 of a new PID namespace — the caller of unshare(2), or its next child? And where does ps get its list from?
    Hint 2: unshare has options for both: one forks before running the command, one mounts a new /proc. Print "my PID: $$", then ps -o pid,comm.
    Hinweis: pid_namespaces(7): welcher Prozess wird PID 1 eines neuen PID-Namespace — der Aufrufer von unshare(2) oder sein nächstes Kind? Und woher nimmt ps seine Liste?
    Hinweis 2: unshare hat für beides eine Option: eine forkt vor dem Befehl, eine hängt ein neues /proc ein. "my PID: $$" ausgeben, dann ps -o pid,comm.
    """
    env, calls = watched
    result = run_script("pid.sh", extra_env={"PATH": env["PATH"]})
    lines = result.stdout.strip().splitlines()
    assert "my PID: 1" in lines, msg(f"no line 'my PID: 1' ({result.describe()})", f"keine Zeile 'my PID: 1' ({result.describe()})")
    listed = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert listed and len(listed) <= 3, msg(f"ps should list only the namespace's own few processes, it listed {len(listed)}",
                                            f"ps sollte nur die wenigen Prozesse des Namespace zeigen, es zeigte {len(listed)}")
    assert listed[0][0] == "1", msg("the first process ps lists should be PID 1", "der erste Prozess, den ps zeigt, sollte PID 1 sein")
    require_unshare(calls, "pid.sh", "pid", "fork")


def test_net(run_script, watched):
    """net.sh lists the interfaces of a new network namespace: only lo
    de: net.sh zeigt die Interfaces eines neuen Netzwerk-Namespace: nur lo

    Hint: network_namespaces(7): a new network namespace starts with one interface. Run the listing inside one.
    Hint 2: put the ip … | cut pipeline in unshare --net sh -c "…" (mind the quotes: the pipe must run inside).
    Hinweis: network_namespaces(7): ein neuer Netzwerk-Namespace beginnt mit einem einzigen Interface. Führe die Auflistung darin aus.
    Hinweis 2: die Pipeline ip … | cut in unshare --net sh -c "…" setzen (Anführungszeichen beachten: die Pipe muss drinnen laufen).
    """
    env, calls = watched
    result = run_script("net.sh", extra_env={"PATH": env["PATH"]})
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0, result.describe()
    assert names == ["lo"], msg(f"expected only lo, got: {', '.join(names) or 'nothing'}",
                                f"erwartet nur lo, bekommen: {', '.join(names) or 'nichts'}")
    require_unshare(calls, "net.sh", "net")


def test_mnt(work, watched, written):
    """mnt.sh mounts a tmpfs that only its own mount namespace sees
    de: mnt.sh hängt ein tmpfs ein, das nur der eigene Mount-Namespace sieht

    Hint: mount_namespaces(7), "shared subtrees": a new mount namespace may still pass mounts back to the host unless its propagation is private.
    Hint 2: unshare --mount --propagation private sh -c '…': inside, mount a tmpfs on /mnt, write /mnt/hello.txt and cat it.
    Hinweis: mount_namespaces(7), "shared subtrees": ein neuer Mount-Namespace kann Mounts noch an den Host weitergeben, ausser seine Propagation ist private.
    Hinweis 2: unshare --mount --propagation private sh -c '…': darin ein tmpfs auf /mnt einhängen, /mnt/hello.txt schreiben und ausgeben.
    """
    env, calls = watched
    written("mnt.sh")
    out, status, after, err = wrapped(work, env, "mnt.sh",
                                      "test -e /mnt/hello.txt && echo LEAKED; grep -c ' /mnt ' /proc/self/mounts")
    assert status == 0, msg(f"mnt.sh failed (exit {status}): ", f"mnt.sh ist gescheitert (Exit {status}): ") + err.strip()
    assert "only in my namespace" in out, msg(f"mnt.sh should print the file it wrote, printed: {out.strip()!r}",
                                              f"mnt.sh sollte die geschriebene Datei ausgeben, gab aus: {out.strip()!r}")
    assert "LEAKED" not in after and after.strip().endswith("0"), msg(
        "the tmpfs on /mnt is visible outside mnt.sh's namespace: use unshare --mount --propagation private",
        "das tmpfs auf /mnt ist ausserhalb des Namespace von mnt.sh sichtbar: unshare --mount --propagation private verwenden")
    require_unshare(calls, "mnt.sh", "mount")


def test_user(run_script, watched):
    r"""user.sh: nobody outside, root inside a user namespace
    de: user.sh: draussen nobody, drinnen root in einem User-Namespace

    Hint: user_namespaces(7): the one namespace an unprivileged user may create; uid_map says who you are inside. Which unshare option writes a map that makes you 0?
    Hint 2: inside setpriv's sh: unshare --user --map-root-user sh -c "echo \"inside: \$(id -u)\"" (escape the $, or the outer sh expands it).
    Hinweis: user_namespaces(7): der einzige Namespace, den ein unprivilegierter Benutzer anlegen darf; uid_map sagt, wer du drinnen bist. Welche Option von unshare schreibt eine Abbildung, die dich zu 0 macht?
    Hinweis 2: in der sh von setpriv: unshare --user --map-root-user sh -c "echo \"inside: \$(id -u)\"" ($ maskieren, sonst ersetzt ihn die äussere sh).
    """
    from minicontainer.api import probe_unprivileged_userns
    works, why = probe_unprivileged_userns()
    if not works:
        pytest.skip(msg(f"this machine forbids unprivileged user namespaces ({why}); `minicontainer doctor` shows the fix",
                        f"diese Maschine verbietet unprivilegierte User-Namespaces ({why}); `minicontainer doctor` zeigt die Abhilfe"))
    env, calls = watched
    result = run_script("user.sh", extra_env={"PATH": env["PATH"]})
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "outside: 65534" in lines, msg(f"no line 'outside: 65534' ({result.describe()})",
                                          f"keine Zeile 'outside: 65534' ({result.describe()})")
    assert "inside: 0" in lines, msg(f"no line 'inside: 0' ({result.describe()})", f"keine Zeile 'inside: 0' ({result.describe()})")
    require_unshare(calls, "user.sh", "user")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: `minicontainer run --explain --rm busybox true` shows who calls unshare; pid_namespaces(7) explains --fork.
    Hinweis: `minicontainer run --explain --rm busybox true` zeigt, wer unshare aufruft; pid_namespaces(7) erklärt --fork.
    """
    answers.expect({"q1": "b", "q2": "a", "q3": "c", "q4": "a"})
