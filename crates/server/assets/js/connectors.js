// Connectors: each upstream's circuit breaker, rate-limit headroom, recent
// calls, error rate and latency, and last error, from GET /api/v1/connectors.

import { api, itemsOf } from "./api.js";
import { badge, duration, every, h, notice, percent, startPage, time } from "./page.js";

const REFRESH_MS = 5000;

startPage("connectors", () => {
  every(REFRESH_MS, async () => {
    const connectors = itemsOf(await api("/connectors"));
    notice("");
    const rows = connectors.map(row);
    document
      .querySelector("#connectors tbody")
      .replaceChildren(
        ...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 9 }, "No connectors configured"))]),
      );
  });
});

function row(c) {
  const recent = c.recent || {};
  const state = (c.breaker && c.breaker.state) || "disabled";
  return h(
    "tr",
    { "data-connector": c.name, "data-breaker": state },
    h("td", {}, h("strong", {}, c.name)),
    h(
      "td",
      {},
      badge(state),
      c.breaker && c.breaker.retry_in_ms ? h("div", { class: "muted" }, `probe in ${duration(c.breaker.retry_in_ms)}`) : null,
      c.paused_for_ms ? h("div", { class: "muted" }, `upstream asked to pause: ${duration(c.paused_for_ms)}`) : null,
    ),
    h("td", {}, rateLimit(c.rate_limit)),
    h("td", { class: "num" }, recent.calls ?? ""),
    h("td", { class: "num" }, recent.errors ?? ""),
    h("td", { class: "num" }, percent(recent.error_rate)),
    h("td", { class: "num" }, duration(recent.p50_ms)),
    h("td", { class: "num" }, duration(recent.p95_ms)),
    h(
      "td",
      { class: "error" },
      c.last_error ? [h("div", { class: "muted" }, time(c.last_error.at)), c.last_error.message] : "",
    ),
  );
}

// The configured limit, the share of it left unused over the last minute,
// and what the upstream last said of its own quota.
function rateLimit(limit) {
  const lines = [];
  if (limit && limit.limit_per_second !== null && limit.limit_per_second !== undefined) {
    lines.push(h("div", {}, `${limit.limit_per_second}/s`, limit.headroom !== null && limit.headroom !== undefined
      ? h("span", { class: "muted" }, ` · ${percent(limit.headroom)} free`)
      : null));
  }
  const upstream = limit && limit.upstream;
  if (upstream) {
    lines.push(
      h(
        "div",
        { class: "muted" },
        `upstream quota: ${upstream.remaining}${upstream.limit !== null && upstream.limit !== undefined ? ` of ${upstream.limit}` : ""} left`,
      ),
    );
  }
  return lines.length ? lines : h("span", { class: "muted" }, "no limit");
}
