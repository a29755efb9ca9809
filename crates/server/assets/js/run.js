// One run: its facts, a timeline of every journalled step attempt (with the
// request summary, output and error as the journal holds them), and the
// actions its status allows. Refreshes until the run has ended.

import { api } from "./api.js";
import { drawFlow } from "./graph.js";
import { badge, duration, every, explain, h, json, notice, startPage, time } from "./page.js";

const REFRESH_MS = 2000;
const FINAL = new Set(["succeeded", "dead", "skipped", "cancelled"]);

const id = decodeURIComponent(location.pathname.split("/").pop());
// Details a person opened stay open across refreshes.
const opened = new Set();
let ended = false;

startPage("run", () => {
  document.getElementById("title").textContent = id;
  every(REFRESH_MS, async () => {
    if (!ended) await load();
  });
});

async function load() {
  const { run, journal, input_edits: edits = [] } = await api(`/runs/${encodeURIComponent(id)}`);
  ended = FINAL.has(run.status);
  document.title = `${run.flow} ${run.status} · Patchbay`;
  document.body.dataset.status = run.status;
  document.getElementById("status").replaceChildren(badge(run.status));
  renderActions(run);
  renderFacts(run, journal);
  renderTimeline(run, journal);
  try {
    await drawFlow(document.getElementById("path"), run.flow, run.id);
  } catch (e) {
    // A run of a flow no longer configured has no picture; the rest stands.
    document.getElementById("path").replaceChildren(h("p", { class: "muted" }, explain(e)));
  }
  document.getElementById("input").replaceChildren(json(run.input));
  renderInputEditor(run);
  renderInputEdits(edits);
  document
    .getElementById("output")
    .replaceChildren(run.output === null || run.output === undefined ? h("p", { class: "muted" }, "none") : json(run.output));
}

function renderActions(run) {
  const buttons = [];
  if (run.status === "dead") {
    buttons.push(
      h("button", { class: "primary", type: "button", id: "replay", onclick: () => act("replay", {}) }, "Replay"),
      h(
        "button",
        { type: "button", id: "replay-from-start", onclick: () => act("replay", { from_start: true }) },
        "Replay from the start",
      ),
    );
  }
  if (run.status === "queued" || run.status === "running") {
    buttons.push(h("button", { type: "button", id: "cancel", onclick: () => act("cancel") }, "Cancel"));
  }
  buttons.push(h("a", { href: `/ui/runs?flow=${encodeURIComponent(run.flow)}` }, `Other runs of ${run.flow}`));
  document.getElementById("run-actions").replaceChildren(...buttons);
}

async function act(action, body) {
  try {
    await api(`/runs/${encodeURIComponent(id)}/${action}`, { method: "POST", body });
    notice(action === "replay" ? "Replayed: the run is queued again." : "Cancelled.", "ok");
    ended = false;
    await load();
  } catch (e) {
    notice(explain(e), "error");
  }
}

// A dead run can be replayed with a corrected input: its input as editable
// JSON, checked before it is sent. Drawn once per dead spell, so a person's
// edits survive a refresh.
function renderInputEditor(run) {
  const box = document.getElementById("input-editor");
  if (run.status !== "dead") {
    box.replaceChildren();
    return;
  }
  if (box.childElementCount) return;
  const editor = h("textarea", {
    id: "edited-input",
    class: "mono",
    rows: 8,
    spellcheck: "false",
    "aria-describedby": "edited-input-problem",
  });
  editor.value = JSON.stringify(run.input, null, 2);
  const problem = h("p", { id: "edited-input-problem", class: "error-text", role: "status" });
  const send = async () => {
    let input;
    try {
      input = JSON.parse(editor.value);
    } catch (e) {
      problem.textContent = `Not valid JSON: ${e.message}`;
      editor.setAttribute("aria-invalid", "true");
      return;
    }
    problem.textContent = "";
    editor.removeAttribute("aria-invalid");
    box.replaceChildren();
    await act("replay", { input });
  };
  box.replaceChildren(
    h(
      "details",
      { class: "panel", id: "edit-input" },
      h("summary", {}, "Replay with an edited input"),
      h(
        "p",
        { class: "muted" },
        "The run starts over with this input instead of its own; the input it had stays on record.",
      ),
      h("label", { for: "edited-input" }, "Input (JSON)"),
      editor,
      problem,
      h("button", { type: "button", class: "primary", id: "replay-edited", onclick: send }, "Replay with this input"),
    ),
  );
}

// The inputs replays with an edited input replaced, oldest first.
function renderInputEdits(edits) {
  const box = document.getElementById("input-edits");
  if (!edits.length) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    h("h3", {}, "Earlier inputs"),
    ...edits.map((edit) =>
      h(
        "div",
        { class: "input-edit" },
        h("p", { class: "muted" }, `Replaced ${time(edit.edited_at)}`),
        json(edit.previous),
      ),
    ),
  );
}

