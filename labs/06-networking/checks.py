"""Lab 06 — networking: veth, bridge, NAT, a published web server. One check per task (see README.md).

veth.sh runs inside a private mount namespace the checker makes (`ip netns add` bind-mounts
/run/netns/NAME; those mounts then vanish with it).
"""
from __future__ import annotations

import ipaddress
import json
import re
import subprocess


def test_veth(work, env):
    """veth.sh joins two network namespaces with a veth pair; red pings blue
    de: veth.sh verbindet zwei Netzwerk-Namespaces mit einem veth-Paar; red pingt blue

    Hint: ip link add veth-red type veth peer name veth-blue; ip link set veth-red netns red; ip -n red addr add …; ip -n red link set … up.
    Hinweis: ip link add veth-red type veth peer name veth-blue; ip link set veth-red netns red; ip -n red addr add …; ip -n red link set … up.
    """
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           "bash veth.sh; echo status=$?; ip netns list | wc -l"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout
    assert "status=0" in out and "0% packet loss" in out, \
        f"red cannot ping blue: {(proc.stderr.strip().splitlines() or out.strip().splitlines() or ['no output'])[-1]}"
    assert out.strip().splitlines()[-1] == "0", "veth.sh left network namespaces behind (ip netns list)"


def test_inspect(run_script, mc, busybox):
    """inspect.sh prints the container's address, its gateway and the host's bridge
    de: inspect.sh gibt die Adresse des Containers, sein Gateway und die Bridge des Hosts aus

    Hint: ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; ip route | grep ^default | cut -d' ' -f3; on the host: ip -4 -o addr show | grep " GATEWAY/".
    Hinweis: ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; ip route | grep ^default | cut -d' ' -f3; auf dem Host: ip -4 -o addr show | grep " GATEWAY/".
    """
    mc("rm", "-f", "lab06-truth")
    started = mc("run", "-d", "--name", "lab06-truth", busybox, "sleep", "30")
    assert started.returncode == 0, started.stderr
    try:
        net = json.loads(mc("inspect", "lab06-truth").stdout)[0]["NetworkSettings"]
    finally:
        mc("rm", "-f", "lab06-truth")
    result = run_script("inspect.sh")
    said = dict(line.split(None, 1) for line in result.stdout.splitlines() if len(line.split()) == 2)
    for key in ("address", "gateway", "bridge"):
        assert key in said, f"no line '{key} …' ({result.describe()})"
    subnet = ipaddress.ip_network(f"{net['gateway']}/{net['prefixlen']}", strict=False)
    address = ipaddress.ip_interface(said["address"])
    assert address.network == subnet, f"address {said['address']} is not in the bridge network {subnet}"
    assert said["gateway"] == net["gateway"], f"the gateway is {net['gateway']}, not {said['gateway']}"
    assert said["bridge"] == net["bridge"], f"the bridge is {net['bridge']}, not {said['bridge']}"


def test_publish(run_script, mc, busybox):
    """publish.sh serves a page from a container on the host's port 8080
    de: publish.sh liefert eine Seite aus einem Container auf Port 8080 des Hosts aus

    Hint: minicontainer run -d --name lab06-web -p 8080:80 busybox sh -c "$SERVE"
    Hinweis: minicontainer run -d --name lab06-web -p 8080:80 busybox sh -c "$SERVE"
    """
    result = run_script("publish.sh", timeout=60)
    assert "hello from lab 06, served by" in result.stdout, f"no page from 127.0.0.1:8080 ({result.describe()})"
    assert mc("inspect", "lab06-web").returncode != 0, "publish.sh should remove lab06-web at the end"


def test_nat(run_script, busybox):
    """nat.sh shows the DNAT rule behind -p 8081:80
    de: nat.sh zeigt die DNAT-Regel hinter -p 8081:80

    Hint: nft list ruleset | grep 8081 (or iptables-save -t nat | grep 8081, as `inspect … firewall` says).
    Hinweis: nft list ruleset | grep 8081 (oder iptables-save -t nat | grep 8081, wie `inspect … firewall` sagt).
    """
    result = run_script("nat.sh", timeout=60)
    lines = [line for line in result.stdout.splitlines() if "8081" in line]
    assert lines, f"no rule line mentions 8081 ({result.describe()})"
    assert any(re.search(r"\b80\b", line) or "dnat" in line.lower() for line in lines), \
        "the lines found do not look like the port mapping (8081 → 80)"


def test_names(run_script, busybox):
    """names.sh pings a container by its name from another container
    de: names.sh pingt einen Container mit seinem Namen aus einem anderen Container

    Hint: minicontainer run --rm busybox ping -c 1 -W 2 lab06-server
    Hinweis: minicontainer run --rm busybox ping -c 1 -W 2 lab06-server
    """
    result = run_script("names.sh", timeout=60)
    assert "PING lab06-server" in result.stdout and "0% packet loss" in result.stdout, result.describe()


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/networking.md (bridge, veth, MASQUERADE, DNAT) answers all four.
    Hinweis: docs/networking.md (Bridge, veth, MASQUERADE, DNAT) beantwortet alle vier.
    """
    answers.expect({"q1": "a", "q2": "c", "q3": "b", "q4": "a"})
