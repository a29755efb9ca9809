// Every flow: its trigger and steps, each linking to its picture.

import { api, itemsOf } from "./api.js";
import { every, h, startPage } from "./page.js";

startPage("flows", () => {
  every(10_000, load);
});

function trigger(t) {
  const setting = t.path || t.cron || t.subject || t.stream || t.queue || t.topic || t.event || "";
  return `${t.kind}${setting ? ` ${setting}` : ""}`;
}

async function load() {
  const flows = itemsOf(await api("/flows?limit=500"));
  const rows = flows.map((flow) =>
    h(
      "tr",
      { "data-flow": flow.name },
      h("td", {}, h("a", { href: `/ui/flows/${encodeURIComponent(flow.name)}` }, flow.name)),
      h("td", { class: "mono" }, trigger(flow.trigger)),
      h("td", {}, flow.steps.map((s) => s.id).join(" → ")),
    ),
  );
  document
    .querySelector("#flows tbody")
    .replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No flows."))]));
}
