// gaiamesh dashboard: plain JavaScript, no build step, no third-party code. Every view reads
// the node's own API (docs/api.md); live updates come from the SSE stream /api/v1/events.
// Text from the network only ever enters the page as text nodes (never as HTML).
"use strict";

const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;
const TOKEN_KEY = "gaiamesh.token";

// ---------------------------------------------------------------------------------------
// DOM and formatting helpers

/** Builds an element: h("a", {href: "#/"}, "text", child, …). */
function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fmtAgo(ms) {
  if (!ms) return "–";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

function short(id, n = 12) {
  return id && id.length > n + 2 ? `${id.slice(0, n)}…` : id || "–";
}

function peerLink(peer) {
  return h("a", { href: `#/provider/${encodeURIComponent(peer)}`, class: "mono", title: peer }, short(peer, 16));
}

function check(c) {
  if (!c) return h("span", { class: "muted" }, "–");
  return h("span", { class: c.ok ? "ok" : "bad", "data-check": c.ok ? "ok" : "failed" },
    c.ok ? "✓ " : "✗ ", c.detail);
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function table(headers, rows, attrs) {
  return h("div", { class: "table-wrap" },
    h("table", attrs || {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
      h("tbody", {}, rows)));
}

function progress(done, total) {
  const bar = h("span");
  const pct = total ? Math.min(100, (100 * done) / total) : 0;
  bar.style.width = `${pct}%`;
  return h("div", { class: "progress", role: "progressbar", "aria-valuenow": pct.toFixed(0),
    "aria-valuemin": 0, "aria-valuemax": 100 }, bar);
}

function errorBox(err) {
  return h("pre", { class: "error" }, err.message);
}

// ---------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, problem, path) {
    super(problem && problem.detail ? problem.detail : `${path}: HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, { auth = false, text = false } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (auth && token()) headers.Authorization = `Bearer ${token()}`;
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) {
    let problem = null;
    try { problem = await r.json(); } catch (_) { /* not a problem document */ }
    throw new ApiError(r.status, problem, path);
  }
  return text ? r.text() : r.json();
}

/** A few series of the Prometheus text format, summed over their labels. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)/);
    if (!m) continue;
    out[m[1]] = (out[m[1]] || 0) + Number(m[3]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Live events: one EventSource for the whole page; the current view subscribes.

const live = {
  source: null,
  listeners: new Set(),
  recent: [],
  start() {
    const badge = document.getElementById("live");
    const es = new EventSource("/api/v1/events");
    this.source = es;
    es.onopen = () => { badge.textContent = "live"; badge.className = "live on"; };
    es.onerror = () => { badge.textContent = "reconnecting"; badge.className = "live off"; };
    const names = ["sd_stored", "sd_rejected", "published", "peer_admitted", "peer_refused",
      "relay_reservation", "hole_punched", "revocations", "repo_release",
      "blob_peer_penalised", "exchange_changed", "lagged"];
    for (const name of names) {
      es.addEventListener(name, (e) => {
        let data = {};
        try { data = JSON.parse(e.data); } catch (_) { data = { raw: e.data }; }
        data.type = data.type || name;
        data.at = Date.now();
        this.recent.unshift(data);
        this.recent.length = Math.min(this.recent.length, 100);
        for (const f of this.listeners) f(data);
      });
    }
  },
  subscribe(f) { this.listeners.add(f); return () => this.listeners.delete(f); },
};

/** Calls f at most once per `ms`, the last call winning. */
function throttle(f, ms) {
  let timer = null;
  let pending = false;
  return () => {
    if (timer) { pending = true; return; }
    f();
    timer = setTimeout(function again() {
      timer = null;
      if (pending) { pending = false; f(); timer = setTimeout(again, ms); }
    }, ms);
  };
}

function describeEvent(e) {
  switch (e.type) {
    case "sd_stored": return [`${e.outcome} version ${e.seq} of `, peerLink(e.subject), e.from ? [" from ", short(e.from, 16)] : " (own)"];
    case "sd_rejected": return [`rejected from ${short(e.from, 16)}: ${e.reason}`];
    case "published": return [`published own self-description, seq ${e.seq}`];
    case "peer_admitted": return ["admitted ", peerLink(e.peer_id)];
    case "peer_refused": return [`refused ${short(e.peer_id, 16)}: ${e.reason}`];
    case "revocations": return [`revocation list ${e.version} in force (${e.removed_entries} entries removed)`];
    case "repo_release": return [`repository release: targets version ${e.targets_version}`];
    case "exchange_changed": return [e.job ? `exchange job ${e.job} changed` : "audit log grew"];
    case "lagged": return ["missed some events (stream lagged)"];
    default: return [e.type];
  }
}

// ---------------------------------------------------------------------------------------
// Pages. Each returns {el, onEvent?, stop?}; the router swaps them.

async function pageOverview() {
  const el = h("div", {}, h("h1", {}, "This node"));
  const body = h("div");
  el.append(body);
  async function render() {
    const [status, peers, metricsText, updates] = await Promise.all([
      api("/api/v1/status"), api("/api/v1/peers"), api("/metrics", { text: true }),
      api("/api/v1/updates?limit=15"),
    ]);
    let health = { ok: false };
    try { health = await api("/api/v1/health"); } catch (_) { /* shown as not ok */ }
    const m = parseMetrics(metricsText);
    const admitted = peers.filter((p) => p.admitted).length;
    body.replaceChildren(
      h("div", { class: "grid" },
        card("Directory entries", status.directory_entries, "directory-size"),
        card("Peers connected", status.connected_peers, "peers-connected"),
        card("Peers admitted", admitted, "peers-admitted"),
        card("Health", health.ok ? "ok" : "not ok", "health", health.ok ? "ok" : "bad"),
      ),
      h("div", { class: "grid" },
        h("div", { class: "card" }, h("h2", {}, "Identity"), kv([
          ["PeerId", h("span", { class: "mono", id: "peer-id" }, status.peer_id)],
          ["Federation", h("a", { href: "#/federation", class: "mono" }, short(status.federation, 24))],
          ["Version", status.version],
          ["Uptime", fmtDuration(status.uptime_ms)],
          ["Mode", status.mode],
          ["Listening", h("div", {}, status.listen_addrs.map((a) => h("div", { class: "mono" }, a)))],
          ["Own seq", status.own_seq ?? "not published"],
          ["DHT", status.dht_announced ? "announced" : "announcing"],
        ])),
        h("div", { class: "card" }, h("h2", {}, "Live metrics"), kv([
          ["Records ingested", m.gaiamesh_sd_ingest_seconds_count ?? 0],
          ["Merges (all outcomes)", m.gaiamesh_directory_merges_total ?? 0],
          ["Gossip messages", m.gaiamesh_gossip_messages_total ?? 0],
          ["Repository up / down", `${fmtBytes(m.gaiamesh_repo_uploaded_bytes_total)} / ${fmtBytes(m.gaiamesh_repo_downloaded_bytes_total)}`],
          ["Exchange sent / received", `${fmtBytes(m.gaiamesh_exchange_sent_bytes_total)} / ${fmtBytes(m.gaiamesh_exchange_received_bytes_total)}`],
          ["Agreements", m.gaiamesh_exchange_agreements_total ?? 0],
          ["Event subscribers", m.gaiamesh_api_event_subscribers ?? 0],
          ["NAT", `${status.nat.reservations} relay reservation(s), ${status.nat.hole_punched} hole punch(es)`],
        ])),
        h("div", { class: "card" }, h("h2", {}, "Last directory updates"),
          updates.updates.length
            ? h("ul", { class: "events", id: "updates" }, updates.updates.map((u) =>
              h("li", {}, fmtAgo(u.received_at_ms), " · ",
                describeEvent({ type: "sd_stored", ...u }))))
            : h("p", { class: "muted" }, "none since the node started")),
        h("div", { class: "card" }, h("h2", {}, "Events on this page"),
          live.recent.length
            ? h("ul", { class: "events" }, live.recent.slice(0, 30).map((e) =>
              h("li", {}, new Date(e.at).toLocaleTimeString(), " · ", describeEvent(e))))
            : h("p", { class: "muted" }, "none yet")),
      ),
      h("h2", {}, `Peers (${peers.length})`),
      table(["PeerId", "admitted", "score", "last seen"], peers.map((p) => h("tr", {},
        h("td", {}, peerLink(p.peer_id)),
        h("td", {}, p.admitted ? h("span", { class: "ok" }, "yes") : h("span", { class: "warn" }, "pending")),
        h("td", {}, Number(p.score).toFixed(2)),
        h("td", {}, fmtAgo(p.last_seen_ms)))), { id: "peers" }),
    );
  }
  function card(label, value, id, cls) {
    return h("div", { class: "card" }, h("div", { class: "stat-label" }, label),
      h("div", { class: `stat ${cls || ""}`, id }, value));
  }
  await render();
  const again = throttle(() => render().catch(() => {}), 1500);
  const timer = setInterval(again, 3000);
  return { el, onEvent: again, stop: () => clearInterval(timer) };
}

// --- Directory -------------------------------------------------------------------------

let mapData = null;

/** The Europe map (europe.svg) and its projection (countries.json), loaded once. */
async function loadMap() {
  if (mapData) return mapData;
  const [svgText, meta] = await Promise.all([
    fetch("europe.svg").then((r) => r.text()),
    api("countries.json"),
  ]);
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  mapData = { svg: doc.documentElement, meta };
  return mapData;
}

/** Lambert azimuthal equal-area, as scripts/make-europe-map.py drew the map. */
function project(meta, lon, lat) {
  const p = meta.projection;
  const rad = Math.PI / 180;
  const phi = lat * rad, lam = (lon - p.lon0) * rad, phi0 = p.lat0 * rad;
  const k = Math.sqrt(2 / (1 + Math.sin(phi0) * Math.sin(phi) + Math.cos(phi0) * Math.cos(phi) * Math.cos(lam)));
  const x = p.radius * k * Math.cos(phi) * Math.sin(lam);
  const y = -p.radius * k * (Math.cos(phi0) * Math.sin(phi) - Math.sin(phi0) * Math.cos(phi) * Math.cos(lam));
  return [(x - p.x0) * p.scale, (y - p.y0) * p.scale];
}

/** The country of a location code (`DE`, `DE-BY`), or null when the map has no anchor. */
function countryOf(meta, code) {
  const c = String(code || "").slice(0, 2).toUpperCase();
  return meta.countries[c] ? c : null;
}

/** One marker per (provider, storage|processing, country) among `rows`. */
function mapMarkers(meta, rows) {
  const markers = new Map();
  for (const r of rows) {
    const s = r.service || {};
    for (const [role, list] of [["storage", s.data_location || []], ["processing", s.processing_location || []]]) {
      for (const code of list) {
        const c = countryOf(meta, code);
        if (!c) continue;
        const key = `${r.subject}|${role}|${c}`;
        if (!markers.has(key)) markers.set(key, { subject: r.subject, name: r.legal_name, role, country: c, services: [] });
        markers.get(key).services.push(s.id);
      }
    }
  }
  return [...markers.values()];
}

/** The map with `markers` (and `extra` SVG elements); `zoom` frames the markers. */
function drawMap(markers, extra, zoom) {
  const { svg, meta } = mapData;
  const map = svg.cloneNode(true);
  if (zoom && markers.length) {
    const pts = markers.map((mk) => meta.countries[mk.country]);
    const xs = pts.map((q) => q[0]), ys = pts.map((q) => q[1]);
    const pad = 140;
    const x0 = Math.max(0, Math.min(...xs) - pad), y0 = Math.max(0, Math.min(...ys) - pad);
    const w = Math.min(meta.projection.width - x0, Math.max(...xs) - Math.min(...xs) + 2 * pad);
    const ht = Math.min(meta.projection.height - y0, Math.max(...ys) - Math.min(...ys) + 2 * pad);
    map.setAttribute("viewBox", `${x0.toFixed(0)} ${y0.toFixed(0)} ${w.toFixed(0)} ${ht.toFixed(0)}`);
  }
  const g = h("svg:g", { class: "markers" });
  const perAnchor = new Map();
  const hit = new Set();
  for (const mk of markers) {
    hit.add(mk.country);
    const n = perAnchor.get(mk.country) || 0;
    perAnchor.set(mk.country, n + 1);
    const [ax, ay] = meta.countries[mk.country];
    // Spread markers that share a country on a small spiral so each stays visible.
    const a = n * 2.4, r = n ? 5 + 3.2 * Math.sqrt(n) : 0;
    const x = ax + r * Math.cos(a), y = ay + r * Math.sin(a);
    const shape = mk.role === "storage"
      ? h("svg:rect", { x: x - 5, y: y - 5, width: 10, height: 10, rx: 2 })
      : h("svg:circle", { cx: x, cy: y, r: 5.5 });
    shape.setAttribute("class", `marker ${mk.role}`);
    shape.setAttribute("data-subject", mk.subject);
    shape.setAttribute("data-country", mk.country);
    shape.setAttribute("data-role", mk.role);
    shape.append(h("svg:title", {}, `${mk.name || mk.subject}: ${mk.role} in ${mk.country} (${mk.services.join(", ")})`));
    const link = h("svg:a", { href: `#/provider/${encodeURIComponent(mk.subject)}` }, shape);
    g.append(link);
  }
  for (const p of extra || []) g.append(p);
  for (const c of hit) {
    const path = map.querySelector(`#c-${c}`);
    if (path) path.setAttribute("class", "hit");
  }
  map.append(g);
  return h("div", { class: "map", id: "map", "data-markers": markers.length }, map,
    h("div", { class: "legend" },
      h("span", { class: "storage" }, h("i"), "data stored"),
      h("span", { class: "processing" }, h("i"), "data processed"),
      h("span", { class: "muted" }, "this page's rows; country level")));
}

function parseParams(search) {
  const p = new URLSearchParams(search || "");
  return {
    q: p.get("q") || "", cert: p.get("cert") || "", renew: p.get("renew") || "",
    price: p.get("price") || "", sort: p.get("sort") || "",
    offset: Math.max(0, Number(p.get("offset")) || 0),
    limit: Math.min(MAX_PAGE_SIZE, Math.max(1, Number(p.get("limit")) || PAGE_SIZE)),
  };
}

/** The query the filters add up to; a query that matches every row when all are empty. */
function effectiveQuery(p) {
  const parts = [];
  if (p.q.trim()) parts.push(/\bor\b/i.test(p.q) ? `(${p.q.trim()})` : p.q.trim());
  if (p.cert.trim()) parts.push(`service.certification = ${JSON.stringify(p.cert.trim())}`);
  if (p.renew !== "") parts.push(`node.energy.renewable_pct >= ${Number(p.renew)}`);
  if (p.price !== "") parts.push(`service.price.amount <= ${Number(p.price)}`);
  return parts.length ? parts.join(" and ") : "seq >= 0";
}

function queryError(err, q) {
  // The API renders the query, a caret under the column and the message (docs/query.md).
  const detail = err.problem && err.problem.detail ? err.problem.detail : err.message;
  const lines = detail.split("\n");
  const caret = lines.length > 1 ? lines[1].indexOf("^") : -1;
  const where = caret >= 0 ? `column ${caret + 1}: ` : "";
  const message = caret >= 0 ? lines[1].slice(caret + 1).trim() : detail;
  return h("div", { id: "query-error" },
    h("p", { class: "bad" }, `The query does not parse — ${where}${message}`),
    h("pre", { class: "error" }, caret >= 0 ? `${lines[0]}\n${lines[1]}` : q));
}

async function pageDirectory(search) {
  const p = parseParams(search);
  const q = effectiveQuery(p);
  const input = (name, value, attrs) => h("input", { name, value, ...attrs });
  const form = h("form", { class: "query", id: "query-form" },
    h("label", {}, "Query (docs/query.md)",
      input("q", p.q, { class: "q", id: "q", placeholder: "service.kind = storage.object and service.data_location in [DE, AT]", autocomplete: "off", spellcheck: "false" })),
    h("div", { class: "row" },
      h("label", {}, "Certification", input("cert", p.cert, { id: "cert", placeholder: "C5, ISO27001…", size: 12 })),
      h("label", {}, "Renewable energy ≥ %", input("renew", p.renew, { id: "renew", type: "number", min: 0, max: 100, step: 1 })),
      h("label", {}, "Price ≤", input("price", p.price, { id: "price", type: "number", min: 0, step: "any" })),
      h("label", {}, "Sort", h("select", { name: "sort", id: "sort" },
        [["", "relevance (index order)"], ["participant.legal_name", "provider"], ["service.price.amount", "price ↑"],
          ["service.price.amount:desc", "price ↓"], ["node.energy.renewable_pct:desc", "renewable ↓"], ["seq:desc", "newest"]]
          .map(([v, t]) => h("option", { value: v, selected: v === p.sort }, t)))),
      h("label", {}, "Rows per page", h("input", { name: "limit", id: "limit", type: "number", min: 1, max: MAX_PAGE_SIZE, value: p.limit })),
      h("button", { type: "submit", id: "search" }, "Search"),
      h("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/directory"; } }, "Clear")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const [k, v] of data.entries()) if (String(v).trim() !== "") next.set(k, String(v));
    location.hash = `#/directory?${next.toString()}`;
  });
  const results = h("div", { id: "results" });
  const el = h("div", {}, h("h1", {}, "Directory"), form, results);

  async function render() {
    let reply;
    const url = `/api/v1/directory?q=${encodeURIComponent(q)}&limit=${p.limit}&offset=${p.offset}` +
      (p.sort ? `&sort=${encodeURIComponent(p.sort)}` : "");
    try {
      reply = await api(url);
    } catch (err) {
      if (err.status === 400) { results.replaceChildren(queryError(err, q)); return; }
      throw err;
    }
    await loadMap();
    const rows = reply.matches;
    const markers = mapMarkers(mapData.meta, rows);
    const from = rows.length ? p.offset + 1 : 0;
    const to = p.offset + rows.length;
    const pageLink = (offset) => {
      const n = new URLSearchParams(search || "");
      n.set("offset", String(offset));
      return `#/directory?${n.toString()}`;
    };
    const pager = h("div", { class: "pager" },
      h("span", { id: "total", "data-total": reply.total },
        `rows ${from}–${to} of ${reply.total} (node, service) matches`),
      p.offset > 0 ? h("a", { href: pageLink(Math.max(0, p.offset - p.limit)), id: "prev" }, "← previous") : null,
      to < reply.total ? h("a", { href: pageLink(to), id: "next" }, "next →") : null,
      h("span", { class: "muted" }, `examined ${reply.examined} · ${reply.source}`));
    const body = rows.map((r) => {
      const s = r.service || {};
      const price = s.price ? `${s.price.amount} ${s.price.currency}/${s.price.unit}` : "–";
      return h("tr", { "data-subject": r.subject },
        h("td", {}, h("a", { href: `#/provider/${encodeURIComponent(r.subject)}` }, r.legal_name || short(r.subject))),
        h("td", {}, r.country || "–"),
        h("td", {}, s.name || h("span", { class: "muted" }, "no services")),
        h("td", { class: "mono" }, s.kind || "–"),
        h("td", {}, (s.data_location || []).join(", ") || "–"),
        h("td", {}, (s.processing_location || []).join(", ") || "–"),
        h("td", {}, (s.certifications || []).map((c) => h("span", { class: "tag" }, c.scheme))),
        h("td", {}, s.protection_level || "–"),
        h("td", {}, price));
    });
    results.replaceChildren(
      h("p", { class: "muted" }, "Effective query: ", h("code", { id: "effective" }, q)),
      pager,
      h("div", { class: "split" },
        table(["Provider", "HQ", "Service", "Kind", "Data stored", "Processed", "Certifications", "Protection", "Price"],
          body, { id: "providers" }),
        drawMap(markers)),
      h("details", {}, h("summary", {}, "Plan"), h("pre", { class: "json" }, reply.plan)));
  }
  await render();
  const again = throttle(() => render().catch(() => {}), 2000);
  return {
    el,
    onEvent: (e) => { if (e.type === "sd_stored" || e.type === "revocations") again(); },
  };
}

