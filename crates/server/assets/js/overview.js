// Overview: activity of every flow and connector over a recent window, from
// GET /api/v1/stats, drawn with uPlot and refreshed every few seconds, with
// each flow's queue (ready, retrying, running) and each connector's breaker
// and rate-limit headroom (GET /api/v1/connectors); and the nodes sharing
// the store, from GET /api/v1/nodes.
//
// The window fits what happened: by default the last hour, narrowed to 15
// minutes when all of the hour's activity is that recent, widened to a day
// when the hour was idle; the buttons (kept in the address as `?window=`)
// choose one.
//
// Each chart's container says what it shows in data attributes
// (`data-series`, `data-points`: values that are present and non-zero), so
// tests and people inspecting the page can tell an empty chart from a
// drawn one without reading pixels.

import { api, itemsOf } from "./api.js";
import { badge, duration, h, notice, percent, startPage, every, time } from "./page.js";

const REFRESH_MS = 5000;
const COLORS = ["#3867d6", "#20bf6b", "#eb3b5a", "#f7b731", "#8854d0", "#0fb9b1", "#fa8231", "#4b6584"];

const charts = new Map();

// Each window with its bucket width and how it is named.
const WINDOWS = {
  "15m": { step: "15s", label: "last 15 minutes", per: "per 15 s", seconds: true },
  "1h": { step: "1m", label: "last hour", per: "per minute", seconds: false },
  "24h": { step: "30m", label: "last 24 hours", per: "per 30 min", seconds: false },
};
const chosen = new URLSearchParams(location.search).get("window") || "auto";
// What `auto` settled on, looked at again every minute.
let automatic = { window: "1h", at: 0 };

startPage("overview", () => {
  renderWindowSwitch();
  every(REFRESH_MS, refresh);
  every(REFRESH_MS, refreshNodes);
  window.addEventListener("resize", () => {
    for (const chart of charts.values()) chart.plot.setSize(size(chart.box));
  });
});

function renderWindowSwitch() {
  const choices = [["auto", "Auto"], ["15m", "15 min"], ["1h", "1 hour"], ["24h", "24 hours"]];
  document.getElementById("window-switch").replaceChildren(
    ...choices.map(([value, label]) =>
      h(
        "a",
        {
          href: value === "auto" ? "/ui" : `/ui?window=${value}`,
          class: "choice",
          "aria-current": value === chosen ? "true" : null,
          "data-window": value,
        },
        label,
      ),
    ),
  );
}

// Indices of buckets with any run started or ended.
function activeBuckets(stats) {
  const active = new Set();
  for (const f of stats.flows) {
    f.started.forEach((n, i) => {
      if (n || f.succeeded[i] || f.dead[i] || f.skipped[i] || f.cancelled[i]) active.add(i);
    });
  }
  return [...active];
}

// The window to show: the one chosen, or for `auto` the one that fits the
// activity, settled once a minute so the page does not flip back and forth.
async function windowToShow() {
  if (chosen !== "auto" && WINDOWS[chosen]) return chosen;
  if (Date.now() - automatic.at < 60_000) return automatic.window;
  const hour = await api("/stats?window=1h&step=1m");
  const active = activeBuckets(hour);
  let pick = "1h";
  if (!active.length) {
    const day = await api("/stats?window=24h&step=30m");
    if (activeBuckets(day).length) pick = "24h";
  } else if (Math.min(...active) >= hour.buckets.length - 15) {
    pick = "15m";
  }
  automatic = { window: pick, at: Date.now() };
  return pick;
}

async function refresh() {
  const name = await windowToShow();
  const win = WINDOWS[name];
  const [stats, health] = await Promise.all([
    api(`/stats?window=${name}&step=${win.step}`),
    api("/connectors?limit=500").catch(() => null),
  ]);
  notice("");
  const xs = stats.buckets;
  const flows = stats.flows;
  const connectors = stats.connectors;
  document.getElementById("window").textContent = `${win.label}, ${win.per}${chosen === "auto" ? " (chosen by activity)" : ""}`;
  document.body.dataset.window = name;
  const byName = new Map(itemsOf(health).map((c) => [c.name, c]));

  renderSummary(flows, connectors, byName, win);
  document.getElementById("connector-figures").textContent =
    stats.connector_figures === "http_attempts"
      ? "every HTTP attempt this node made, retries included"
      : "call steps journalled by every node";

  chart("flow-charts", "runs-started", `Runs started ${win.per}`, xs, flows, (f) => f.started, count, win);
  chart(
    "flow-charts",
    "flow-error-rate",
    "Error rate (dead ÷ ended)",
    xs,
    flows,
    (f) => f.dead.map((dead, i) => ratio(dead, dead + f.succeeded[i])),
    percent,
    win,
  );
  chart("flow-charts", "flow-p95", "p95 run duration", xs, flows, (f) => f.p95_ms, duration, win);

  chart("connector-charts", "connector-calls", `Calls ${win.per}`, xs, connectors, (c) => c.calls, count, win);
  chart(
    "connector-charts",
    "connector-error-rate",
    "Error rate (failed ÷ calls)",
    xs,
    connectors,
    (c) => c.errors.map((errors, i) => ratio(errors, c.calls[i])),
    percent,
    win,
  );
  chart("connector-charts", "connector-p95", "p95 call latency", xs, connectors, (c) => c.p95_ms, duration, win);
  document.body.dataset.refreshed = String(Date.now());
}

