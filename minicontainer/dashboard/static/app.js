// minicontainer dashboard: one EventSource on /api/stream, no framework, no build step.
//
// The server sends a "full" message first (every container's details and history, the host's
// facts), then a "tick" each second: the gauges of each container, the details that changed,
// the new events and the pods on their nodes. This file keeps the state and redraws in place:
// a card is made once per container and only its numbers change each second.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path;
const HISTORY = 60;                        // samples in a chart (the server keeps as many)

const state = {
  details: {},            // id → namespaces, processes, layers, network … (sampler.describe)
  history: {},            // id → [[time, memory, cpu %, pids], …]
  cards: new Map(),       // id → its card (made once)
  sharedText: null,       // the last "shared" as JSON: chips are refreshed when it changes
  shared: {},             // "net:4026532281" → [names]
  hostNs: {},             // the host's namespaces: type → inode
  actions: false,
};

// ── small helpers ───────────────────────────────────────────────────────────────────────────
const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}
function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], { hour12: false }); }
function toast(text, error = false) {
  const t = $("#toast");
  t.textContent = text; t.className = error ? "toast error" : "toast"; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ── the stream ──────────────────────────────────────────────────────────────────────────────
function connect() {
  const source = new EventSource(withToken("/api/stream"));
  const conn = $("#conn");
  source.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
  source.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "reconnecting…"; };
  source.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "full") applyFull(msg); else if (msg.type === "tick") applyTick(msg);
    conn.dataset.updated = String(msg.time);
  };
}

function applyFull(msg) {
  state.details = msg.details || {};
  state.history = msg.history || {};
  state.hostNs = msg.host_ns || {};
  state.actions = !!msg.actions;
  $("#mode").textContent = state.actions ? "actions enabled" : "read-only";
  $("#mode").classList.toggle("actions", state.actions);
  $("#containers").replaceChildren();
  state.cards.clear();
  state.sharedText = null;
  $("#events").replaceChildren();
  renderHost(msg.host || {});
  addEvents(msg.events || []);
  applyTick(msg);
}

function applyTick(msg) {
  Object.assign(state.details, msg.details || {});
  const shared = JSON.stringify(msg.shared || {});
  const sharedChanged = shared !== state.sharedText;
  state.shared = msg.shared || {};
  state.sharedText = shared;
  const seen = new Set();
  for (const row of msg.containers) {
    seen.add(row.id);
    if (msg.type === "tick" && row.memory !== undefined) {
      const h = state.history[row.id] || (state.history[row.id] = []);
      h.push([msg.time, row.memory, row.cpu, row.pids]);
      if (h.length > HISTORY) h.shift();
    }
    renderCard(row, msg.details && row.id in msg.details);
  }
  for (const [id, card] of state.cards) {
    if (!seen.has(id)) {                              // removed (`rm`): its card goes too
      card.remove(); state.cards.delete(id); delete state.history[id]; delete state.details[id];
    }
  }
  const running = msg.containers.filter((r) => r.status === "running").length;
  $("#counts").textContent = `${running} running · ${msg.containers.length} in all`;
  const empty = $("#containers .empty");
  if (msg.containers.length && empty) empty.remove();
  if (!msg.containers.length && !empty) $("#containers").append(el("p", { class: "empty", text: "No containers yet: minicontainer run -d busybox sleep 1000" }));
  if (msg.type === "tick") addEvents(msg.events || []);
  if (sharedChanged) refreshSharedChips();
  renderCluster(msg.cluster || { nodes: [], pods: [] });
}

// ── a container's card ──────────────────────────────────────────────────────────────────────
function renderCard(row, detailsChanged) {
  let card = state.cards.get(row.id);
  if (!card) {
    card = makeCard(row);
    state.cards.set(row.id, card);
    $("#containers").append(card);
    detailsChanged = true;
  }
  const d = state.details[row.id] || {};
  card.dataset.status = row.status;
  card.classList.toggle("oom", !!d.oom_killed && row.status !== "running");
  $(".status", card).textContent = d.oom_killed && row.status !== "running" ? "OOM killed"
    : row.status === "exited" && d.exit_code != null ? `exited (${d.exit_code})`
    : d.health && row.status === "running" ? `running (${d.health})` : row.status;
  card.dataset.health = d.health || "";
  updateGauges(card, row);
  drawChart($("svg.chart", card), state.history[row.id] || [], row.memory_limit);
  if (detailsChanged) renderFacts(card, d);
}