// --- Provider --------------------------------------------------------------------------

async function pageProvider(peer) {
  const [entry, updates] = await Promise.all([
    api(`/api/v1/directory/${encodeURIComponent(peer)}`),
    api(`/api/v1/updates?subject=${encodeURIComponent(peer)}&limit=50`),
  ]);
  await loadMap();
  const doc = entry.document;
  const pr = entry.proofs;
  const part = doc.participant || {};
  const node = doc.node || {};
  const services = doc.services || [];
  const markers = mapMarkers(mapData.meta, services.map((s) => ({ subject: entry.subject, legal_name: part.legal_name, service: s })));
  const extra = [];
  if (node.location && node.location.coordinates) {
    const [x, y] = project(mapData.meta, node.location.coordinates.lon, node.location.coordinates.lat);
    const site = h("svg:circle", { cx: x, cy: y, r: 3 });
    site.setAttribute("class", "site");
    site.setAttribute("fill", "#111");
    site.append(h("svg:title", {}, `node site: ${node.location.city || ""} (${node.location.coordinates.lat}, ${node.location.coordinates.lon})`));
    extra.push(site);
  }
  const att = pr.attestations || [];
  const el = h("div", {},
    h("h1", { id: "provider-name" }, part.legal_name || entry.subject),
    h("div", { class: "split" },
      h("div", {},
        h("div", { class: "card" }, h("h2", {}, "Signatures"), kv([
          ["Self-description", h("span", { id: "signature" }, check(pr.signature))],
          ["Signed by", h("span", { class: "mono" }, entry.subject)],
          ["Hash (BLAKE3)", h("span", { class: "mono" }, pr.hash)],
          ["Version (seq)", entry.seq],
          ["Issued / expires", `${fmtTime(pr.issued_at_ms)} / ${fmtTime(pr.expires_at_ms)}`],
          ["Received", `${fmtTime(entry.received_at_ms)}${entry.from ? ` from ${short(entry.from, 16)}` : " (this node's own)"}`],
          ["Last heartbeat", fmtAgo(entry.last_seen_ms)],
          ["Membership", pr.membership ? h("span", { id: "membership" }, check(pr.membership.check)) : h("span", { class: "warn", id: "membership" }, "no credential")],
          pr.membership && ["Member as", `${pr.membership.legal_name} (${(pr.membership.roles || []).join(", ")}), until ${fmtTime(pr.membership.expires_at_ms)}`],
          pr.membership && ["Admitted by", h("div", {}, (pr.membership.signers || []).map((s) => h("div", { class: "mono" }, s)))],
        ])),
        h("h2", {}, `Attestations (${att.length})`),
        att.length ? table(["Service", "Scheme", "Scope", "Certifier", "Valid until", "Check", "Counted"],
          att.map((a) => h("tr", {},
            h("td", {}, a.service), h("td", {}, a.scheme), h("td", {}, a.scope || "–"),
            h("td", { class: "mono" }, short(a.certifier, 16)), h("td", {}, fmtTime(a.valid_until_ms)),
            h("td", {}, check(a.check)), h("td", {}, a.counted ? "yes" : "no"))), { id: "attestations" })
          : h("p", { class: "muted" }, "No certifier attested a certification of this provider; its certifications are self-declared."),
        h("h2", {}, `Services (${services.length})`),
        table(["Service", "Kind", "Data stored", "Processed", "Certifications", "Price"], services.map((s) => h("tr", {},
          h("td", {}, s.name, h("div", { class: "muted mono" }, s.id)),
          h("td", { class: "mono" }, s.kind),
          h("td", {}, (s.data_location || []).join(", ")),
          h("td", {}, (s.processing_location || []).join(", ")),
          h("td", {}, (s.certifications || []).map((c) => {
            const attested = att.some((a) => a.service === s.id && a.scheme === c.scheme && a.counted);
            return h("span", { class: attested ? "tag attested" : "tag", title: attested ? "attested by a certifier" : "self-declared" }, c.scheme);
          })),
          h("td", {}, s.price ? `${s.price.amount} ${s.price.currency}/${s.price.unit}` : "–")))),
        h("h2", {}, "Node"),
        h("div", { class: "card" }, kv([
          ["Kind", node.kind],
          ["Location", node.location ? [node.location.city, node.location.subdivision, node.location.country].filter(Boolean).join(", ") : "–"],
          ["Hardware", node.hardware ? `${node.hardware.vcpus} vCPU, ${node.hardware.memory_gib} GiB, ${node.hardware.storage_tib} TiB, ${(node.hardware.gpus || []).length} GPU model(s)` : "–"],
          ["Energy", node.energy ? `PUE ${node.energy.pue}, ${node.energy.renewable_pct}% renewable (${node.energy.source || "–"})` : "–"],
          ["Headquarters", [part.headquarters && part.headquarters.city, part.headquarters && part.headquarters.country].filter(Boolean).join(", ")],
          ["Registration", (part.registration || []).map((r) => `${r.kind}: ${r.value}`).join("; ")],
        ])),
        h("h2", {}, "Version history (seen by this node since it started)"),
        updates.updates.length
          ? table(["seq", "outcome", "from", "received"], updates.updates.map((u) => h("tr", {},
            h("td", {}, u.seq), h("td", {}, u.outcome), h("td", { class: "mono" }, u.from ? short(u.from, 16) : "own"),
            h("td", {}, fmtTime(u.received_at_ms)))), { id: "history" })
          : h("p", { class: "muted", id: "history" }, `Only the current version (seq ${entry.seq}) has been seen since this node started.`),
        h("h2", {}, "Gaia-X"),
        h("p", {}, h("a", { href: `/api/v1/directory/${encodeURIComponent(entry.subject)}/gaiax`, download: `${entry.subject}.gaiax.jsonld`, id: "gaiax-export" },
          "Download as Gaia-X (Loire) JSON-LD credentials"), h("span", { class: "muted" }, " — unsigned; `gaiamesh gaiax export --format vc-jwt` signs them (docs/gaiax.md)")),
        h("details", {}, h("summary", {}, "Full self-description (JSON)"),
          h("pre", { class: "json", id: "document" }, JSON.stringify(doc, null, 2)))),
      drawMap(markers, extra, true)));
  return {
    el,
    onEvent: (e) => { if (e.type === "sd_stored" && e.subject === entry.subject) route(); },
  };
}

