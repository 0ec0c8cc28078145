"""The dashboard's web server: the page, the live stream and the actions — standard library only.

    man 7 ip (a socket bound to 127.0.0.1 is reachable from this machine only),
    the HTML Living Standard, "Server-sent events" (text/event-stream)
    shell: python3 -m http.server --bind 127.0.0.1 8080; curl -N http://127.0.0.1:8080/api/stream

    GET  /                              the page (static/index.html, app.js, style.css)
    GET  /api/state                     the sampler's full snapshot, as JSON
    GET  /api/stream                    Server-Sent Events: the full snapshot, then one tick a second
    GET  /api/containers/REF            `inspect` of one container
    POST /api/containers/REF/stop|kill  }
    POST /api/deployments/NAME/scale    }  only with --allow-actions; body: JSON
    POST /api/nodes/NAME/fail           }

Who may ask: on 127.0.0.1 (the default) anyone on this machine, as for `minicontainer ps` —
but the Host header must name the loopback address (a web page elsewhere cannot reach the
dashboard by rebinding its own DNS name to 127.0.0.1). On any other address every request
needs ?token=T, a random token printed at start. An action must come as JSON from the page's
own origin: a form on another site cannot send that without the browser asking first.

Every bad request is answered 4xx with a one-line JSON message and changes nothing: the
checks (token, route, --allow-actions, the body, the target exists) all come before the act.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ConfigError, MinicontainerError
from ..inspection import inspect_container
from ..state import open_store
from ..stop import kill_container, stop_container
from .sampler import Sampler, host_facts, object_store

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
KEEPALIVE = 15.0                # seconds between SSE comments when nothing new came
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


class RequestError(Exception):
    """A request refused before anything happened: its HTTP status and one line."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


# ── the live stream: one sampler thread, any number of browsers ──────────────────────────

class Broadcaster:
    """Runs the sampler every `interval` seconds; each tick is encoded once, for every client."""

    def __init__(self, sampler: Sampler, interval: float = 1.0):
        self.sampler, self.interval = sampler, interval
        self.cond = threading.Condition()
        self.seq, self.message = 0, b""
        self.stopped = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopped.is_set():
            try:
                data = json.dumps(self.sampler.tick(), separators=(",", ":"))
            except Exception as e:                   # a tick must never end the dashboard
                data = json.dumps({"type": "error", "message": f"sampler: {e}"})
            with self.cond:
                self.seq, self.message = self.seq + 1, f"data: {data}\n\n".encode()
                self.cond.notify_all()
            next_at = max(next_at + self.interval, time.monotonic())
            self.stopped.wait(next_at - time.monotonic())

    def wait_next(self, seq: int, timeout: float) -> tuple[int, bytes | None]:
        with self.cond:
            self.cond.wait_for(lambda: self.seq != seq or self.stopped.is_set(), timeout)
            return (self.seq, self.message) if self.seq != seq else (seq, None)


# ── the server ────────────────────────────────────────────────────────────────────────────

class Dashboard(ThreadingHTTPServer):
    daemon_threads = True               # an open stream must not keep Ctrl-C waiting
    allow_reuse_address = True

    def __init__(self, address, root, *, allow_actions: bool, token: str | None,
                 broadcaster: Broadcaster):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.root, self.allow_actions, self.token = root, allow_actions, token
        self.broadcaster = broadcaster

    def full(self) -> dict:
        """What a new browser gets first: the sampler's full snapshot, and which buttons to show."""
        return {**self.broadcaster.sampler.full(), "actions": self.allow_actions}


