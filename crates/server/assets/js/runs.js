// Runs: the newest runs, filtered by flow, status and text in their error,
// from GET /api/v1/runs. The filters live in the page's URL, so a filtered
// view can be bookmarked or shared (the token never is).

import { api, itemsOf } from "./api.js";
import { renderErrorGroups } from "./error-groups.js";
import { fillFlows } from "./flows.js";
import { badge, duration, every, h, notice, startPage, time } from "./page.js";

const REFRESH_MS = 5000;
const PAGE = 50;

let cursor = null;
// Once a person loads older pages, refreshing would drop them: stop.
let paging = false;

startPage("runs", async () => {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  await fillFlows(form.elements.flow, params.get("flow"));
  form.elements.status.value = params.get("status") || "";
  form.elements.q.value = params.get("q") || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["flow", "status", "q"]) {
      const value = form.elements[name].value.trim();
      if (value) next.set(name, value);
    }
    history.replaceState(null, "", `${location.pathname}${next.size ? `?${next}` : ""}`);
    paging = false;
    refresh();
  });
  document.getElementById("more").addEventListener("click", async () => {
    paging = true;
    await load(cursor, true);
  });
  const refresh = every(REFRESH_MS, async () => {
    if (!paging) await load(null, false);
  });
});

async function load(from, append) {
  const query = new URLSearchParams(location.search);
  query.set("limit", String(PAGE));
  if (from) query.set("cursor", from);
  const answer = await api(`/runs?${query}`);
  notice("");
  if (!append) {
    // Grouped errors of the runs in view: dead ones unless another
    // failing status is chosen (queued runs being retried carry errors too).
    const status = query.get("status");
    const grouped = status === "queued" || status === "cancelled" ? status : "dead";
    await renderErrorGroups(document.getElementById("groups"), { status: grouped, flow: query.get("flow") || "" });
  }
  const rows = itemsOf(answer).map(row);
  const body = document.querySelector("#runs tbody");
  if (append) body.append(...rows);
  else body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 8 }, "No runs match"))]));
  cursor = answer.next_cursor || null;
  document.getElementById("more").hidden = !cursor;
}

function row(run) {
  const took =
    run.finished_at && run.created_at ? duration(Date.parse(run.finished_at) - Date.parse(run.created_at)) : "";
  return h(
    "tr",
    { "data-run": run.id, "data-status": run.status },
    h("td", { class: "mono" }, h("a", { href: `/ui/runs/${run.id}` }, run.id.slice(0, 8) + "…" + run.id.slice(-4))),
    h("td", {}, run.flow),
    h("td", {}, badge(run.status)),
    h("td", {}, run.trigger),
    h("td", { class: "num" }, run.attempts),
    h("td", {}, time(run.created_at)),
    h("td", { class: "num" }, took),
    h("td", { class: "error" }, run.error || ""),
  );
}