// --- Federation ------------------------------------------------------------------------

async function pageFederation() {
  const [f, peers, status] = await Promise.all([api("/api/v1/federation"), api("/api/v1/peers"), api("/api/v1/status")]);
  const keys = (list) => h("div", {}, list.map((k) => h("div", { class: "mono" }, k)));
  const members = [status.peer_id, ...peers.filter((p) => p.admitted).map((p) => p.peer_id)];
  const el = h("div", {},
    h("h1", {}, f.name),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("h2", {}, "Genesis"), kv([
        ["Federation id", h("span", { class: "mono", id: "federation-id" }, f.id)],
        ["Created", fmtTime(f.created_at_ms)],
        ["Membership required", f.require_membership ? "yes" : "no"],
        ["Allowed jurisdictions", f.allowed_jurisdictions.length ? f.allowed_jurisdictions.join(", ") : "any"],
        ["Private network (PSK)", f.private_network ? "yes" : "no"],
        ["Bootstrap", f.bootstrap.length ? h("div", {}, f.bootstrap.map((b) => h("div", { class: "mono" }, b))) : "–"],
      ])),
      h("div", { class: "card" }, h("h2", {}, "Authorities"), kv([
        ["Threshold", h("span", { id: "authority-threshold" }, `${f.authorities.threshold} of ${f.authorities.keys.length}`)],
        ["Keys", keys(f.authorities.keys)],
      ])),
      h("div", { class: "card" }, h("h2", {}, "Repository signers"), kv([
        ["Threshold", `${f.repository.threshold} of ${f.repository.keys.length}`],
        ["Keys", keys(f.repository.keys)],
      ])),
      h("div", { class: "card" }, h("h2", {}, "Certifiers"),
        f.certifiers.length ? keys(f.certifiers) : h("p", { class: "muted" }, "none"))),
    h("h2", {}, `Members connected to this node (${members.length})`),
    table(["PeerId", ""], members.map((m) => h("tr", {}, h("td", {}, peerLink(m)),
      h("td", {}, m === status.peer_id ? "this node" : "admitted"))), { id: "members" }),
    h("h2", {}, `Revocations (list version ${f.revocation_version})`),
    f.revoked.length
      ? table(["Revoked peer", "Reason", "Since"], f.revoked.map((r) => h("tr", {},
        h("td", { class: "mono" }, r.peer), h("td", {}, r.reason || "–"), h("td", {}, fmtTime(r.revoked_at_ms)))), { id: "revoked" })
      : h("p", { class: "muted", id: "revoked" }, "Nothing is revoked."));
  return { el, onEvent: (e) => { if (["revocations", "peer_admitted", "peer_refused"].includes(e.type)) route(); } };
}

