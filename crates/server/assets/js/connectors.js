// Connectors: each upstream's circuit breaker, rate-limit headroom, recent
// calls, error rate and latency, last error, and its contract (the pinned
// API version, drift from the spec, deprecation and sunset notices), from
// GET /api/v1/connectors.

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
        ...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 10 }, "No connectors configured"))]),
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
      keyedBreakers(c.breaker),
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
    h("td", {}, contract(c)),
  );
}

// A connector that keys its breakers (by endpoint, by tenant...): the ones
// that are not closed, each with its key, then how many there are.
function keyedBreakers(breaker) {
  const keyed = (breaker && breaker.keyed) || [];
  if (!keyed.length) return null;
  const troubled = keyed.filter((b) => b.state !== "closed");
  return h(
    "ul",
    { class: "keyed-breakers", "aria-label": "Breakers by key" },
    ...troubled.map((b) =>
      h(
        "li",
        { "data-breaker-key": b.key, "data-breaker": b.state },
        badge(b.state),
        " ",
        h("code", {}, b.key),
        b.retry_in_ms ? h("span", { class: "muted" }, ` · probe in ${duration(b.retry_in_ms)}`) : null,
      ),
    ),
    h("li", { class: "muted" }, `${keyed.length} key${keyed.length === 1 ? "" : "s"}, ${keyed.length - troubled.length} closed`),
  );
}

// What the connector pins, how its replies drifted from the spec, and what
// the upstream said of the endpoint going away.
function contract(c) {
  const lines = [];
  if (c.api_version) {
    lines.push(h("div", { "data-api-version": c.api_version }, `version ${c.api_version}`));
  }
  if (c.drift) {
    lines.push(
      h(
        "div",
        { class: "error", "data-drift": c.drift.kinds },
        `drift: ${c.drift.kinds} kind${c.drift.kinds === 1 ? "" : "s"}, seen ${c.drift.occurrences}×`,
        h("span", { class: "muted" }, ` · last ${time(c.drift.last_seen)}`),
      ),
    );
  }
  const notice = c.deprecation;
  if (notice) {
    const when = notice.sunset_at ? `sunset ${notice.sunset_at.slice(0, 10)}` : "deprecated";
    lines.push(
      h(
        "div",
        { class: "error", "data-sunset": notice.sunset_at || "" },
        notice.link ? h("a", { href: notice.link, rel: "noreferrer" }, when) : when,
        h("span", { class: "muted" }, ` · ${notice.endpoint}`),
      ),
    );
  }
  return lines.length ? lines : h("span", { class: "muted" }, "—");
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
