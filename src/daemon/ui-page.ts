/**
 * The status page served at /ui: one self-contained HTML document (inline style and script, no
 * fonts, images or scripts from anywhere: nodes are often offline, and the Content-Security-Policy
 * the API sends forbids them). It paints /ui/events' `state` events as they come (one a second
 * while the page is open), so a member's failure shows without a reload.
 *
 * Every value from the cluster (member names, keys, reasons) is set as text, never as markup:
 * a member may name itself anything its key allows.
 *
 * Markup hooks the kernel test reads: `data-member`/`data-state` on member rows, `data-usage` on
 * usage rows, `data-route-class` on route counts, and the section ids.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>lashup status</title>
<style>
  :root { --ok: #1a7f37; --warn: #b08800; --bad: #cf222e; --mute: #6e7781; --line: #d0d7de; --bg2: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; background: #fff; }
  header { padding: 12px 20px; background: #24292f; color: #fff; display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: #d0d7de; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 20px; }
  section { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 0; }
  section h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
  th { background: var(--bg2); font-weight: 600; }
  .badge { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; }
  .alive, .ok, .programmed { background: var(--ok); }
  .suspect, .drift, .waiting { background: var(--warn); }
  .failed, .conflict, .invalid, .bad { background: var(--bad); }
  .left, .stale, .mute { background: var(--mute); }
  .counts { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 8px; }
  .bar { position: relative; height: 12px; background: var(--bg2); border: 1px solid var(--line); border-radius: 3px; min-width: 120px; }
  .bar > div { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ok); }
  tr.exhausted td { color: var(--bad); font-weight: 600; }
  tr.exhausted .bar > div { background: var(--bad); }
  .note { color: var(--mute); font-size: 12px; }
  .error { color: var(--bad); }
  #conn { margin-left: auto; }
  svg text { font-size: 11px; fill: var(--mute); }
</style>
</head>
<body>
<header>
  <h1 id="title">lashup</h1>
  <span class="meta" id="meta">connecting…</span>
  <span id="ready"></span>
  <span class="meta" id="conn"></span>
</header>
<main>
  <section id="members"><h2>Members</h2><div class="counts" id="member-counts"></div><table><thead><tr><th>name</th><th>role</th><th>address</th><th>state</th></tr></thead><tbody></tbody></table></section>
  <section id="routes"><h2>Routes: desired vs programmed</h2><div class="counts" id="route-counts"></div><div id="route-detail"></div></section>
  <section id="usage"><h2>Allocations and address usage</h2><div id="lease"></div><table><thead><tr><th>network</th><th>kind</th><th>used</th><th>capacity</th><th></th></tr></thead><tbody></tbody></table></section>
  <section id="propagation"><h2>Store propagation delay</h2><svg id="chart" viewBox="0 0 600 180" width="100%" height="180" role="img" aria-label="store propagation delay, last two minutes"></svg><div class="note" id="chart-note"></div></section>
  <section id="vips"><h2>VIPs</h2><table><thead><tr><th>VIP</th><th>address</th><th>backends</th><th>connections</th></tr></thead><tbody></tbody></table><div class="note" id="vips-note"></div></section>
  <section id="policy"><h2>Isolation policy</h2><table><thead><tr><th>from</th><th>to</th><th>dropped packets</th></tr></thead><tbody></tbody></table><div class="note" id="policy-note"></div></section>
</main>
<script>
"use strict";
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, String(v));
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === undefined || c === null ? "" : String(c)));
  return node;
}
function fill(tbody, rows) { tbody.replaceChildren(...rows); }
const shown = (state) => (state === "dead" ? "failed" : state);
const failedView = (v) => v === undefined || v === null || (typeof v === "object" && typeof v.error === "string");

function paintHeader(s) {
  const st = s.status || {};
  document.title = "lashup " + (st.name || "");
  $("#title").textContent = "lashup · " + (st.name || "?");
  const bits = [st.role, "v" + st.version, "up " + Math.round((st.uptimeMs || 0) / 1000) + " s"];
  if (st.raft) bits.push("raft " + st.raft.role + ", leader " + (st.raft.leader || "none"));
  $("#meta").textContent = bits.join(" · ");
  $("#ready").replaceChildren(st.ready ? el("span", { class: "badge ok" }, "ready") : el("span", { class: "badge drift" }, "waiting for " + (st.waitingFor || []).join(", ")));
}

function paintMembers(members) {
  const tbody = $("#members tbody");
  if (failedView(members)) { fill(tbody, [el("tr", {}, el("td", { class: "error", colspan: 4 }, members && members.error))]); return; }
  const counts = {};
  for (const m of members) counts[shown(m.state)] = (counts[shown(m.state)] || 0) + 1;
  $("#member-counts").replaceChildren(...Object.entries(counts).map(([k, n]) => el("span", { class: "badge " + k }, n + " " + k)));
  const order = { failed: 0, suspect: 1, alive: 2, left: 3 };
  members.sort((a, b) => (order[shown(a.state)] - order[shown(b.state)]) || (a.name < b.name ? -1 : 1));
  fill(tbody, members.map((m) => el("tr", { "data-member": m.name, "data-state": shown(m.state) },
    el("td", {}, m.name), el("td", {}, m.role || ""), el("td", {}, m.underlayIp || m.address || ""),
    el("td", {}, el("span", { class: "badge " + shown(m.state) }, shown(m.state))))));
}

function paintRoutes(routes) {
  const counts = $("#route-counts"), detail = $("#route-detail");
  if (failedView(routes)) { counts.replaceChildren(); detail.replaceChildren(el("p", { class: "note" }, routes && routes.error)); return; }
  const c = (routes.entries && routes.entries.counts) || {};
  counts.replaceChildren(...Object.entries(c).map(([k, n]) => el("span", { class: "badge " + (n > 0 ? k : "mute"), "data-route-class": k, "data-count": n }, n + " " + k)));
  const parts = [];
  const st = routes.stats || {};
  parts.push(el("p", { class: "note" }, (st.converged ? "converged" : "not converged") + " · applies " + (st.applies || 0) + " · drift corrected " + (st.driftCorrected || 0) + " · remote agents " + ((routes.overlay || {}).remoteAgents || 0)));
  const keys = (routes.entries && routes.entries.keys) || {};
  const problems = [];
  for (const [cls, list] of Object.entries(keys)) for (const key of list) problems.push(el("tr", {}, el("td", {}, el("span", { class: "badge " + cls }, cls)), el("td", { title: key }, key)));
  for (const conflict of routes.conflicts || []) problems.push(el("tr", {}, el("td", {}, el("span", { class: "badge conflict" }, "conflict")), el("td", { title: conflict.reason }, conflict.key + ": " + conflict.reason)));
  for (const u of routes.untrusted || []) problems.push(el("tr", {}, el("td", {}, el("span", { class: "badge bad" }, "untrusted")), el("td", {}, JSON.stringify(u))));
  if (problems.length > 0) parts.push(el("table", {}, el("tbody", {}, ...problems)));
  detail.replaceChildren(...parts);
}

function paintUsage(s) {
  const lease = s.status && s.status.lease;
  const leaseNode = $("#lease");
  if (lease) {
    const nets = Object.entries(lease.networks || {}).map(([n, v]) => n + " " + [v.subnet, v.subnet6].filter(Boolean).join(" "));
    leaseNode.replaceChildren(el("p", { class: "note" }, "lease: VTEP " + lease.vtepIp + " · " + nets.join(" · ")));
  } else if (s.allocations && Array.isArray(s.allocations.leases)) {
    leaseNode.replaceChildren(el("p", { class: "note" }, s.allocations.leases.length + " agent leases held by the allocator"));
  } else leaseNode.replaceChildren();
  fill($("#usage tbody"), (s.usage || []).map((u) => {
    const share = u.capacity > 0 ? u.used / u.capacity : 0;
    const bar = el("div", { class: "bar" }, el("div", { style: "width:" + Math.min(100, share * 100).toFixed(1) + "%" }));
    return el("tr", { "data-usage": u.network + "/" + u.kind, class: share >= 0.9 ? "exhausted" : "" },
      el("td", {}, u.network), el("td", {}, u.kind), el("td", {}, u.used), el("td", {}, u.capacity), el("td", { title: (share * 100).toFixed(1) + "%" }, bar));
  }));
}

function paintVips(vips) {
  const note = $("#vips-note");
  if (failedView(vips)) { fill($("#vips tbody"), []); note.textContent = vips ? vips.error : "no VIP component on this node"; return; }
  note.textContent = (vips.pending || []).length > 0 ? (vips.pending.length + " named VIPs wait for an address") : "";
  fill($("#vips tbody"), (vips.vips || []).map((v) => el("tr", {},
    el("td", {}, v.name || "(address VIP)"), el("td", {}, v.address + ":" + v.port + "/" + v.protocol),
    el("td", {}, (v.backends || []).length), el("td", {}, (v.backends || []).reduce((n, b) => n + (b.connections || 0), 0)))));
}

function paintPolicy(policy) {
  const note = $("#policy-note");
  if (failedView(policy)) { fill($("#policy tbody"), []); note.textContent = policy ? policy.error : "no firewall on this node"; return; }
  const rows = [];
  for (const [from, tos] of Object.entries(policy.dropped || {})) for (const [to, n] of Object.entries(tos)) rows.push(el("tr", {}, el("td", {}, from), el("td", {}, to), el("td", {}, n)));
  fill($("#policy tbody"), rows);
  note.textContent = (policy.converged ? "rules in force" : "rules not applied yet") + (rows.length === 0 ? " · nothing dropped" : "");
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) { const n = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); return n; }
function paintChart(points) {
  const chart = $("#chart");
  const W = 600, H = 180, L = 44, B = 20, T = 8;
  const values = points.flatMap((p) => [p.p50Ms, p.p99Ms]).filter((v) => v !== null);
  const top = Math.max(10, ...values) * 1.1;
  const x = (i) => L + (i / Math.max(1, 119)) * (W - L - 4);
  const y = (v) => H - B - (v / top) * (H - B - T);
  const nodes = [svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#d0d7de" })];
  for (const f of [0, 0.5, 1]) {
    const label = svg("text", { x: 2, y: y(top * f / 1.1) + 4 });
    label.textContent = Math.round(top * f / 1.1) + " ms";
    nodes.push(label, svg("line", { x1: L, y1: y(top * f / 1.1), x2: W, y2: y(top * f / 1.1), stroke: "#eaeef2" }));
  }
  const offset = 120 - points.length;
  for (const [key, colour] of [["p99Ms", "#cf222e"], ["p50Ms", "#0969da"]]) {
    const pts = points.map((p, i) => (p[key] === null ? null : x(i + offset).toFixed(1) + "," + y(p[key]).toFixed(1))).filter(Boolean);
    if (pts.length > 0) nodes.push(svg("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 2, "data-series": key }));
  }
  chart.replaceChildren(...nodes);
  const deltas = points.reduce((n, p) => n + p.deltas, 0);
  const last = [...points].reverse().find((p) => p.p99Ms !== null);
  $("#chart-note").textContent = "last " + points.length + " s: " + deltas + " store deltas applied" + (last ? " · latest p50 " + last.p50Ms.toFixed(1) + " ms, p99 " + last.p99Ms.toFixed(1) + " ms" : "") + " (blue p50, red p99)";
}

function paint(s) {
  paintHeader(s); paintMembers(s.members); paintRoutes(s.routes); paintUsage(s); paintVips(s.vips); paintPolicy(s.policy); paintChart(s.propagation || []);
  document.body.dataset.updatedAt = String(Date.now());
}

const events = new EventSource("/ui/events");
events.addEventListener("state", (e) => { $("#conn").textContent = "live · " + new Date().toLocaleTimeString(); paint(JSON.parse(e.data)); });
events.addEventListener("problem", (e) => { $("#conn").textContent = "problem: " + JSON.parse(e.data).message; });
events.onerror = () => { $("#conn").textContent = "disconnected; retrying"; };
</script>
</body>
</html>
`;