// --- Repository ------------------------------------------------------------------------

async function pageRepository() {
  const el = h("div", {}, h("h1", {}, "Software repository"));
  const body = h("div");
  el.append(body);
  let timer = null;
  // Who holds what: DHT lookups, so asked once per visit (and after a release), not every second.
  let holders = {};
  async function loadHolders() {
    try {
      const answer = await api("/api/v1/repo/holders");
      holders = Object.fromEntries(answer.targets.map((t) => [t.target, t.holders]));
    } catch (_) { holders = {}; }
  }
  async function render() {
    const r = await api("/api/v1/repo");
    const rows = r.targets.map((t) => {
      const f = t.fetch;
      return h("tr", { "data-target": t.target },
        h("td", { class: "mono" }, t.target),
        h("td", {}, t.category), h("td", {}, t.platform || "any"),
        h("td", {}, fmtBytes(t.length)),
        h("td", {}, h("span", { class: t.local === "complete" ? "ok" : t.local === "partial" ? "warn" : "muted" }, t.local)),
        h("td", {}, progress(t.verified, t.length), `${fmtBytes(t.verified)} verified`),
        h("td", {}, f ? `${f.state}; ${f.providers} provider(s), ${f.penalised_peers} penalised, ${(f.elapsed_ms / 1000).toFixed(1)} s` : "–"),
        h("td", { class: "holders", "data-holders": (holders[t.target] || []).length },
          (holders[t.target] || []).length
            ? h("details", {}, h("summary", {}, `${holders[t.target].length} node(s)`),
              (holders[t.target] || []).map((p) => h("div", {}, peerLink(p))))
            : "–"),
        h("td", { class: "mono", title: t.blake3 }, short(t.blake3, 16)));
    });
    body.replaceChildren(
      h("div", { class: "card" }, kv([
        ["Metadata", r.valid ? h("span", { class: "ok" }, "valid") : h("span", { class: "bad" }, r.error || "not valid")],
        ["Root / targets / timestamp", `${r.root_version ?? "–"} / ${r.targets_version ?? "–"} / ${r.timestamp_version ?? "–"}`],
      ])),
      h("h2", {}, `Targets (${r.targets.length})`),
      r.targets.length
        ? table(["Target", "Category", "Platform", "Size", "Here", "Progress", "Fetch", "Held by", "BLAKE3"], rows, { id: "targets" })
        : h("p", { class: "muted" }, "No release is trusted yet."));
    const busy = r.targets.some((t) => t.local !== "complete" && t.fetch && t.fetch.state === "fetching");
    clearTimeout(timer);
    if (busy) timer = setTimeout(() => render().catch(() => {}), 1000);
  }
  await loadHolders();
  await render();
  return {
    el,
    onEvent: (e) => { if (e.type === "repo_release") loadHolders().then(render).catch(() => {}); },
    stop: () => clearTimeout(timer),
  };
}