function renderFacts(run, journal) {
  const facts = [
    ["Flow", run.flow],
    ["Status", badge(run.status)],
    ["Trigger", run.trigger],
    ["Created", time(run.created_at)],
    ["Ended", run.finished_at ? time(run.finished_at) : "not yet"],
    ["Took", run.finished_at ? duration(Date.parse(run.finished_at) - Date.parse(run.created_at)) : ""],
    ["Attempts", `${run.attempts} (rescheduled ${run.retries} times)`],
    ["Steps journalled", journal.length],
    ["Config version", h("span", { class: "mono" }, run.config_version)],
  ];
  // A run parked by a `wait` step (its latest entry holds the instant) or
  // by a `run_flow` step waiting for its child says so.
  const last = journal.filter((e) => e.current).at(-1);
  const until = last && last.output && typeof last.output.until === "string" ? last.output.until : null;
  const child = last && last.output && typeof last.output.run_id === "string" ? last.output.run_id : null;
  if (run.status === "queued" && until && Date.parse(until) > Date.now()) {
    facts.push(["Waiting until", time(until)]);
  } else if (run.status === "queued" && child && run.retries === 0) {
    facts.push(["Waiting for", h("a", { href: `/ui/runs/${child}`, class: "mono" }, `child run ${child}`)]);
  } else if (run.status === "queued" && run.next_attempt_at) {
    facts.push(["Next attempt", time(run.next_attempt_at)]);
  }
  if (run.parent) facts.push(["Parent run", h("a", { href: `/ui/runs/${run.parent}`, class: "mono" }, run.parent)]);
  if (run.error) facts.push(["Error", h("span", { class: "error-text", id: "run-error" }, run.error)]);
  document
    .getElementById("facts")
    .replaceChildren(h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function renderTimeline(run, journal) {
  const box = document.getElementById("timeline");
  if (!journal.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No step has run yet."));
    return;
  }
  // The time axis runs from the first step's start to the last step's end.
  const starts = journal.map((e) => Date.parse(e.started_at));
  const t0 = Math.min(...starts);
  const t1 = Math.max(...journal.map((e, i) => starts[i] + e.duration_ms));
  const span = Math.max(1, t1 - t0);
  const children = [];
  let attempt = null;
  journal.forEach((entry, i) => {
    if (entry.attempt !== attempt) {
      attempt = entry.attempt;
      children.push(h("div", { class: "attempt-head" }, `Attempt ${attempt} · ${time(entry.started_at)}`));
    }
    const key = `${entry.attempt}/${entry.step_index}/${entry.item ?? ""}/${i}`;
    const left = ((starts[i] - t0) / span) * 100;
    const width = (entry.duration_ms / span) * 100;
    const request = entry.request || null;
    const details = h(
      "details",
      {
        class: entry.current === false ? "superseded" : null,
        "data-step": entry.step_id,
        "data-status": entry.status,
        "data-attempt": entry.attempt,
        open: opened.has(key),
        ontoggle: (event) => (event.target.open ? opened.add(key) : opened.delete(key)),
      },
      h(
        "summary",
        {},
        h(
          "span",
          { class: "step" },
          entry.step_id,
          entry.item !== null && entry.item !== undefined ? h("span", { class: "muted" }, ` [item ${entry.item}]`) : null,
          entry.current === false ? h("span", { class: "muted" }, " (superseded)") : null,
        ),
        badge(entry.status),
        h(
          "span",
          { class: "track", title: `started ${time(entry.started_at)}` },
          h("span", { class: `bar ${entry.status}`, style: null, "data-left": left, "data-width": width }),
        ),
        h("span", { class: "num" }, duration(entry.duration_ms)),
      ),
      h(
        "div",
        { class: "body" },
        request
          ? [
              h(
                "p",
                {},
                h("strong", {}, "Request "),
                h("span", { class: "mono" }, `${request.method || ""} ${request.url || ""}`),
                request.status ? ` → ${request.status}` : "",
                request.attempts > 1 ? h("span", { class: "muted" }, ` after ${request.attempts} HTTP attempts`) : "",
              ),
              json(request),
            ]
          : null,
        entry.error
          ? [
              h(
                "p",
                {},
                h("strong", {}, "Error"),
                entry.error_class ? h("span", { class: "muted mono" }, ` (${entry.error_class})`) : "",
              ),
              h("div", { class: "error-text" }, entry.error),
            ]
          : null,
        entry.output !== null && entry.output !== undefined ? [h("p", {}, h("strong", {}, "Output")), json(entry.output)] : null,
      ),
    );
    children.push(details);
  });
  box.replaceChildren(...children);
  // Bars are placed through the CSSOM: the page's policy forbids style
  // attributes in markup.
  for (const bar of box.querySelectorAll(".bar")) {
    bar.style.left = `${Math.min(99, Number(bar.dataset.left))}%`;
    bar.style.width = `${Math.max(0.5, Number(bar.dataset.width))}%`;
  }
}
