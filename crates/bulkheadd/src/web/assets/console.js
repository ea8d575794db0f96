// bulkhead console: draws the topology as SVG and keeps the counters and
// events current by polling the console's read-only JSON routes. Every
// value from the host is inserted as text (never as markup).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const MAX_EVENT_ROWS = 50;
let polls = 0;
let lastSeq = 0;
let lastPackets = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// ---- topology picture ----------------------------------------------------

const EP_W = 170, EP_H = 52, PORT_W = 100, GAP = 24, TOP = 10;
const SW_H = 54, PORT_Y = TOP + SW_H + 8, NS_Y = PORT_Y + 150;

function drawTopology(t) {
  const byNet = new Map(t.networks.map(n => [n.name, []]));
  for (const e of t.endpoints) {
    if (!byNet.has(e.network)) byNet.set(e.network, []);
    byNet.get(e.network).push(e);
  }
  // Namespaces in the order of their first switch port, so links cross less.
  const order = new Map();
  [...byNet.values()].flat().forEach((e, i) => { if (!order.has(e.namespace)) order.set(e.namespace, i); });
  const rank = n => (order.has(n.name) ? order.get(n.name) : 1e9);
  const namespaces = [...t.namespaces].sort((a, b) => rank(a) - rank(b));
  const byNs = new Map(namespaces.map(n => [n.name, []]));
  for (const e of t.endpoints) {
    if (!byNs.has(e.namespace)) byNs.set(e.namespace, []);
    byNs.get(e.namespace).push(e);
  }
  const root = svg("svg", { id: "topology-svg", role: "img", "aria-label": "topology" });
  const links = svg("g", { class: "links" });
  root.append(links);
  const portAt = new Map();
  let x = GAP;
  for (const n of t.networks) {
    const eps = byNet.get(n.name) || [];
    const w = Math.max(190, eps.length * (PORT_W + 8) + 16);
    const g = svg("g", { class: "switch network", "data-network": n.name });
    g.append(svg("rect", { class: "body", x, y: TOP, width: w, height: SW_H, rx: 6 }));
    g.append(svg("text", { x: x + 8, y: TOP + 18 }, `switch ${n.name}`));
    const subnet = (n.subnets || []).join(", ");
    g.append(svg("text", { class: "small", x: x + 8, y: TOP + 34 }, `${n.driver}  ${subnet}`));
    if (n.gateway) g.append(svg("text", { class: "small", x: x + 8, y: TOP + 48 }, `gateway ${n.gateway}`));
    eps.forEach((e, i) => {
      const px = x + 8 + i * (PORT_W + 8);
      const p = svg("g", { class: "port", "data-port": e.switch_port, "data-endpoint": e.name });
      p.append(svg("rect", { x: px, y: PORT_Y, width: PORT_W, height: 22, rx: 3 }));
      p.append(svg("text", { class: "small", x: px + 4, y: PORT_Y + 15 }, e.switch_port));
      g.append(p);
      portAt.set(e.name, [px + PORT_W / 2, PORT_Y + 22]);
      links.append(svg("line", { class: "link", x1: px + PORT_W / 2, y1: TOP + SW_H, x2: px + PORT_W / 2, y2: PORT_Y }));
    });
    root.append(g);
    x += w + GAP;
  }
  let width = x;
  x = GAP;
  let height = NS_Y + 40;
  for (const ns of namespaces) {
    const eps = byNs.get(ns.name) || [];
    const w = Math.max(200, eps.length * (EP_W + 10) + 10);
    const containers = (ns.containers || []).length ? `containers: ${ns.containers.join(", ")}` : "no containers";
    const h = 46 + EP_H + 12;
    const g = svg("g", { class: "namespace", "data-namespace": ns.name });
    g.append(svg("rect", { class: "body", x, y: NS_Y, width: w, height: h, rx: 8 }));
    g.append(svg("text", { x: x + 8, y: NS_Y + 17 }, `namespace ${ns.name}${ns.adopted ? " (adopted)" : ""}`));
    g.append(svg("text", { class: "small containers", x: x + 8, y: NS_Y + 32 }, `${ns.isolation}; ${containers}`));
    eps.forEach((e, i) => {
      const ex = x + 10 + i * (EP_W + 10), ey = NS_Y + 42;
      const eg = svg("g", { class: "endpoint", "data-endpoint": e.name, "data-address": e.ip_address });
      eg.append(svg("rect", { x: ex, y: ey, width: EP_W, height: EP_H, rx: 4 }));
      eg.append(svg("text", { x: ex + 6, y: ey + 16 }, `${e.name} (${e.ifname || "eth0"})`));
      eg.append(svg("text", { class: "small", x: ex + 6, y: ey + 31 }, e.ip_address));
      eg.append(svg("text", { class: "small", x: ex + 6, y: ey + 45 }, e.mac_address));
      g.append(eg);
      const p = portAt.get(e.name);
      if (p) {
        const mx = ex + EP_W / 2;
        links.append(svg("path", { class: "link", d: `M${p[0]},${p[1]} C${p[0]},${p[1] + 60} ${mx},${ey - 60} ${mx},${ey}` }));
      }
    });
    root.append(g);
    x += w + GAP;
    height = Math.max(height, NS_Y + h + 10);
  }
  width = Math.max(width, x, 300);
  root.setAttribute("width", width);
  root.setAttribute("height", height);
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  document.getElementById("topology").replaceChildren(root);
}

