// Overview: per-minute activity of every flow and connector over the last
// hour, from GET /api/v1/stats, drawn with uPlot and refreshed every few
// seconds; and the nodes sharing the store, from GET /api/v1/nodes.
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

startPage("overview", () => {
  every(REFRESH_MS, refresh);
  every(REFRESH_MS, refreshNodes);
  window.addEventListener("resize", () => {
    for (const chart of charts.values()) chart.plot.setSize(size(chart.box));
  });
});

async function refresh() {
  const stats = await api("/stats?window=1h");
  notice("");
  const xs = stats.buckets;
  const flows = stats.flows;
  const connectors = stats.connectors;

  renderSummary(flows, connectors);
  document.getElementById("connector-figures").textContent =
    stats.connector_figures === "http_attempts"
      ? "every HTTP attempt this node made, retries included"
      : "call steps journalled by every node";

  chart("flow-charts", "runs-started", "Runs started per minute", xs, flows, (f) => f.started, count);
  chart(
    "flow-charts",
    "flow-error-rate",
    "Error rate (dead ÷ ended)",
    xs,
    flows,
    (f) => f.dead.map((dead, i) => ratio(dead, dead + f.succeeded[i])),
    percent,
  );
  chart("flow-charts", "flow-p95", "p95 run duration", xs, flows, (f) => f.p95_ms, duration);

  chart("connector-charts", "connector-calls", "Calls per minute", xs, connectors, (c) => c.calls, count);
  chart(
    "connector-charts",
    "connector-error-rate",
    "Error rate (failed ÷ calls)",
    xs,
    connectors,
    (c) => c.errors.map((errors, i) => ratio(errors, c.calls[i])),
    percent,
  );
  chart("connector-charts", "connector-p95", "p95 call latency", xs, connectors, (c) => c.p95_ms, duration);
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

function renderSummary(flows, connectors) {
  const flowRows = flows.map((f) => {
    const succeeded = sum(f.succeeded);
    const dead = sum(f.dead);
    return h(
      "tr",
      { "data-flow": f.name },
      h("td", {}, h("a", { href: `/ui/runs?flow=${encodeURIComponent(f.name)}` }, f.name)),
      h("td", { class: "num" }, sum(f.started)),
      h("td", { class: "num" }, succeeded),
      h("td", { class: "num" }, dead ? h("a", { href: `/ui/dead-letters?flow=${encodeURIComponent(f.name)}` }, dead) : 0),
      h("td", { class: "num" }, percent(ratio(dead, succeeded + dead)) || "–"),
      h("td", { class: "num" }, duration(lastPresent(f.p95_ms)) || "–"),
    );
  });
  const connectorRows = connectors.map((c) =>
    h(
      "tr",
      { "data-connector": c.name },
      h("td", {}, h("a", { href: "/ui/connectors" }, c.name)),
      h("td", { class: "num" }, sum(c.calls)),
      h("td", { class: "num" }, sum(c.errors)),
      h("td", { class: "num" }, percent(ratio(sum(c.errors), sum(c.calls))) || "–"),
      h("td", { class: "num" }, duration(lastPresent(c.p95_ms)) || "–"),
    ),
  );
  const empty = (columns, text) => h("tr", {}, h("td", { class: "empty", colspan: columns }, text));
  document.getElementById("summary").replaceChildren(
    h(
      "div",
      { class: "pair" },
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": "Flows, last hour", tabindex: "0" },
        h(
          "table",
          { id: "flow-summary" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "Flow (last hour)"),
              h("th", { class: "num" }, "Started"),
              h("th", { class: "num" }, "Succeeded"),
              h("th", { class: "num" }, "Dead"),
              h("th", { class: "num" }, "Error rate"),
              h("th", { class: "num" }, "p95 (last min)"),
            ),
          ),
          h("tbody", {}, flowRows.length ? flowRows : empty(6, "No flows configured")),
        ),
      ),
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": "Connectors, last hour", tabindex: "0" },
        h(
          "table",
          { id: "connector-summary" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "Connector (last hour)"),
              h("th", { class: "num" }, "Calls"),
              h("th", { class: "num" }, "Errors"),
              h("th", { class: "num" }, "Error rate"),
              h("th", { class: "num" }, "p95 (last min)"),
            ),
          ),
          h("tbody", {}, connectorRows.length ? connectorRows : empty(5, "No calls in the last hour")),
        ),
      ),
    ),
  );
}

function size(box) {
  return { width: Math.max(280, box.clientWidth), height: 200 };
}

// Draws (or updates) one chart: one series per flow or connector.
function chart(parent, id, title, xs, things, valuesOf, format) {
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
  if (entry.plot && entry.names === names.join("\n")) {
    entry.plot.setData(data);
    return;
  }
  if (entry.plot) entry.plot.destroy();
  entry.box.replaceChildren();
  const opts = {
    ...size(entry.box),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: "#8a94a6", grid: { stroke: "rgba(128,128,128,0.15)" } },
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
  entry.plot = new uPlot(opts, data, entry.box);
  entry.names = names.join("\n");
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