function ratio(part, whole) {
  return whole > 0 ? part / whole : null;
}

function count(value) {
  return value === null || value === undefined ? "" : String(Math.round(value * 100) / 100);
}

function sum(values) {
  return values.reduce((total, v) => total + (v || 0), 0);
}

function lastPresent(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

function renderSummary(flows, connectors, health, win) {
  const flowRows = flows.map((f) => {
    const succeeded = sum(f.succeeded);
    const dead = sum(f.dead);
    const q = f.queue || {};
    return h(
      "tr",
      { "data-flow": f.name },
      h("td", {}, h("a", { href: `/ui/flows/${encodeURIComponent(f.name)}` }, f.name)),
      h("td", { class: "num" }, h("a", { href: `/ui/runs?flow=${encodeURIComponent(f.name)}` }, sum(f.started))),
      h("td", { class: "num" }, succeeded),
      h("td", { class: "num" }, dead ? h("a", { href: `/ui/dead-letters?flow=${encodeURIComponent(f.name)}` }, dead) : 0),
      h("td", { class: "num" }, sum(f.skipped)),
      h("td", { class: "num" }, sum(f.cancelled)),
      h("td", { class: "num", "data-queue": "queued" }, (q.ready || 0) + (q.waiting || 0)),
      h(
        "td",
        { class: "num", "data-queue": "retrying" },
        q.retrying || 0,
        q.retrying && q.next_retry_at ? h("div", { class: "muted" }, `next ${time(q.next_retry_at)}`) : null,
      ),
      h("td", { class: "num", "data-queue": "running" }, q.running || 0),
      h("td", { class: "num" }, percent(ratio(dead, succeeded + dead)) || "–"),
      h("td", { class: "num" }, duration(lastPresent(f.p95_ms)) || "–"),
    );
  });
  const connectorRows = connectors.map((c) => {
    const live = health.get(c.name);
    return h(
      "tr",
      { "data-connector": c.name },
      h("td", {}, h("a", { href: "/ui/connectors" }, c.name)),
      h("td", {}, live ? badge(live.breaker.state) : "–"),
      h("td", { class: "num" }, live ? headroom(live.rate_limit) : "–"),
      h("td", { class: "num" }, sum(c.calls)),
      h("td", { class: "num" }, sum(c.errors)),
      h("td", { class: "num" }, percent(ratio(sum(c.errors), sum(c.calls))) || "–"),
      h("td", { class: "num" }, duration(lastPresent(c.p95_ms)) || "–"),
    );
  });
  const empty = (columns, text) => h("tr", {}, h("td", { class: "empty", colspan: columns }, text));
  const th = (text, num = true) => h("th", num ? { class: "num", scope: "col" } : { scope: "col" }, text);
  document.getElementById("summary").replaceChildren(
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Flows", tabindex: "0" },
      h(
        "table",
        { id: "flow-summary" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            th(`Flow (${win.label})`, false),
            th("Started"),
            th("Succeeded"),
            th("Dead"),
            th("Skipped"),
            th("Cancelled"),
            th("Queued now"),
            th("Retrying now"),
            th("Running now"),
            th("Error rate"),
            th("p95 (last bucket)"),
          ),
        ),
        h("tbody", {}, flowRows.length ? flowRows : empty(11, "No flows configured")),
      ),
    ),
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Connectors", tabindex: "0" },
      h(
        "table",
        { id: "connector-summary" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            th(`Connector (${win.label})`, false),
            th("Breaker", false),
            th("Rate headroom"),
            th("Calls"),
            th("Errors"),
            th("Error rate"),
            th("p95 (last bucket)"),
          ),
        ),
        h("tbody", {}, connectorRows.length ? connectorRows : empty(7, "No connectors configured")),
      ),
    ),
  );
}