function makeCard(row) {
  const gauge = (kind, label) => [el("span", { text: label }),
    el("div", { class: `bar ${kind}` }, el("div")), el("span", { class: `val ${kind}` })];
  const card = el("article", { class: "card", "data-id": row.id, "data-name": row.name },
    el("div", { class: "title" }, el("span", { class: "name", text: row.name }),
      el("span", { class: "sub mono", text: row.id.slice(0, 12) }), el("span", { class: "status" })),
    el("div", { class: "sub image" }),
    el("div", { class: "gauges" }, ...gauge("memory", "memory"), ...gauge("cpu", "CPU"), ...gauge("pids", "pids")),
    chartSvg(),
    el("div", { class: "facts" }));
  if (state.actions) {
    const act = el("div", { class: "actions" });
    for (const [action, label] of [["stop", "stop"], ["kill", "kill"]]) {
      const b = el("button", { class: action === "kill" ? "danger" : "", text: label, "data-action": action });
      b.onclick = () => post(`/api/containers/${encodeURIComponent(row.id)}/${action}`, {});
      act.append(b);
    }
    card.append(act);
  }
  return card;
}

function setGauge(card, kind, fraction, text, value) {
  const bar = $(`.bar.${kind}`, card);
  bar.firstChild.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(1)}%`;
  bar.classList.toggle("hot", fraction > 0.85);
  const val = $(`.val.${kind}`, card);
  val.textContent = text;
  val.dataset.value = String(value);
}

function updateGauges(card, row) {
  const running = row.memory !== undefined;
  const limit = row.memory_limit;
  setGauge(card, "memory", running && limit ? row.memory / limit : 0,
    running ? `${bytes(row.memory)} / ${limit ? bytes(limit) : "no limit"}` : "–", running ? row.memory : 0);
  setGauge(card, "cpu", running ? row.cpu / 100 : 0, running ? `${row.cpu.toFixed(1)} %` : "–", running ? row.cpu : 0);
  setGauge(card, "pids", running && row.pids_limit ? row.pids / row.pids_limit : 0,
    running ? `${row.pids} / ${row.pids_limit || "no limit"}` : "–", running ? row.pids : 0);
}

// The history chart, in hand-written SVG: memory (against the limit, dashed) and CPU %.
const SVG = "http://www.w3.org/2000/svg";
function chartSvg() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 300 56");
  svg.setAttribute("preserveAspectRatio", "none");
  for (const cls of ["limit", "memory", "cpu"]) {
    const shape = document.createElementNS(SVG, cls === "limit" ? "line" : "polyline");
    shape.setAttribute("class", cls);
    svg.append(shape);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = "last minute: memory (blue, dashed red = limit), CPU % (orange)";
  svg.append(title);
  return svg;
}

function drawChart(svg, history, limit) {
  const W = 300, H = 56, pad = 3;
  const maxMem = Math.max(limit || 0, ...history.map((s) => s[1]), 1);
  const x = (i) => W - (history.length - 1 - i) * (W / (HISTORY - 1));
  const y = (v, max) => H - pad - (v / max) * (H - 2 * pad);
  const points = (k, max) => history.map((s, i) => `${x(i).toFixed(1)},${y(s[k], max).toFixed(1)}`).join(" ");
  svg.querySelector(".memory").setAttribute("points", points(1, maxMem));
  svg.querySelector(".cpu").setAttribute("points", points(2, Math.max(100, ...history.map((s) => s[2]))));
  const line = svg.querySelector(".limit");
  const ly = limit ? y(limit, maxMem) : -10;
  for (const [k, v] of [["x1", 0], ["x2", W], ["y1", ly], ["y2", ly]]) line.setAttribute(k, v);
}

function nsChip(kind, inode) {
  const key = `${kind}:${inode}`;
  const chip = el("span", { class: "ns", text: `${kind} ${inode}`, "data-ns": key });
  if (state.shared[key]) {
    chip.classList.add("shared");
    chip.title = `shared with: ${state.shared[key].join(", ")}`;
  } else if (state.hostNs[kind] === inode) {
    chip.classList.add("host");
    chip.title = "the host's own namespace (PID 1 of the host is in it): not isolated";
  }
  return chip;
}

function renderFacts(card, d) {
  $(".image", card).textContent = `${d.image || ""} · ${d.command || ""}${d.pod ? ` · pod ${d.pod}` : ""}${d.node ? ` · on ${d.node}` : ""}`;
  if (d.node) card.dataset.node = d.node;
  const facts = $(".facts", card);
  const rows = [];
  const ns = Object.entries(d.namespaces || {});
  if (ns.length) rows.push(["namespaces", el("div", {}, ...ns.map(([k, v]) => nsChip(k, v)))]);
  if ((d.processes || []).length) {
    const table = el("table", { class: "procs" },
      el("tr", {}, el("td", { class: "sub", text: "host PID" }), el("td", { class: "sub", text: "in ctr" }), el("td")));
    for (const p of d.processes.slice(0, 6))
      table.append(el("tr", { "data-pid": String(p.pid) }, el("td", { text: String(p.pid) }),
        el("td", { text: p.nspid || "" }), el("td", { class: "cmd", text: p.cmd })));
    rows.push(["processes", table]);
  }
  if ((d.layers || []).length) {
    const list = el("ul", { class: "layers" },
      el("li", { class: "upper", text: "upper: this container's writes", title: d.upper }));
    d.layers.forEach((l, i) => list.append(el("li", { class: "mono", text: `lower ${d.layers.length - i}: ${l.id}`, title: l.dir })));
    rows.push(["overlay", list]);
  }
  const n = d.network || {};
  if (n.veth) rows.push(["network", el("span", { class: "mono", text: `eth0 ${n.ip}/${n.prefixlen} ⇄ ${n.veth} ⇄ bridge ${n.bridge}` })]);
  else rows.push(["network", el("span", { class: "mono", text: `--net ${d.net_mode || "?"}` })]);
  facts.replaceChildren(...rows.flatMap(([k, v]) => [el("span", { class: "k", text: k }), v]));
}

// The shared-namespace highlight depends on the other containers: refresh chips each tick.
function refreshSharedChips() {
  for (const chip of document.querySelectorAll(".ns[data-ns]")) {
    const shared = state.shared[chip.dataset.ns];
    chip.classList.toggle("shared", !!shared);
    if (shared) chip.title = `shared with: ${shared.join(", ")}`;
  }
}

// ── events ──────────────────────────────────────────────────────────────────────────────────
function addEvents(events) {
  const list = $("#events");
  for (const e of events) {
    const { message, ...rest } = e.detail || {};
    const detail = [message, ...Object.entries(rest).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(" ");
    list.prepend(el("li", { class: e.warning ? "warning" : "", "data-action": e.action, "data-name": e.name },
      el("span", { class: "when", text: clock(e.time) }), el("span", { class: "src", text: e.source }),
      el("b", { text: `${e.action} ` }), el("span", { text: `${e.name}${e.node ? ` @${e.node}` : ""} ` }),
      el("span", { class: "sub", text: detail })));
  }
  while (list.children.length > 100) list.lastChild.remove();
}

// ── the cluster: nodes as columns; a pod that changes node moves there, visibly ─────────────
function renderCluster(cluster) {
  const nodes = $("#nodes");
  // With a cluster, its view comes first: the nodes are what the lecture is about then.
  document.body.classList.toggle("has-cluster", (cluster.nodes || []).some((n) => n.name !== "minicontainer"));
  if (!cluster.pods.length && !(cluster.nodes || []).some((n) => n.name !== "minicontainer")) {
    if (!$(".empty", nodes)) nodes.replaceChildren(el("p", { class: "empty", text: "No pods: minicontainer apply -f deployment.yaml" }));
    renderDeployments(cluster.deployments || []);
    return;
  }
  $(".empty", nodes)?.remove();
  const before = new Map([...nodes.querySelectorAll(".pod")].map((p) => [p.dataset.name, p.getBoundingClientRect()]));
  const oldNode = new Map([...nodes.querySelectorAll(".pod")].map((p) => [p.dataset.name, p.dataset.node]));
  const columns = new Map();
  for (const n of cluster.nodes) {
    let col = nodes.querySelector(`.node[data-node="${CSS.escape(n.name)}"]`);
    if (!col) {
      col = el("div", { class: "node", "data-node": n.name },
        el("h3", {}, el("span", { text: n.name }), el("span", { class: "state" })), el("div", { class: "pods" }));
      if (state.actions && cluster.can_fail_nodes) {
        const b = el("button", { class: "danger", text: "fail node", "data-action": "fail" });
        b.onclick = () => post(`/api/nodes/${encodeURIComponent(n.name)}/fail`, {});
        $("h3", col).append(b);
      }
      nodes.append(col);
    }
    col.classList.toggle("notready", !n.ready);
    col.dataset.ready = String(n.ready);
    $(".state", col).textContent = n.status || (n.ready ? "Ready" : "NotReady");
    const fail = $('button[data-action="fail"]', col);
    if (fail) fail.disabled = !!n.failed;
    columns.set(n.name, col);
  }
  for (const col of nodes.querySelectorAll(".node")) if (!columns.has(col.dataset.node)) col.remove();
  const keep = new Set(cluster.pods.map((p) => `${p.namespace}/${p.name}`));
  // A pod that is gone (evicted from a failed node, scaled down) stays a moment as a ghost;
  // a new pod of the same owner (its ReplicaSet's replacement) then glides over from there.
  for (const pod of nodes.querySelectorAll(".pod:not(.gone)")) {
    if (keep.has(pod.dataset.name)) continue;
    pod.classList.add("gone");
    (ghosts[pod.dataset.owner] ||= []).push({ rect: before.get(pod.dataset.name), at: Date.now() });
    setTimeout(() => pod.remove(), 4000);
  }
  for (const p of cluster.pods) {
    const key = `${p.namespace}/${p.name}`;
    let pod = nodes.querySelector(`.pod:not(.gone)[data-name="${CSS.escape(key)}"]`);
    const isNew = !pod;
    if (!pod) pod = el("div", { class: "pod", "data-name": key, "data-owner": p.owner, title: key });
    pod.textContent = p.name + (p.phase !== "Running" ? ` (${p.phase})` : "");
    pod.classList.toggle("ready", p.ready);
    pod.classList.toggle("deleting", p.deleting);
    pod.dataset.node = p.node;
    pod.dataset.phase = p.phase;
    const col = columns.get(p.node) || columns.get("") || [...columns.values()][0];
    if (col && pod.parentElement !== $(".pods", col)) $(".pods", col).append(pod);
    if (oldNode.has(key) && oldNode.get(key) !== p.node) flip(pod, before.get(key));
    else if (isNew && p.owner) flip(pod, takeGhost(p.owner));
  }
  renderDeployments(cluster.deployments || []);
}

const ghosts = {};                         // owner → [{rect, at}] of pods that just went (30 s)
setInterval(() => { for (const owner of Object.keys(ghosts)) takeGhost(owner, false); }, 30000);
function takeGhost(owner, take = true) {
  const list = (ghosts[owner] || []).filter((g) => Date.now() - g.at < 30000 && g.rect);
  if (list.length) ghosts[owner] = list; else delete ghosts[owner];
  return take && list.length ? list.shift().rect : null;
}

// FLIP: the pod is already in its new column; start it where it was and let it glide over.
function flip(pod, was) {
  if (!was) return;
  const now = pod.getBoundingClientRect();
  pod.style.transition = "none";
  pod.style.transform = `translate(${was.left - now.left}px, ${was.top - now.top}px)`;
  pod.getBoundingClientRect();
  pod.style.transition = "";
  pod.style.transform = "";
  pod.classList.remove("moved"); void pod.offsetWidth; pod.classList.add("moved");
}

function renderDeployments(deployments) {
  const box = $("#deployments");
  box.replaceChildren(...deployments.map((d) => {
    const item = el("div", { class: "deployment", "data-name": d.name },
      el("b", { text: d.name }), el("span", { text: `${d.ready}/${d.replicas} ready` }));
    if (state.actions) {
      for (const [label, delta] of [["−", -1], ["+", 1]]) {
        const b = el("button", { text: label, "data-action": "scale", title: `scale to ${d.replicas + delta}` });
        b.onclick = () => post(`/api/deployments/${encodeURIComponent(d.name)}/scale`, { replicas: Math.max(0, d.replicas + delta) });
        item.append(b);
      }
    }
    return item;
  }));
}

// ── the host (what `doctor` finds) ──────────────────────────────────────────────────────────
function renderHost(host) {
  if (!host.findings) { $("#host-line").textContent = "(checking…)"; return; }
  const layout = host.findings.find((f) => f.section === "cgroups" && f.name === "layout");
  $("#host-line").textContent = `Linux ${host.release} · ${host.cpus} CPUs · ${bytes(host.memory)} · cgroups ${layout ? layout.detail.split(":")[0] : "?"}`;
  $("#summary").textContent = `${host.hostname} · Linux ${host.release} · cgroups ${layout ? layout.detail.split(":")[0] : "?"}`;
  $("#host").replaceChildren(...host.findings.map((f) => el("tr", {},
    el("td", { class: f.ok ? "" : "bad", text: f.ok ? "✓" : "✗" }), el("td", { text: f.section }),
    el("td", { text: f.name }), el("td", { text: f.detail }))));
}

// ── actions (only with --allow-actions; the server checks again) ───────────────────────────
async function post(path, body) {
  try {
    const r = await fetch(withToken(path), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await r.json();
    if (!r.ok) toast(data.error || `HTTP ${r.status}`, true);
    else toast(Object.entries(data).map(([k, v]) => `${k}: ${v}`).join(", "));
  } catch (e) {
    toast(String(e), true);
  }
}

connect();
