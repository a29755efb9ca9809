// Errors grouped (GET /api/v1/errors): runs of one flow that failed the
// same way, one row per group with its count, its class and its newest
// run; a group of dead runs can be replayed at once.

import { api, itemsOf } from "./api.js";
import { explain, h, notice, time } from "./page.js";

// Draws the groups of runs in `status` (of `flow`) into `box`. With
// `onReplayed`, each group of dead runs gets a replay button that calls it
// with the ids replayed.
export async function renderErrorGroups(box, { status = "dead", flow = "", fromStart = () => false, onReplayed } = {}) {
  const query = new URLSearchParams({ status });
  if (flow) query.set("flow", flow);
  const groups = itemsOf(await api(`/errors?${query}`));
  if (!groups.length) {
    box.replaceChildren();
    return;
  }
  const rows = groups.map((g) => {
    const runs = new URLSearchParams({ flow: g.flow, status, q: g.error });
    return h(
      "tr",
      { "data-group-flow": g.flow, "data-count": g.count },
      h("td", { class: "num" }, g.count),
      h("td", {}, g.flow),
      h("td", { class: "mono" }, g.class || "–"),
      h("td", { class: "error-text" }, g.error),
      h("td", {}, h("a", { href: `/ui/runs/${g.latest_run}`, class: "mono" }, time(g.latest_at))),
      h(
        "td",
        {},
        h("a", { href: `/ui/runs?${runs}` }, "Show runs"),
        onReplayed && status === "dead"
          ? [
              " ",
              h(
                "button",
                {
                  type: "button",
                  class: "replay-group",
                  onclick: async (event) => {
                    event.target.disabled = true;
                    try {
                      const answer = await api("/dead-letters/replay", {
                        method: "POST",
                        body: { flow: g.flow, error: g.error, from_start: fromStart() },
                      });
                      notice(`Replayed ${answer.replayed.length} run(s) of this group.`, "ok");
                      onReplayed(answer.replayed);
                    } catch (e) {
                      notice(explain(e), "error");
                      event.target.disabled = false;
                    }
                  },
                },
                `Replay ${g.count}`,
              ),
            ]
          : null,
      ),
    );
  });
  box.replaceChildren(
    h("h2", {}, "Errors, grouped"),
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Errors, grouped", tabindex: "0" },
      h(
        "table",
        { id: "error-groups" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { class: "num", scope: "col" }, "Runs"),
            h("th", { scope: "col" }, "Flow"),
            h("th", { scope: "col" }, "Class"),
            h("th", { scope: "col" }, "Error"),
            h("th", { scope: "col" }, "Newest"),
            h("th", { scope: "col" }, ""),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}