// How much of its rate limit a connector left unused over the last minute.
function headroom(rate) {
  if (!rate || rate.limit_per_second === null || rate.limit_per_second === undefined) return "no limit";
  if (rate.headroom === null || rate.headroom === undefined) return `${rate.limit_per_second}/s`;
  return `${Math.round(rate.headroom * 100)}% of ${rate.limit_per_second}/s`;
}

function size(box) {
  return { width: Math.max(280, box.clientWidth), height: 200 };
}

// Draws (or updates) one chart: one series per flow or connector.
function chart(parent, id, title, xs, things, valuesOf, format, win) {
  const series = things.map((thing) => valuesOf(thing).map((v) => (v === undefined ? null : v)));
  const names = things.map((thing) => thing.name);
  let entry = charts.get(id);
  if (!entry) {
    const box = h("div", { class: "plot" });
    const panel = h("section", { class: "panel chart", id, "data-chart": id }, h("h3", {}, title), box);
    document.getElementById(parent).append(panel);
    entry = { panel, box, plot: null, names: null };
    charts.set(id, entry);
  }
  const points = series.reduce((n, values) => n + values.filter((v) => v !== null && v !== 0).length, 0);
  entry.panel.dataset.series = String(series.length);
  entry.panel.dataset.points = String(points);

  if (!things.length || typeof uPlot === "undefined") {
    if (entry.plot) entry.plot.destroy();
    entry.plot = null;
    entry.names = null;
    entry.box.replaceChildren(h("div", { class: "empty" }, things.length ? "Charts unavailable" : "Nothing to show yet"));
    return;
  }
  const data = [xs, ...series];
  // A new window needs a new axis: its labels are formatted for its span.
  const key = `${names.join("\n")}\n${win.label}`;
  if (entry.plot && entry.names === key) {
    entry.panel.querySelector("h3").textContent = title;
    entry.plot.setData(data);
    return;
  }
  if (entry.plot) entry.plot.destroy();
  entry.box.replaceChildren();
  const opts = {
    ...size(entry.box),
    // The x range is the whole window, whatever the data: a burst shows
    // where it happened in the window, not stretched over it.
    scales: {
      x: { time: true, range: () => [xs[0], xs[xs.length - 1]] },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        stroke: "#8a94a6",
        grid: { stroke: "rgba(128,128,128,0.15)" },
        // At least this many pixels per label, each a clock time of the
        // same width: labels never run into each other.
        space: win.seconds ? 90 : 70,
        values: (u, ticks) => ticks.map((t) => clock(t, win.seconds)),
      },
      {
        stroke: "#8a94a6",
        grid: { stroke: "rgba(128,128,128,0.15)" },
        size: 70,
        values: (u, ticks) => ticks.map((t) => format(t)),
      },
    ],
    series: [
      {},
      ...names.map((name, i) => ({
        label: name,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        value: (u, v) => (v === null || v === undefined ? "–" : format(v)),
        // Rates and percentiles have gaps (no runs, no calls): a value
        // between two gaps is drawn as its point, or it would not show.
        // Counts have none, and dots along zero would only clutter.
        points: { show: format !== count, size: 4 },
      })),
    ],
    legend: { live: true },
  };
  entry.panel.querySelector("h3").textContent = title;
  entry.plot = new uPlot(opts, data, entry.box);
  entry.names = key;
}

// `14:05` (or `14:05:30`) in local time, from unix seconds.
function clock(seconds, withSeconds) {
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return withSeconds ? `${hm}:${pad(date.getSeconds())}` : hm;
}

// One row per node: what it runs, its load, when it last reported, and
// whether it is alive, leads the housekeeping, or answered this page.
async function refreshNodes() {
  const list = await api("/nodes");
  const nodes = itemsOf(list);
  const alive = nodes.filter((n) => n.alive).length;
  document.getElementById("node-figures").textContent =
    `${alive} of ${nodes.length} alive, heartbeat every ${list.heartbeat_seconds} s`;
  const rows = nodes.map((n) =>
    h(
      "tr",
      { "data-node": n.id, "data-alive": String(n.alive), "data-leader": String(n.leader) },
      h("td", {}, h("strong", {}, n.id), n.this_node ? h("div", { class: "muted" }, "this node") : null),
      h("td", {}, n.address || ""),
      h("td", {}, n.version),
      h("td", {}, h("code", {}, n.config_version)),
      h("td", { class: "num" }, String(n.runs_in_flight)),
      h("td", {}, time(n.last_heartbeat)),
      h("td", {}, badge(n.alive ? "alive" : "silent"), n.leader ? [" ", badge("leader")] : null),
    ),
  );
  document
    .querySelector("#nodes tbody")
    .replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 7 }, "No node has reported yet"))]));
}
