"""The dashboard (minicontainer/dashboard/): a real server, real containers, a real browser.

Debian's chromium, driven by selenium through chromium-driver (scripts/setup.sh installs both),
opens the page the way a lecturer does. The containers are started from the CLI, as in a demo.
Screenshots go to build/test-artifacts/dashboard/ (or $MC_TEST_ARTIFACTS): the path is printed
at the end of the session, and docs/dashboard.md shows them.

No test asserts a wall-clock time: waits poll with generous bounds (a loaded 2-core CI machine),
and the latency seen is printed, not asserted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.root

ARTIFACTS = Path(os.environ.get("MC_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts" / "dashboard")
HOG_LIMIT = 48 * 1024 * 1024
# PID 1 is `tail`: it keeps the one endless line it reads (no newline in /dev/zero) in memory,
# fed 4 MiB every half second, so the gauge climbs for a few seconds before the OOM killer.
HOG = "mkfifo /f; (while :; do head -c 4194304 /dev/zero; sleep 0.5; done) > /f & exec tail /f"


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    """Poll until condition() is truthy; its value. Generous: CI is a loaded 2-core machine.
    An element the page replaced between two WebDriver calls counts as "not yet"."""
    try:
        from selenium.common.exceptions import StaleElementReferenceException as Stale
    except ImportError:
        Stale = ()
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Stale:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


# ── servers ───────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def readonly_url(mc_root):
    """`minicontainer dashboard --port 0` from the CLI (read-only): its printed URL."""
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "dashboard",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("minicontainer dashboard: http://127.0.0.1:"), line + proc.stderr.read()
    yield line.split()[2]
    proc.terminate()
    proc.wait(timeout=30)


def serve_in_thread(root, **options):
    from minicontainer.api import serve_dashboard
    stop, urls = threading.Event(), []
    thread = threading.Thread(target=serve_dashboard, args=(root,),
                              kwargs=dict(port=0, ready=urls.append, stop=stop, **options), daemon=True)
    thread.start()
    wait_for(lambda: urls, 30, "the dashboard to listen")
    return urls[0], stop, thread


@pytest.fixture(scope="module")
def actions_url(mc_root):
    """A dashboard with --allow-actions, in this process."""
    url, stop, thread = serve_in_thread(mc_root, allow_actions=True)
    yield url
    stop.set()
    thread.join(30)


def request(url: str, path: str, method: str = "GET", body=None, headers=None) -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    base, _, query = url.partition("?")
    full = base.rstrip("/") + path + (("&" if "?" in path else "?") + query if query else "")
    req = urllib.request.Request(full, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# ── the browser ───────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def browser(tmp_path_factory, request):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh --test installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)            # --no-sandbox: chromium refuses root otherwise
    b = webdriver.Chrome(options=options, service=Service(driver))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield b
    b.quit()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(f"dashboard screenshots: {ARTIFACTS}")


def screenshot(browser, name: str) -> None:
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def open_page(browser, url: str) -> None:
    """…until the stream is open *and* its first message (the full state: cards, mode) is
    applied — onopen comes before it, and a loaded machine can leave a gap between the two."""
    browser.get(url)
    conn = lambda: browser.find_element("id", "conn")     # noqa: E731
    wait_for(lambda: conn().get_attribute("data-state") == "live" and conn().get_attribute("data-updated"),
             60, "the page's stream to be live and its first message applied")


def card(browser, name: str):
    found = browser.find_elements("css selector", f'#containers .card[data-name="{name}"]')
    return found[0] if found else None


def gauge(card_element, kind: str) -> float:
    return float(card_element.find_element("css selector", f".val.{kind}").get_attribute("data-value") or 0)


# ── the acceptance tests ──────────────────────────────────────────────────────────────────

def test_page_loads_and_a_new_container_appears(browser, readonly_url, detached):
    open_page(browser, readonly_url)
    assert browser.title == "minicontainer — live"
    assert browser.find_element("id", "mode").text == "read-only"
    name = f"dash-new-{os.getpid()}"
    detached("-m", "64m", "busybox", "sleep", "1000", name=name)
    started = time.monotonic()
    c = wait_for(lambda: card(browser, name), 60, f"the card of {name}")
    print(f"card of {name} appeared {time.monotonic() - started:.2f} s after `run -d` returned")
    wait_for(lambda: card(browser, name).get_attribute("data-status") == "running", 30, "running")
    c = card(browser, name)
    # the namespaces as inode numbers (7 of them), the process (host PID ↔ PID 1 inside)
    assert len(c.find_elements("css selector", ".ns")) == 7
    pid_row = c.find_element("css selector", ".procs tr[data-pid]")
    assert pid_row.find_elements("css selector", "td")[1].text == "1"
    # no user namespace of its own: its user namespace is the host's, and the page says so
    assert c.find_elements("css selector", '.ns.host[data-ns^="user:"]')
    wait_for(lambda: gauge(card(browser, name), "memory") > 0, 30, "a memory reading")
    assert "64 MiB" in c.find_element("css selector", ".val.memory").text
    screenshot(browser, "container")


def test_memory_gauge_rises_until_the_oom_kill_shows_as_an_event(browser, readonly_url, mc, detached):
    open_page(browser, readonly_url)
    name = f"dash-hog-{os.getpid()}"
    cid = detached("-m", "48m", "busybox", "sh", "-c", HOG, name=name)
    readings, shots = [], []

    def climbing():
        c = card(browser, name)
        if c is not None and c.get_attribute("data-status") == "running":
            readings.append(gauge(c, "memory"))
            if readings[-1] > HOG_LIMIT / 2 and not shots:
                shots.append(screenshot(browser, "memory-rising"))
        return browser.find_elements("css selector", f'#events li[data-action="oom"][data-name="{name}"]')
    wait_for(climbing, 120, "the oom event")
    print(f"memory readings of {name} (MiB): {[round(r / 2**20, 1) for r in readings]}")
    assert max(readings) > HOG_LIMIT / 2, readings        # the gauge rose toward the limit…
    assert readings[0] < max(readings)                       # …from below it
    wait_for(lambda: "oom" in (card(browser, name).get_attribute("class") or ""), 30, "the OOM badge")
    assert card(browser, name).find_element("css selector", ".status").text == "OOM killed"
    assert mc("inspect", "--format", "{{.State.OOMKilled}}", cid).stdout.strip() == "true"
    screenshot(browser, "oom-killed")


def test_an_oom_kill_inside_a_running_container_is_an_event(readonly_url, detached):
    """The OOM killer picks `tail`, not PID 1 (sh goes on): no exit record says so, but the
    oom_kill counter of the container's memory cgroup rises, and the dashboard reports it."""
    name = f"dash-inner-oom-{os.getpid()}"
    cid = detached("-m", "32m", "busybox", "sh", "-c",
                   "head -c 100m /dev/zero | tail; exec sleep 1000", name=name)

    def kernel_event():
        return [e for e in request(readonly_url, "/api/state")[1]["events"]
                if e["id"] == cid and e["action"] == "oom_kill"]
    (event,) = wait_for(kernel_event, 60, "the oom_kill event")
    assert event["source"] == "kernel" and event["detail"]["oom_kill"] >= 1
    state = request(readonly_url, "/api/state")[1]
    assert [c["status"] for c in state["containers"] if c["id"] == cid] == ["running"]


