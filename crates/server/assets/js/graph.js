// A flow's picture, drawn by the server as SVG (`/api/v1/flows/{flow}/graph`)
// and placed in the page as nodes parsed from it, never as HTML text.

import { apiText } from "./api.js";

// Draws `flow` into `box`; with `run`, the path that run took is marked.
export async function drawFlow(box, flow, run) {
  const query = run ? `?run=${encodeURIComponent(run)}` : "";
  const text = await apiText(`/flows/${encodeURIComponent(flow)}/graph${query}`);
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  if (parsed.querySelector("parsererror")) throw new Error("the flow's picture could not be read");
  box.replaceChildren(document.importNode(parsed.documentElement, true));
}
