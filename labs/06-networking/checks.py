"""Lab 06 — networking: veth, bridge, NAT, a published web server. One check per task (see README.md).

veth.sh runs inside a private mount namespace the checker makes (`ip netns add` bind-mounts
/run/netns/NAME; those mounts then vanish with it).
"""
from __future__ import annotations

import ipaddress
import json
import re
import subprocess

from minicontainer.api import msg


def test_veth(work, env, written):
    """veth.sh joins two network namespaces with a veth pair; red pings blue
    de: veth.sh verbindet zwei Netzwerk-Namespaces mit einem veth-Paar; red pingt blue

    Hint: veth(4) and ip-link(8): a pair is created in one namespace, then one end is moved into another; each end needs an address (ip-address(8)) and must be up.
    Hint 2: ip link add veth-red type veth peer name veth-blue; ip link set veth-red netns red; ip -n red addr add …; ip -n red link set … up.
    Hinweis: veth(4) und ip-link(8): ein Paar entsteht in einem Namespace, dann wird ein Ende in einen anderen verschoben; jedes Ende braucht eine Adresse (ip-address(8)) und muss up sein.
    Hinweis 2: ip link add veth-red type veth peer name veth-blue; ip link set veth-red netns red; ip -n red addr add …; ip -n red link set … up.
    """
    script = written("veth.sh")
    # A private /run/netns: the names red and blue are this run's alone (ip netns add writes a
    # file there, and the directory is the host's), beside another student or the cluster tests.
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           "mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && "
                           f"bash {script}; echo status=$?; ip netns list | cut -d' ' -f1 | grep -cxE 'red|blue'"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout
    last = (proc.stderr.strip().splitlines() or out.strip().splitlines() or [msg("no output", "keine Ausgabe")])[-1]
    assert "status=0" in out and "0% packet loss" in out, msg(f"red cannot ping blue: {last}",
                                                              f"red erreicht blue nicht per ping: {last}")
    assert out.strip().splitlines()[-1] == "0", msg("veth.sh left red or blue behind (ip netns list)",
                                                    "veth.sh hat red oder blue zurückgelassen (ip netns list)")


def test_inspect(run_script, mc, busybox):
    """inspect.sh prints the container's address, its gateway and the host's bridge
    de: inspect.sh gibt die Adresse des Containers, sein Gateway und die Bridge des Hosts aus

    Hint: inside a container, `ip addr` shows eth0's address and `ip route` the default route; on the host, the interface that holds the gateway's address is the bridge.
    Hint 2: ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; ip route | grep ^default | cut -d' ' -f3; on the host: ip -4 -o addr show | grep " GATEWAY/".
    Hinweis: im Container zeigt `ip addr` die Adresse von eth0 und `ip route` die Default-Route; auf dem Host ist die Schnittstelle mit der Adresse des Gateways die Bridge.
    Hinweis 2: ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; ip route | grep ^default | cut -d' ' -f3; auf dem Host: ip -4 -o addr show | grep " GATEWAY/".
    """
    mc("rm", "-f", "lab06-truth")
    started = mc("run", "-d", "--name", "lab06-truth", busybox, "sleep", "30")
    assert started.returncode == 0, msg("the checker cannot start its container: ", "der Checker kann seinen Container nicht starten: ") + started.stderr.strip()
    try:
        net = json.loads(mc("inspect", "lab06-truth").stdout)[0]["NetworkSettings"]
    finally:
        mc("rm", "-f", "lab06-truth")
    result = run_script("inspect.sh")
    said = dict(line.split(None, 1) for line in result.stdout.splitlines() if len(line.split()) == 2)
    for key in ("address", "gateway", "bridge"):
        assert key in said, msg(f"no line '{key} …' ", f"keine Zeile '{key} …' ") + f"({result.describe()})"
    subnet = ipaddress.ip_network(f"{net['gateway']}/{net['prefixlen']}", strict=False)
    address = ipaddress.ip_interface(said["address"])
    assert address.network == subnet, msg(f"address {said['address']} is not in the bridge network {subnet}",
                                          f"die Adresse {said['address']} liegt nicht im Netz der Bridge, {subnet}")
    assert said["gateway"] == net["gateway"], msg(f"the gateway is {net['gateway']}, not {said['gateway']}",
                                                  f"das Gateway ist {net['gateway']}, nicht {said['gateway']}")
    assert said["bridge"] == net["bridge"], msg(f"the bridge is {net['bridge']}, not {said['bridge']}",
                                                f"die Bridge ist {net['bridge']}, nicht {said['bridge']}")