// ---- endpoints, ACLs and counters ----------------------------------------

function aclText(a) {
  const list = v => (Array.isArray(v) ? v.join(",") : v || "");
  const parts = [a.action, a.direction, a.protocol || "any"];
  for (const [k, label] of [["local_addresses", "local"], ["remote_addresses", "remote"],
    ["local_ports", "local port"], ["remote_ports", "remote port"]]) {
    if (list(a[k])) parts.push(`${label} ${list(a[k])}`);
  }
  parts.push(`at the ${a.rule_type === "switch" ? "switch port" : "host firewall"}, priority ${a.priority}`);
  return parts.join(" ");
}

function drawEndpoints(t) {
  const seen = new Map();
  const out = [];
  const byName = [...t.endpoints].sort((x, y) => x.name.localeCompare(y.name));
  for (const e of byName) {
    const total = e.counters.reduce((s, c) => s + c.packets, 0);
    const dropped = e.counters.filter(c => c.verdict === "dropped").reduce((s, c) => s + c.packets, 0);
    const sec = el("div", { class: "ep", "data-endpoint": e.name, "data-packets": total, "data-dropped": dropped });
    sec.append(el("h3", {}, e.name, " ", el("span", { class: "addr" },
      `${e.ip_address} on ${e.network}, namespace ${e.namespace}, port ${e.switch_port}, acl mode ${e.acl_mode}`)));
    if (e.acls.length) {
      sec.append(el("ul", { class: "acls" }, ...e.acls.map(a => el("li", { "data-rule": a.id }, `${a.id}: ${aclText(a)}`))));
    }
    const body = el("tbody");
    for (const c of e.counters) {
      const key = `${e.name}|${c.point}|${c.direction}|${c.rule}`;
      seen.set(key, c.packets);
      const moved = lastPackets.has(key) && lastPackets.get(key) !== c.packets;
      body.append(el("tr", {
        class: `${c.verdict}${moved ? " moved" : ""}`, "data-point": c.point,
        "data-direction": c.direction, "data-rule": c.rule, "data-packets": c.packets,
      }, el("td", {}, c.point === "host" ? "host firewall" : "switch port"), el("td", {}, c.direction),
      el("td", {}, c.rule + (c.default ? " (default)" : "")), el("td", { class: "verdict" }, c.verdict),
      el("td", { class: "num packets" }, c.packets), el("td", { class: "num bytes" }, c.bytes)));
    }
    for (const [point, name] of [["host", "host firewall"], ["switch", "switch port"]]) {
      if (!e.counters.some(c => c.point === point)) {
        sec.append(el("p", { class: "note" }, `${name}: no rules programmed at this point`));
      }
    }
    sec.append(el("table", {}, el("thead", {}, el("tr", {}, ...["point", "dir", "rule", "verdict", "packets", "bytes"].map(h => el("th", {}, h)))), body));
    out.push(sec);
  }
  lastPackets = seen;
  document.getElementById("endpoints").replaceChildren(...out);
}

