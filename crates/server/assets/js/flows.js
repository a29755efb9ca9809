// The flow picker shared by the filter forms.

import { api, itemsOf } from "./api.js";
import { h } from "./page.js";

// Adds every configured flow to `select` and selects `chosen`.
export async function fillFlows(select, chosen) {
  const flows = itemsOf(await api("/flows"));
  for (const flow of flows) select.append(h("option", { value: flow.name }, flow.name));
  if (chosen) {
    if (![...select.options].some((o) => o.value === chosen)) select.append(h("option", { value: chosen }, chosen));
    select.value = chosen;
  }
}
