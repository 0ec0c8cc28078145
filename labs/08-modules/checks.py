"""Lab 08 — kernel modules and `minicontainer doctor`. One check per task (see README.md).

The truth each script is compared with comes from minicontainer/doctor.py: modules.sh must agree
with doctor's module states, layout.sh with its cgroup layout, and works.sh with the checker's
own attempt to use each feature.
"""
from __future__ import annotations

import subprocess

FEATURES = ("overlay", "veth", "bridge", "nf_nat")


def parse_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2:
            pairs[words[0]] = words[1]
    return pairs


def test_modules(run_script):
    """modules.sh tells for overlay, veth, bridge, nf_nat: loaded, builtin, loadable or missing
    de: modules.sh sagt für overlay, veth, bridge, nf_nat: loaded, builtin, loadable oder missing

    Hint: check in this order: /proc/modules, modules.builtin, CONFIG_X=y (zcat /proc/config.gz), modinfo NAME, CONFIG_X=m.
    Hinweis: prüfe in dieser Reihenfolge: /proc/modules, modules.builtin, CONFIG_X=y (zcat /proc/config.gz), modinfo NAME, CONFIG_X=m.
    """
    from minicontainer.doctor import module_state
    result = run_script("modules.sh")
    said = parse_pairs(result.stdout)
    wrong = []
    for name in FEATURES:
        truth = module_state(name)
        accepted = {"missing", "unknown"} if truth.state in ("missing", "unknown") else {truth.state}
        if said.get(name) not in accepted:
            wrong.append(f"{name}: you said {said.get(name, 'nothing')}, it is {truth.state} ({truth.how})")
    assert not wrong, "\n".join(wrong)


def feature_works(name: str) -> bool:
    commands = {
        "overlay": ["grep", "-qw", "overlay", "/proc/filesystems"],
        "veth": ["unshare", "--net", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        "bridge": ["unshare", "--net", "ip", "link", "add", "br0", "type", "bridge"],
    }
    return subprocess.run(commands[name], capture_output=True).returncode == 0


def test_works(run_script):
    """works.sh loads and tries overlay, veth and bridge: "NAME works" or "NAME fails"
    de: works.sh lädt und probiert overlay, veth und bridge: „NAME works“ oder „NAME fails“

    Hint: try overlay grep -qw overlay /proc/filesystems; try veth unshare --net ip link add v0 type veth peer name v1; bridge likewise.
    Hinweis: try overlay grep -qw overlay /proc/filesystems; try veth unshare --net ip link add v0 type veth peer name v1; bridge genauso.
    """
    result = run_script("works.sh")
    said = parse_pairs(result.stdout)
    wrong = []
    for name in ("overlay", "veth", "bridge"):
        truth = "works" if feature_works(name) else "fails"
        if said.get(name) != truth:
            wrong.append(f"{name}: you said {said.get(name, 'nothing')}, it {truth}")
    assert not wrong, "\n".join(wrong)


def test_layout(run_script):
    """layout.sh prints this machine's cgroup layout, as doctor does
    de: layout.sh gibt das cgroup-Layout dieser Maschine aus, wie doctor

    Hint: stat -fc %T /sys/fs/cgroup is cgroup2fs → unified; else cgroup2fs at /sys/fs/cgroup/unified → hybrid; else legacy.
    Hinweis: stat -fc %T /sys/fs/cgroup ist cgroup2fs → unified; sonst cgroup2fs unter /sys/fs/cgroup/unified → hybrid; sonst legacy.
    """
    from minicontainer.cgroups.layout import detect_layout
    truth = detect_layout().kind
    result = run_script("layout.sh")
    words = result.stdout.split()
    assert words[-1:] == [truth], f"this machine's layout is {truth}; layout.sh printed {result.stdout.strip()!r}"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: lsmod(8), modinfo(8) and capabilities(7) (CAP_SYS_MODULE) answer them.
    Hinweis: lsmod(8), modinfo(8) und capabilities(7) (CAP_SYS_MODULE) beantworten sie.
    """
    answers.expect({"q1": "a", "q2": "a", "q3": "b", "q4": "b"})