// ---- events ----------------------------------------------------------------

function drawEvents(page) {
  const body = document.querySelector("#events tbody");
  for (const e of page.events) {
    const t = new Date(e.time_ms).toISOString().replace("T", " ").replace("Z", "");
    const pkt = e.src ? `${e.src}${e.src_port ? ":" + e.src_port : ""} → ${e.dst}${e.dst_port ? ":" + e.dst_port : ""}` : "";
    const row = el("tr", { class: `event ${e.kind}`, "data-seq": e.seq, "data-kind": e.kind, "data-endpoint": e.endpoint || "" },
      el("td", {}, t), el("td", { class: e.kind === "drop" ? "block" : "" }, e.kind), el("td", {}, e.endpoint || ""),
      el("td", {}, e.point || ""), el("td", {}, e.direction || ""), el("td", {}, e.rule || ""),
      el("td", {}, e.protocol || ""), el("td", {}, pkt), el("td", {}, e.detail || ""));
    body.prepend(row);
    lastSeq = Math.max(lastSeq, e.seq);
  }
  while (body.rows.length > MAX_EVENT_ROWS) body.deleteRow(body.rows.length - 1);
}

// ---- polling -----------------------------------------------------------------

async function poll() {
  const status = document.getElementById("status");
  try {
    const [t, ev] = await Promise.all([getJson("/api/topology"), getJson(`/api/events?after=${lastSeq}`)]);
    drawTopology(t);
    drawEndpoints(t);
    drawEvents(ev);
    polls += 1;
    status.dataset.polls = polls;
    status.className = "";
    status.textContent = `live · ${t.networks.length} networks, ${t.namespaces.length} namespaces, ${t.endpoints.length} endpoints · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.className = "stale";
    status.textContent = `cannot reach bulkheadd: ${err.message}`;
  }
  setTimeout(poll, POLL_MS);
}

// ---- trace ---------------------------------------------------------------------

async function runTrace(params) {
  const out = document.getElementById("trace-result");
  out.replaceChildren(el("p", {}, "tracing…"));
  try {
    const r = await getJson(`/api/trace?${params}`);
    const hops = r.hops.map(h => el("li", {
      class: "hop", "data-stage": h.stage, "data-point": h.point, "data-location": h.location,
      "data-rule": h.rule, "data-verdict": h.verdict,
    }, `${h.stage.replace(/_/g, " ")}: ${h.point} ${h.location} — rule ${h.rule} → `, el("span", { class: h.verdict }, h.verdict)));
    out.replaceChildren(
      el("p", { id: "trace-verdict", "data-verdict": r.verdict }, "verdict: ", el("span", { class: r.verdict }, r.verdict),
        r.target ? ` — to ${r.target} (${r.delivered})` : ""),
      el("ol", { id: "trace-hops" }, ...hops));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", id: "trace-error" }, err.message));
  }
}

function formParams(form) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== "") p.set(k, k === "established" ? "true" : v);
  return p;
}

// A link ending in #trace?from=…&to=… fills the form and runs the trace,
// so a trace can be shared (and tested) as a URL.
function traceFromHash(form) {
  const m = location.hash.match(/^#trace\?(.*)$/);
  if (!m) return;
  const p = new URLSearchParams(m[1]);
  for (const [k, v] of p) {
    const input = form.elements.namedItem(k);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = v === "true"; else input.value = v;
  }
  runTrace(formParams(form).toString());
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("trace-form");
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const params = formParams(form).toString();
    history.replaceState(null, "", `#trace?${params}`);
    runTrace(params);
  });
  traceFromHash(form);
  poll();
});