def test_publish(run_script, mc, busybox):
    """publish.sh serves a page from a container on the host's port 8080
    de: publish.sh liefert eine Seite aus einem Container auf Port 8080 des Hosts aus

    Hint: a server must keep running while you fetch the page: start the container detached, with a name (to remove it later) and -p HOST:CONTAINER.
    Hint 2: minicontainer run -d --name lab06-web -p 8080:80 busybox sh -c "$SERVE"
    Hinweis: ein Server muss weiterlaufen, während du die Seite holst: den Container im Hintergrund starten, mit Namen (um ihn später zu entfernen) und -p HOST:CONTAINER.
    Hinweis 2: minicontainer run -d --name lab06-web -p 8080:80 busybox sh -c "$SERVE"
    """
    result = run_script("publish.sh", timeout=60)
    assert "hello from lab 06, served by" in result.stdout, \
        msg("no page from 127.0.0.1:8080 ", "keine Seite von 127.0.0.1:8080 ") + f"({result.describe()})"
    assert mc("inspect", "lab06-web").returncode != 0, msg("publish.sh should remove lab06-web at the end",
                                                           "publish.sh soll lab06-web am Ende entfernen")


def test_nat(run_script, busybox):
    """nat.sh shows the DNAT rule behind -p 8081:80
    de: nat.sh zeigt die DNAT-Regel hinter -p 8081:80

    Hint: `minicontainer inspect lab06-nat` names the firewall; nft(8) lists a whole ruleset, iptables-save(8) a table.
    Hint 2: print "firewall: …", then nft list ruleset | grep 8081 (or iptables-save -t nat | grep 8081, as `inspect … firewall` says).
    Hinweis: `minicontainer inspect lab06-nat` nennt die Firewall; nft(8) listet einen ganzen Regelsatz, iptables-save(8) eine Tabelle.
    Hinweis 2: „firewall: …“ ausgeben, dann nft list ruleset | grep 8081 (oder iptables-save -t nat | grep 8081, wie `inspect … firewall` sagt).
    """
    result = run_script("nat.sh", timeout=60)
    lines = [line for line in result.stdout.splitlines() if "8081" in line]
    assert lines, msg("no rule line mentions 8081 ", "keine Regelzeile nennt 8081 ") + f"({result.describe()})"
    assert any(re.search(r"\b80\b", line) or "dnat" in line.lower() for line in lines), \
        msg("the lines found do not look like the port mapping (8081 → 80)",
            "die gefundenen Zeilen sehen nicht nach der Port-Weiterleitung aus (8081 → 80)")


def test_names(run_script, busybox):
    """names.sh pings a container by its name from another container
    de: names.sh pingt einen Container über seinen Namen von einem anderen Container aus

    Hint: a container's /etc/hosts lists the other containers of its network by name: ping the server's name from a second container.
    Hint 2: minicontainer run --rm busybox ping -c 1 -W 2 lab06-server
    Hinweis: /etc/hosts eines Containers listet die anderen Container seines Netzes mit Namen: den Namen des Servers aus einem zweiten Container anpingen.
    Hinweis 2: minicontainer run --rm busybox ping -c 1 -W 2 lab06-server
    """
    result = run_script("names.sh", timeout=60)
    assert "PING lab06-server" in result.stdout and "0% packet loss" in result.stdout, \
        msg("no answer to a ping of lab06-server by name ", "keine Antwort auf ein ping an lab06-server über seinen Namen ") \
        + f"({result.describe()})"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/networking.md (bridge, veth, MASQUERADE, DNAT) answers all four.
    Hinweis: docs/networking.md (Bridge, veth, MASQUERADE, DNAT) beantwortet alle vier.
    """
    answers.expect({"q1": "a", "q2": "c", "q3": "b", "q4": "a"})