class Handler(BaseHTTPRequestHandler):
    server: Dashboard
    protocol_version = "HTTP/1.1"
    server_version = "minicontainer-dashboard"

    def log_message(self, format, *args):        # quiet: the terminal shows the URL, not a log
        pass

    # ── dispatch ──────────────────────────────────────────────────────────────────────────
    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def do_PUT(self):
        self.handle_request("PUT")

    def do_DELETE(self):
        self.handle_request("DELETE")

    def handle_request(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            self.check_access(parse_qs(url.query), method)
            parts = [unquote(p) for p in url.path.split("/") if p]
            if method == "GET":
                return self.get(parts)
            if method != "POST":
                raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not used here: GET to look, POST to act")
            self.send_json(HTTPStatus.OK, self.act(parts, self.read_body()))
        except RequestError as e:
            self.close_connection = True             # a body left unread must not become a request
            self.send_json(e.status, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except MinicontainerError as e:
            self.send_json(HTTPStatus.CONFLICT, {"error": str(e)})

    def check_access(self, query: dict, method: str) -> None:
        token = self.server.token
        if token is not None:
            given = (query.get("token") or [""])[0]
            if not given:
                raise RequestError(HTTPStatus.UNAUTHORIZED, "a token is needed: open the URL the "
                                   "dashboard printed at start (…/?token=…)")
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise RequestError(HTTPStatus.FORBIDDEN, "wrong token: open the URL the dashboard printed at start")
        else:
            host = host_name(self.headers.get("Host") or "")
            if host not in LOOPBACK_NAMES:
                raise RequestError(HTTPStatus.FORBIDDEN, f"Host {host!r} refused: this dashboard "
                                   "listens on the loopback address; open http://127.0.0.1:PORT/")
        if method == "POST":
            origin = self.headers.get("Origin")
            if origin and urlsplit(origin).netloc != self.headers.get("Host"):
                raise RequestError(HTTPStatus.FORBIDDEN, f"cross-origin action from {origin} refused")

    # ── GET ───────────────────────────────────────────────────────────────────────────────
    def get(self, parts: list[str]) -> None:
        if not parts:
            return self.send_file("index.html")
        if parts[0] == "static" and len(parts) == 2:
            return self.send_file(parts[1])
        if parts == ["api", "state"]:
            return self.send_json(HTTPStatus.OK, self.server.full())
        if parts == ["api", "stream"]:
            return self.stream()
        if len(parts) == 3 and parts[:2] == ["api", "containers"]:
            return self.send_json(HTTPStatus.OK, inspect_container(self.existing_container(parts[2]), self.server.root))
        raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {self.path.split('?')[0]}")

    def send_file(self, name: str) -> None:
        path = STATIC / name
        if name.startswith(".") or "/" in name or not path.is_file():
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such file: {name}")
        body = path.read_bytes()
        if name == "index.html" and self.server.token:      # the page's own files need it too
            body = re.sub(rb'"(static/[^"?]+)"', rb'"\1?token=' + self.server.token.encode() + b'"', body)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def stream(self) -> None:
        """text/event-stream: one `data:` line of JSON per message, a comment to keep it open."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        b = self.server.broadcaster
        seq = b.seq
        full = json.dumps(self.server.full(), separators=(",", ":"))
        self.wfile.write(f"retry: 1000\ndata: {full}\n\n".encode())
        self.wfile.flush()
        while not b.stopped.is_set():
            seq, message = b.wait_next(seq, KEEPALIVE)
            self.wfile.write(message if message is not None else b": keep-alive\n\n")
            self.wfile.flush()

    # ── POST: the actions ─────────────────────────────────────────────────────────────────
    def read_body(self) -> dict:
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the action's body as application/json")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > 64 * 1024:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "an action's body is a few bytes of JSON")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def act(self, parts: list[str], body: dict) -> dict:
        if len(parts) != 4 or parts[0] != "api" or (parts[1], parts[3]) not in ACTIONS:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such action: POST {self.path.split('?')[0]} "
                               f"(actions: {', '.join(f'/api/{k}/NAME/{a}' for k, a in ACTIONS)})")
        if not self.server.allow_actions:
            raise RequestError(HTTPStatus.FORBIDDEN, "this dashboard is read-only: start it with "
                               "`minicontainer dashboard --allow-actions` to stop, kill, scale or fail nodes")
        action = ACTIONS[(parts[1], parts[3])]
        try:
            return action(self, parts[2], body)
        except RequestError:
            raise
        except ConfigError as e:                     # e.g. an unknown signal name
            raise RequestError(HTTPStatus.BAD_REQUEST, str(e)) from None
        except MinicontainerError as e:              # e.g. "container web is not running"
            raise RequestError(HTTPStatus.CONFLICT, str(e)) from None

    def existing_container(self, ref: str) -> str:
        try:
            return open_store(self.server.root).find(ref).id
        except MinicontainerError as e:
            raise RequestError(HTTPStatus.NOT_FOUND, str(e)) from None

    def stop(self, ref: str, body: dict) -> dict:
        cid = self.existing_container(ref)
        timeout = number(body, "timeout", 10, 0, 300)
        rec = stop_container(cid, timeout, self.server.root)
        return {"stopped": rec.name, "exit_code": rec.exit_code}

    def kill(self, ref: str, body: dict) -> dict:
        cid = self.existing_container(ref)
        signal = body.get("signal", "KILL")
        if not isinstance(signal, (str, int)) or isinstance(signal, bool):
            raise RequestError(HTTPStatus.BAD_REQUEST, "signal: a name (KILL, TERM …) or a number")
        rec = kill_container(cid, signal, self.server.root)
        return {"killed": rec.name, "signal": signal}

    def scale(self, name: str, body: dict) -> dict:
        replicas = number(body, "replicas", None, 0, 100)
        if replicas != int(replicas):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"replicas must be a whole number, not {replicas!r}")
        if object_store(self.server.root).get("Deployment", name) is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such deployment: {name}")
        from ..orchestration.kubectl import scale          # (imports the manifest schemas: late)
        return {"message": scale(f"deployment/{name}", int(replicas), self.server.root)}

    def fail_node(self, name: str, body: dict) -> dict:
        """`node fail NAME`: a power cut (cluster/nodes.py); the page then shows the failover."""
        from ..cluster.nodes import fail_node
        from .sampler import cluster_record
        cluster = cluster_record(self.server.root)
        if cluster is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such node: {name} (no cluster here: "
                               "`minicontainer cluster create --nodes 3`)")
        if name not in cluster["nodes"]:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such node: {name} (the nodes: {', '.join(cluster['nodes'])})")
        n = fail_node(self.server.root, name)
        return {"failed": name, "killed": n.get("killed", 0)}

    # ── answers ───────────────────────────────────────────────────────────────────────────
    def send_json(self, status: HTTPStatus, data) -> None:
        body = json.dumps(data, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


ACTIONS = {("containers", "stop"): Handler.stop, ("containers", "kill"): Handler.kill,
           ("deployments", "scale"): Handler.scale, ("nodes", "fail"): Handler.fail_node}


def host_name(header: str) -> str:
    """The Host header without its port: 127.0.0.1:8080 → 127.0.0.1, [::1]:8080 → [::1]."""
    if header.startswith("["):
        return header[:header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def number(body: dict, key: str, default, low: float, high: float) -> float:
    """body[key] as a number in [low, high]; the default when absent (None: it is required)."""
    value = body.get(key, default)
    if value is None:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{key} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{key} must be a number from {low:g} to {high:g}, not {value!r}")
    return value


# ── starting it ──────────────────────────────────────────────────────────────────────────

def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        raise ConfigError(f"invalid --bind {bind!r}: give an IP address (127.0.0.1, 0.0.0.0, ::) "
                          "or localhost") from None


def serve(root=None, *, port: int = 8080, bind: str = "127.0.0.1", allow_actions: bool = False,
          interval: float = 1.0, ready=print, stop: threading.Event | None = None) -> None:
    """Serve the dashboard until Ctrl-C (or `stop` is set); `ready(url)` once it listens.
    Any address but the loopback one gets a token, which the printed URL carries."""
    token = None if is_loopback(bind) else secrets.token_urlsafe(18)
    address = "127.0.0.1" if bind == "localhost" else bind.strip("[]")
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid --port {port}: use 1-65535 (0: any free port)")
    broadcaster = Broadcaster(Sampler(root), interval)
    try:
        server = Dashboard((address, port), root, allow_actions=allow_actions, token=token,
                           broadcaster=broadcaster)
    except OSError as e:
        raise ConfigError(f"cannot listen on {address}:{port}: {e.strerror} — choose another "
                          "--port (or stop what uses it)") from None
    threading.Thread(target=load_host_facts, args=(broadcaster.sampler,), daemon=True).start()
    threading.Thread(target=broadcaster.run, daemon=True, name="sampler").start()
    host = f"[{address}]" if ":" in address else address
    ready(f"http://{host}:{server.server_address[1]}/" + (f"?token={token}" if token else ""))
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broadcaster.stopped.set()
        with broadcaster.cond:
            broadcaster.cond.notify_all()
        server.server_close()


def load_host_facts(sampler: Sampler) -> None:
    facts = host_facts()
    with sampler.lock:
        sampler.host = facts