// --- Exchanges -------------------------------------------------------------------------

function auditSummary(e) {
  const inner = (e.event || {})[e.kind] || {};
  switch (e.kind) {
    case "agreement": {
      const b = (inner.agreement || {}).body || {};
      return `${b.asset} for "${b.purpose}" (${fmtBytes(b.size)}) provider ${short(b.provider, 16)} consumer ${short(b.consumer, 16)}`;
    }
    case "refusal": return `${inner.asset} "${inner.purpose}" by ${short(inner.peer, 16)}: ${inner.reason}`;
    case "transfer": return `${short(inner.agreement, 8)} file ${inner.file} from byte ${inner.offset}: ${fmtBytes(inner.bytes)}, ${inner.outcome}`;
    case "receipt": {
      const b = (inner.receipt || {}).body || {};
      return `${short(b.agreement, 8)} ${fmtBytes(b.bytes)} signed by ${short(b.consumer, 16)}`;
    }
    case "usage": {
      const r = inner.record || {};
      const b = r.body || {};
      const u = b.usage || {};
      const price = b.charge ? `, ${b.charge.amount} ${b.charge.currency}` : "";
      const signed = r.consumer_signature ? "signed by both" : "signed by the provider";
      return `${b.algorithm} on ${b.asset}: ${b.outcome}, ${u.fuel} fuel, read ${fmtBytes(u.bytes_read)}, result ${fmtBytes(u.bytes_written)}${price} (${signed})`;
    }
    default: return JSON.stringify(inner).slice(0, 200);
  }
}

