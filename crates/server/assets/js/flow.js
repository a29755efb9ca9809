// One flow as a picture: trigger, steps, fan-outs, fallbacks and branches,
// with each step's attempts of the last hour. Refreshes every 10 s.

import { explain, every, h, notice, startPage } from "./page.js";
import { drawFlow } from "./graph.js";

const name = decodeURIComponent(location.pathname.split("/").pop());

startPage("flows", () => {
  document.getElementById("title").textContent = name;
  document.title = `${name} · Patchbay`;
  document.getElementById("runs-link").replaceChildren(
    h("a", { href: `/ui/runs?flow=${encodeURIComponent(name)}` }, `Runs of ${name}`),
  );
  every(10_000, async () => {
    try {
      await drawFlow(document.getElementById("graph"), name);
    } catch (e) {
      notice(explain(e), "error");
    }
  });
});