def test_a_shared_network_namespace_is_highlighted(browser, readonly_url, detached):
    """`--net container:A`: both cards show the same net inode, marked as shared."""
    open_page(browser, readonly_url)
    a, b = f"dash-a-{os.getpid()}", f"dash-b-{os.getpid()}"
    detached("busybox", "sleep", "1000", name=a)
    detached("--net", f"container:{a}", "busybox", "sleep", "1000", name=b)

    def shared_chips():
        chips = browser.find_elements("css selector", '.card .ns.shared[data-ns^="net:"]')
        return {ch.get_attribute("data-ns") for ch in chips} if len(chips) >= 2 else None
    keys = wait_for(shared_chips, 60, "the shared net namespace")
    status, state = request(readonly_url, "/api/state")
    assert status == 200
    (key,) = keys
    assert set(state["shared"][key]) == {a, b}
    mnt = {name: state["details"][cid]["namespaces"]["mnt"] for cid in state["details"]
           for name in (a, b) if state["details"][cid]["name"] == name}
    assert mnt[a] != mnt[b]                                  # only the network is shared
    screenshot(browser, "shared-namespace")


def test_kill_button_with_allow_actions(browser, actions_url, detached):
    open_page(browser, actions_url)
    assert browser.find_element("id", "mode").text == "actions enabled"
    name = f"dash-kill-{os.getpid()}"
    detached("--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "1000", name=name)
    wait_for(lambda: card(browser, name) is not None and card(browser, name).get_attribute("data-health") == "healthy",
             60, "the card, healthy")
    assert card(browser, name).find_element("css selector", ".status").text == "running (healthy)"
    card(browser, name).find_element("css selector", 'button[data-action="kill"]').click()
    wait_for(lambda: card(browser, name).get_attribute("data-status") == "exited", 60, "the kill")
    wait_for(lambda: browser.find_elements("css selector", f'#events li[data-action="die"][data-name="{name}"]'),
             30, "the die event")


# ── bad requests: 4xx, a message, nothing changed ─────────────────────────────────────────

def test_bad_requests_get_4xx_and_change_nothing(readonly_url, actions_url, mc, detached):
    name = f"dash-bad-{os.getpid()}"
    detached("busybox", "sleep", "1000", name=name)
    cases = [
        (readonly_url, "POST", f"/api/containers/{name}/kill", {}, {}, 403, "read-only"),
        (readonly_url, "POST", f"/api/containers/{name}/stop", {}, {}, 403, "--allow-actions"),
        (readonly_url, "GET", "/api/containers/no-such-ctr", None, {}, 404, "no-such-ctr"),
        (actions_url, "POST", "/api/containers/no-such-ctr/kill", {}, {}, 404, "no-such-ctr"),
        (actions_url, "POST", f"/api/containers/{name}/explode", {}, {}, 404, "no such action"),
        (actions_url, "POST", f"/api/containers/{name}/kill", {"signal": ["x"]}, {}, 400, "signal"),
        (actions_url, "POST", f"/api/containers/{name}/kill", {"signal": "NOPE"}, {}, 400, "NOPE"),
        (actions_url, "POST", f"/api/containers/{name}/kill", b"{not json", {}, 400, "not JSON"),
        (actions_url, "POST", f"/api/containers/{name}/kill", b"signal=KILL",
         {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (actions_url, "POST", f"/api/containers/{name}/kill", {},
         {"Origin": "http://evil.example"}, 403, "cross-origin"),
        (actions_url, "GET", "/api/state", None, {"Host": "evil.example:80"}, 403, "loopback"),
        (actions_url, "POST", "/api/deployments/nope/scale", {"replicas": 2}, {}, 404, "nope"),
        (actions_url, "POST", "/api/deployments/nope/scale", {"replicas": -1}, {}, 400, "replicas"),
        (actions_url, "POST", "/api/deployments/nope/scale", {"replicas": 2.5}, {}, 400, "whole number"),
        (actions_url, "POST", "/api/nodes/nope/fail", {}, {}, 404, "nope"),
        (actions_url, "DELETE", f"/api/containers/{name}", None, {}, 405, "GET"),
        (actions_url, "GET", "/static/../server.py", None, {}, 404, ""),
    ]
    for url, method, path, body, headers, code, words in cases:
        status, answer = request(url, path, method, body, headers)
        assert (status, words in answer.get("error", "")) == (code, True), (method, path, status, answer)
    assert mc("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"


def test_any_other_address_needs_the_printed_token(browser, mc_root):
    url, stop, thread = serve_in_thread(mc_root, bind="0.0.0.0")    # in the test's own netns
    try:
        assert "?token=" in url
        base, token = url.split("?token=")
        local = base.replace("0.0.0.0", "127.0.0.1")
        assert request(local, "/api/state")[0] == 401
        assert request(local + "?token=wrong", "/api/state")[0] == 403
        assert request(local + "?token=wrong", "/")[0] == 403
        status, state = request(f"{local}?token={token}", "/api/state")
        assert status == 200 and state["type"] == "full" and state["actions"] is False
        open_page(browser, f"{local}?token={token}")              # its script and stream get it too
        assert browser.find_element("id", "mode").text == "read-only"
    finally:
        stop.set()
        thread.join(30)


def test_the_stream_pushes_ticks(readonly_url):
    """Server-Sent Events: the full snapshot first, then a tick each second."""
    with urllib.request.urlopen(readonly_url.rstrip("/") + "/api/stream", timeout=60) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        messages = []
        for line in r:
            if line.startswith(b"data: "):
                messages.append(json.loads(line[6:]))
            if len(messages) == 4:
                break
    assert [m["type"] for m in messages] == ["full", "tick", "tick", "tick"]
    times = [m["time"] for m in messages[1:]]
    print(f"tick intervals: {[round(b - a, 2) for a, b in zip(times, times[1:])]} s")


def test_cli_errors_are_one_line(mc):
    p = mc("dashboard", "--bind", "not-an-address")
    assert p.returncode == 125 and p.stderr.count("\n") == 1 and "--bind" in p.stderr, p.stderr
    p = mc("dashboard", "--port", "70000")
    assert p.returncode == 125 and "--port" in p.stderr, p.stderr


# ── the cluster (cluster/): nodes as columns; after a node fails, its pods on the others ───

SLEEPERS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleepers}
spec:
  replicas: 4
  selector: {matchLabels: {app: sleepers}}
  template:
    metadata: {labels: {app: sleepers}}
    spec:
      containers:
      - {name: sleep, image: busybox, command: ["sleep", "3600"]}
"""


@pytest.fixture
def cluster_root(tmp_path_factory, busybox_tar):
    """A root of its own with a 2-node cluster (as tests/test_cluster.py makes one); removed
    at the end whatever happened."""
    from minicontainer.api import image_store
    root = tmp_path_factory.mktemp("dash-cluster")
    image_store(root).import_archive(busybox_tar, "busybox")

    def run(*args, input=None, check=True):
        p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), *args],
                           input=input, capture_output=True, text=True, timeout=180)
        assert not check or p.returncode == 0, f"minicontainer {' '.join(args)} → {p.returncode}\n{p.stderr}"
        return p
    run("cluster", "create", "--nodes", "2", "--memory", "256Mi")
    run.root = root
    yield run
    run("delete", "deployment", "sleepers", check=False)
    run("controller", "stop", check=False)
    run("cluster", "rm", check=False)


def pods_by_node(browser) -> dict[str, list[str]]:
    """node → its ready pods, read in one script (pods come and go between two WebDriver calls)."""
    return browser.execute_script("""
        const out = {};
        for (const col of document.querySelectorAll("#nodes .node"))
          out[col.dataset.node] = [...col.querySelectorAll(".pod.ready:not(.gone)")].map((p) => p.dataset.name).sort();
        return out;""")


def test_pods_move_on_the_page_after_migrate_and_node_fail(browser, cluster_root):
    url, stop, thread = serve_in_thread(cluster_root.root, allow_actions=True)
    try:
        open_page(browser, url)
        wait_for(lambda: set(pods_by_node(browser)) == {"node1", "node2"}, 60, "the two node columns")
        cluster_root("apply", "-f", "-", input=SLEEPERS)
        spread = wait_for(lambda: (lambda s: s if sum(map(len, s.values())) == 4 and all(s.values()) else None)(
            pods_by_node(browser)), 180, "4 ready pods on both nodes")
        print(f"before: {spread}")
        # the pods' containers, as cards of their nodes: each app container shares its pod's
        # network namespace with the pod's infra container (what makes a pod a pod)
        wait_for(lambda: len(browser.find_elements("css selector", '.card[data-node][data-status="running"]')) >= 8,
                 60, "the pods' containers as cards")
        wait_for(lambda: len(browser.find_elements("css selector", '.card[data-node] .ns.shared[data-ns^="net:"]')) >= 8,
                 30, "each pod's shared network namespace")
        screenshot(browser, "cluster-before")
        # `migrate` (cold): the same pod, by name, leaves node1's column for node2's
        moving = spread["node1"][0]
        cluster_root("migrate", f"pod/{moving.split('/')[1]}", "--to", "node2")
        spread = wait_for(lambda: (lambda s: s if moving in s["node2"] and len(s["node1"]) == 1 else None)(
            pods_by_node(browser)), 120, f"{moving} on node2")
        print(f"after `migrate pod/{moving.split('/')[1]} --to node2`: {spread}")
        victim = "node1"
        browser.find_element("css selector", f'.node[data-node="{victim}"] button[data-action="fail"]').click()
        wait_for(lambda: browser.find_element("css selector", f'.node[data-node="{victim}"]').get_attribute(
            "data-ready") == "false", 60, f"{victim} shown as failed")
        after = wait_for(lambda: (lambda s: s if not s[victim] and len(s["node2"]) == 4 else None)(
            pods_by_node(browser)), 180, "the 4 pods on node2")
        print(f"after `node fail {victim}`: {after}")
        assert set(spread["node2"]) <= set(after["node2"])       # the survivors stayed where they were
        assert browser.find_elements("css selector", '#events li[data-action="NodeNotReady"]')
        screenshot(browser, "cluster-after-node-fail")
        status, answer = request(url, f"/api/nodes/{victim}/fail", "POST", {})
        assert status == 409 and "failed already" in answer["error"], answer
        # the scale action, as the deployment's − button sends it
        status, answer = request(url, "/api/deployments/sleepers/scale", "POST", {"replicas": 2})
        assert status == 200 and "scaled" in answer["message"], answer
        wait_for(lambda: len(pods_by_node(browser)["node2"]) == 2, 120, "2 pods after scaling down")
        wait_for(lambda: "2/2 ready" in browser.find_element("css selector", '.deployment[data-name="sleepers"]').text,
                 60, "the deployment's 2/2")
    finally:
        stop.set()
        thread.join(30)
