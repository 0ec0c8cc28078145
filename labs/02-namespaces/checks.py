"""Lab 02 — namespaces one by one. One check per task (see README.md).

Every script runs inside an extra mount + UTS namespace that the checker makes (so a script that
forgets its own `unshare` cannot rename or remount the host); the checker then looks at that
wrapper namespace to see whether the script's change leaked out of the script's own namespace.
"""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def wrapped(work, env, script: str, after: str = "", timeout: float = 30):
    """bash SCRIPT inside `unshare --mount --uts --propagation private`, then the `after` commands
    in that same wrapper namespace; stdout is split at a marker line."""
    command = f'bash {script}; echo "status=$?"; echo "----after----"; {after}'
    proc = subprocess.run(["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", command],
                          cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    script_out, _, after_out = proc.stdout.partition("----after----\n")
    lines = script_out.splitlines()
    status = int(lines.pop()[len("status="):]) if lines and lines[-1].startswith("status=") else -1
    return "\n".join(lines), status, after_out, proc.stderr


def test_compare_ns(run_script, mc, busybox):
    """compare-ns.sh says which namespaces a container shares with the host
    de: compare-ns.sh sagt, welche Namespaces ein Container mit dem Host teilt

    Hint: read /proc/self/ns/NAME inside `minicontainer run --rm busybox sh -c '…'` and compare each line with the host's readlink.
    Hinweis: /proc/self/ns/NAME in `minicontainer run --rm busybox sh -c '…'` lesen und jede Zeile mit dem readlink des Hosts vergleichen.
    """
    loop = "for n in " + " ".join(NAMES) + "; do readlink /proc/self/ns/$n; done"
    inside = mc("run", "--rm", busybox, "sh", "-c", loop).stdout.split()
    truth = {n: "same" if os.readlink(f"/proc/self/ns/{n}") in inside else "different" for n in NAMES}
    result = run_script("compare-ns.sh")
    said = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in NAMES:
            said[words[0]] = words[1]
    missing = [n for n in NAMES if n not in said]
    assert not missing, f"no 'NAME same|different' line for: {', '.join(missing)} ({result.describe()})"
    wrong = [n for n in NAMES if said[n] != truth[n]]
    assert not wrong, f"not right for: {', '.join(wrong)}"


def test_uts(work, env):
    """uts.sh renames the host in a new UTS namespace only
    de: uts.sh benennt den Host nur in einem neuen UTS-Namespace um

    Hint: unshare --uts sh -c 'hostname lab02; hostname'
    Hinweis: unshare --uts sh -c 'hostname lab02; hostname'
    """
    out, status, after, err = wrapped(work, env, "uts.sh", "hostname")
    assert status == 0, f"uts.sh failed (exit {status}): {err.strip()}"
    assert out.strip().splitlines()[-1:] == ["lab02"], f"uts.sh should print lab02, printed: {out.strip()!r}"
    assert after.strip() == socket.gethostname(), \
        "the hostname outside uts.sh's own namespace changed: did you forget `unshare --uts`?"


def test_pid(run_script):
    """pid.sh shows a shell that is PID 1 and sees only its own processes
    de: pid.sh zeigt eine Shell mit PID 1, die nur ihre eigenen Prozesse sieht

    Hint: unshare --pid --fork --mount-proc sh -c '…' — --fork because only the child of unshare is PID 1.
    Hinweis: unshare --pid --fork --mount-proc sh -c '…' — --fork, weil erst das Kind von unshare PID 1 ist.
    """
    result = run_script("pid.sh")
    lines = result.stdout.strip().splitlines()
    assert "my PID: 1" in lines, f"no line 'my PID: 1' ({result.describe()})"
    listed = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert listed and len(listed) <= 3, \
        f"ps should list only the namespace's own few processes, it listed {len(listed)}"
    assert listed[0][0] == "1", "the first process ps lists should be PID 1"


def test_net(run_script):
    """net.sh lists the interfaces of a new network namespace: only lo
    de: net.sh zeigt die Interfaces eines neuen Netzwerk-Namespace: nur lo

    Hint: put the ip … | cut pipeline in unshare --net sh -c "…" (mind the quotes).
    Hinweis: die Pipeline ip … | cut in unshare --net sh -c "…" setzen (Anführungszeichen beachten).
    """
    result = run_script("net.sh")
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0, result.describe()
    assert names == ["lo"], f"expected only lo, got: {', '.join(names) or 'nothing'}"


def test_mnt(work, env):
    """mnt.sh mounts a tmpfs that only its own mount namespace sees
    de: mnt.sh hängt ein tmpfs ein, das nur der eigene Mount-Namespace sieht

    Hint: unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /mnt; echo … > /mnt/hello.txt; cat /mnt/hello.txt'
    Hinweis: unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /mnt; echo … > /mnt/hello.txt; cat /mnt/hello.txt'
    """
    out, status, after, err = wrapped(work, env, "mnt.sh",
                                      "test -e /mnt/hello.txt && echo LEAKED; grep -c ' /mnt ' /proc/self/mounts")
    assert status == 0, f"mnt.sh failed (exit {status}): {err.strip()}"
    assert "only in my namespace" in out, f"mnt.sh should print the file it wrote, printed: {out.strip()!r}"
    assert "LEAKED" not in after and after.strip().endswith("0"), \
        "the tmpfs on /mnt is visible outside mnt.sh's namespace: use unshare --mount --propagation private"


def test_user(run_script):
    r"""user.sh: nobody outside, root inside a user namespace
    de: user.sh: draussen nobody, drinnen root in einem User-Namespace

    Hint: inside setpriv's sh: unshare --user --map-root-user sh -c "echo \"inside: \$(id -u)\"" (escape the $).
    Hinweis: in der sh von setpriv: unshare --user --map-root-user sh -c "echo \"inside: \$(id -u)\"" ($ maskieren).
    """
    from minicontainer.doctor import probe_unprivileged_userns
    works, why = probe_unprivileged_userns()
    if not works:
        pytest.skip(f"this machine forbids unprivileged user namespaces ({why}); `minicontainer doctor` shows the fix")
    result = run_script("user.sh")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "outside: 65534" in lines, f"no line 'outside: 65534' ({result.describe()})"
    assert "inside: 0" in lines, f"no line 'inside: 0' ({result.describe()})"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: `minicontainer run --explain --rm busybox true` shows who calls unshare; pid_namespaces(7) explains --fork.
    Hinweis: `minicontainer run --explain --rm busybox true` zeigt, wer unshare aufruft; pid_namespaces(7) erklärt --fork.
    """
    answers.expect({"q1": "b", "q2": "a", "q3": "c", "q4": "a"})
