// Dead letters: runs whose retries are spent (GET /api/v1/dead-letters).
// Select some (or all shown) and replay them with
// POST /api/v1/dead-letters/replay; the replayed runs then stay listed
// below with their live status until they have ended, so a person sees the
// fix work (or not) without leaving the page.

import { api, itemsOf } from "./api.js";
import { renderErrorGroups } from "./error-groups.js";
import { fillFlows } from "./flows.js";
import { badge, every, explain, h, notice, startPage, time } from "./page.js";

const REFRESH_MS = 5000;
const WATCH_MS = 1000;
const FINAL = new Set(["succeeded", "dead", "skipped", "cancelled"]);

let cursor = null;
let paging = false;
const selected = new Set();
// Replayed runs followed on this page: id → latest run.
const replayed = new Map();
let refresh = () => {};

startPage("dead-letters", async () => {
  const form = document.getElementById("filters");
  await fillFlows(form.elements.flow, new URLSearchParams(location.search).get("flow"));
  form.elements.flow.addEventListener("change", () => {
    const flow = form.elements.flow.value;
    history.replaceState(null, "", `${location.pathname}${flow ? `?flow=${encodeURIComponent(flow)}` : ""}`);
    selected.clear();
    paging = false;
    refresh();
  });
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("#dead tbody input[type=checkbox]")) {
      box.checked = event.target.checked;
      toggle(box.value, box.checked);
    }
  });
  document.getElementById("replay-selected").addEventListener("click", () => replay([...selected]));
  document.getElementById("replay-all").addEventListener("click", () => {
    const ids = [...document.querySelectorAll("#dead tbody tr[data-run]")].map((tr) => tr.dataset.run);
    if (ids.length && confirm(`Replay all ${ids.length} dead letters shown?`)) replay(ids);
  });
  document.getElementById("more").addEventListener("click", async () => {
    paging = true;
    await load(cursor, true);
  });
  refresh = every(REFRESH_MS, async () => {
    if (!paging) await load(null, false);
  });
  every(WATCH_MS, watch);
});

function flow() {
  return document.getElementById("filters").elements.flow.value;
}

async function load(from, append) {
  if (!append) {
    await renderErrorGroups(document.getElementById("groups"), {
      status: "dead",
      flow: flow(),
      fromStart: () => document.getElementById("from-start").checked,
      onReplayed: (ids) => {
        for (const id of ids) replayed.set(id, { id, status: "queued", flow: "", error: null });
        renderReplayed();
        refresh();
      },
    });
  }
  const query = new URLSearchParams({ limit: "50" });
  if (flow()) query.set("flow", flow());
  if (from) query.set("cursor", from);
  const answer = await api(`/dead-letters?${query}`);
  notice("");
  const runs = itemsOf(answer);
  const shown = new Set(runs.map((r) => r.id));
  // A selection only holds runs still dead and shown.
  if (!append) for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
  const rows = runs.map(row);
  const body = document.querySelector("#dead tbody");
  if (append) body.append(...rows);
  else
    body.replaceChildren(
      ...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 6 }, "No dead letters. All is well."))]),
    );
  cursor = answer.next_cursor || null;
  document.getElementById("more").hidden = !cursor;
  updateButtons();
}

function row(run) {
  return h(
    "tr",
    { "data-run": run.id },
    h(
      "td",
      {},
      h("input", {
        type: "checkbox",
        value: run.id,
        "aria-label": `Select run ${run.id}`,
        checked: selected.has(run.id),
        onchange: (event) => toggle(run.id, event.target.checked),
      }),
    ),
    h("td", { class: "mono" }, h("a", { href: `/ui/runs/${run.id}` }, run.id.slice(0, 8) + "…" + run.id.slice(-4))),
    h("td", {}, run.flow),
    h("td", { class: "error" }, run.error || ""),
    h("td", { class: "num" }, run.retries),
    h("td", {}, time(run.finished_at || run.updated_at)),
  );
}

function toggle(id, on) {
  if (on) selected.add(id);
  else selected.delete(id);
  updateButtons();
}

function updateButtons() {
  const button = document.getElementById("replay-selected");
  button.disabled = selected.size === 0;
  button.textContent = selected.size ? `Replay selected (${selected.size})` : "Replay selected";
}

async function replay(ids) {
  if (!ids.length) return;
  const fromStart = document.getElementById("from-start").checked;
  try {
    const answer = await api("/dead-letters/replay", { method: "POST", body: { ids, from_start: fromStart } });
    const done = answer.replayed || [];
    for (const id of done) {
      replayed.set(id, { id, status: "queued", flow: "", error: null });
      selected.delete(id);
    }
    const skipped = ids.length - done.length;
    notice(
      `Replayed ${done.length} run${done.length === 1 ? "" : "s"}` +
        (skipped ? `; ${skipped} had already left the dead letters` : "") +
        ". Their progress is shown below.",
      "ok",
    );
    document.getElementById("select-all").checked = false;
    renderReplayed();
    await refresh();
  } catch (e) {
    notice(explain(e), "error");
  }
}

// Follows replayed runs until each has ended.
async function watch() {
  const pending = [...replayed.values()].filter((run) => !FINAL.has(run.status));
  if (!pending.length) return;
  await Promise.all(
    pending.map(async (run) => {
      const { run: latest } = await api(`/runs/${encodeURIComponent(run.id)}`);
      replayed.set(run.id, latest);
    }),
  );
  renderReplayed();
}

function renderReplayed() {
  document.getElementById("replayed-section").hidden = replayed.size === 0;
  const rows = [...replayed.values()].map((run) =>
    h(
      "tr",
      { "data-run": run.id, "data-status": run.status },
      h("td", { class: "mono" }, h("a", { href: `/ui/runs/${run.id}` }, run.id)),
      h("td", {}, run.flow),
      h("td", {}, badge(run.status)),
      h("td", { class: "error" }, run.error || ""),
    ),
  );
  document.querySelector("#replayed tbody").replaceChildren(...rows);
}