/** The Dataspace Protocol state an audit entry records (docs/exchange.md). */
function dspState(e) {
  const inner = (e.event || {})[e.kind] || {};
  if (e.kind === "agreement") return inner.role === "provider" ? "VERIFIED" : "FINALIZED";
  if (e.kind === "refusal") return "TERMINATED";
  return "";
}

async function pageExchanges() {
  const tokenInput = h("input", { type: "password", id: "token", placeholder: "API token (api.json of the node's data dir)", value: token(), autocomplete: "off" });
  const tokenForm = h("form", { class: "token" }, tokenInput,
    h("button", { type: "submit" }, "Use token"),
    h("button", { type: "button", class: "secondary", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); route(); } }, "Forget"));
  tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    route();
  });
  const assetsBox = h("div");
  const jobsBox = h("div", { id: "jobs-box" });
  const auditBox = h("div", { id: "audit-box" });
  const el = h("div", {}, h("h1", {}, "Exchanges"),
    h("h2", {}, "Assets offered by this node"), assetsBox,
    h("h2", {}, "Operator views"),
    h("p", { class: "muted" }, "Transfers and the audit log are the operator's: they need the node's API token, kept in this tab only (sessionStorage)."),
    tokenForm, jobsBox, auditBox);

  async function renderAssets() {
    const assets = await api("/api/v1/assets");
    assetsBox.replaceChildren(assets.length
      ? table(["Asset", "Size", "Files", "Purposes", "Jurisdiction", "Onward transfer", "Max transfers", "Valid until"],
        assets.map((a) => h("tr", {},
          h("td", { class: "mono" }, a.id), h("td", {}, fmtBytes(a.size)), h("td", {}, a.files.length),
          h("td", {}, (a.policy.purposes || []).join(", ") || "any"),
          h("td", {}, (a.policy.jurisdiction || []).join(", ") || "any"),
          h("td", {}, a.policy.onward_transfer ? "allowed" : "no"),
          h("td", {}, a.policy.max_transfers ?? "unlimited"),
          h("td", {}, a.policy.valid_until || "–"))), { id: "assets" })
      : h("p", { class: "muted" }, "This node offers no assets (gaiamesh exchange offer)."));
  }

  async function renderOperator() {
    if (!token()) {
      jobsBox.replaceChildren(h("p", { class: "muted", id: "need-token" }, "Enter the token to see transfers and the audit log."));
      auditBox.replaceChildren();
      return;
    }
    let jobs, audit, verify;
    try {
      [jobs, audit] = await Promise.all([api("/api/v1/exchange", { auth: true }), api("/api/v1/audit?from=0&limit=200", { auth: true })]);
    } catch (err) {
      jobsBox.replaceChildren(h("pre", { class: "error", id: "token-error" }, err.status === 401 || err.status === 403 ? `The node refused the token: ${err.message}` : err.message));
      auditBox.replaceChildren();
      return;
    }
    try { verify = { ok: true, ...(await api("/api/v1/audit/verify", { auth: true })) }; }
    catch (err) { verify = { ok: false, error: err.message }; }
    jobsBox.replaceChildren(h("h2", {}, `Transfers (${jobs.jobs.length})`), jobs.jobs.length
      ? table(["Job", "Asset", "Provider", "State", "Progress", "Negotiation", "Transfer", "Contract"],
        jobs.jobs.map((j) => h("tr", { "data-job": j.id, "data-state": j.state },
          h("td", {}, j.id), h("td", { class: "mono" }, j.asset), h("td", {}, peerLink(j.provider)),
          h("td", {}, h("span", { class: j.state === "completed" ? "ok" : j.state === "failed" ? "bad" : "warn" }, j.state),
            j.error ? h("div", { class: "bad" }, j.error) : null),
          h("td", {}, progress(j.bytes, j.total), `${fmtBytes(j.bytes)} of ${fmtBytes(j.total)}`),
          h("td", {}, j.negotiation_ms ? `${j.negotiation_ms.toFixed(1)} ms` : "–"),
          h("td", {}, j.transfer_ms ? `${j.transfer_ms.toFixed(1)} ms` : "–"),
          h("td", { class: "mono" }, short(j.agreement, 12)))), { id: "jobs" })
      : h("p", { class: "muted", id: "jobs" }, "No transfers yet (gaiamesh exchange fetch)."));
    const contracts = audit.entries.filter((e) => e.kind === "agreement" || e.kind === "refusal");
    auditBox.replaceChildren(
      h("h2", {}, `Contracts (${contracts.length})`),
      contracts.length
        ? table(["Entry", "State", "Role", "Contract"], contracts.map((e) => h("tr", {},
          h("td", {}, e.seq), h("td", {}, h("span", { class: e.kind === "agreement" ? "ok" : "bad" }, dspState(e))),
          h("td", {}, ((e.event || {})[e.kind] || {}).role || "–"), h("td", {}, auditSummary(e)))), { id: "contracts" })
        : h("p", { class: "muted" }, "No contract negotiated yet."),
      h("h2", {}, `Audit log (${audit.total} entries)`),
      h("p", { id: "audit-verify" }, verify.ok
        ? h("span", { class: "ok" }, `✓ hash chain intact: ${verify.entries} entries, head ${short(verify.head, 16)}`)
        : h("span", { class: "bad" }, `✗ ${verify.error}`)),
      table(["#", "At", "Kind", "Role", "What"], audit.entries.map((e) => h("tr", {},
        h("td", {}, e.seq), h("td", {}, e.at), h("td", {}, e.kind),
        h("td", {}, ((e.event || {})[e.kind] || {}).role || "–"), h("td", {}, auditSummary(e)))), { id: "audit" }));
  }
  await Promise.all([renderAssets(), renderOperator()]);
  const again = throttle(() => renderOperator().catch(() => {}), 500);
  return { el, onEvent: (e) => { if (e.type === "exchange_changed") again(); } };
}

// ---------------------------------------------------------------------------------------
// Router

let current = null;

async function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === (name === "provider" ? "directory" : name));
  }
  if (current && current.stop) current.stop();
  current = null;
  const view = document.getElementById("view");
  let page;
  try {
    switch (name) {
      case "overview": page = await pageOverview(); break;
      case "directory": page = await pageDirectory(search); break;
      case "provider": page = await pageProvider(decodeURIComponent(parts[1] || "")); break;
      case "federation": page = await pageFederation(); break;
      case "repository": page = await pageRepository(); break;
      case "exchanges": page = await pageExchanges(); break;
      default: page = { el: h("p", { class: "bad" }, `No page ${path}.`) };
    }
  } catch (err) {
    page = { el: h("div", {}, h("h1", {}, "Cannot load this page"), errorBox(err)) };
  }
  // A newer navigation may have finished first; only the latest hash renders.
  if ((location.hash.replace(/^#/, "") || "/") !== hash) { if (page.stop) page.stop(); return; }
  current = page;
  view.replaceChildren(page.el);
  document.title = `gaiamesh · ${name}`;
  document.body.dataset.page = name;
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  live.start();
  live.subscribe((e) => { if (current && current.onEvent) current.onEvent(e); });
  route();
});
