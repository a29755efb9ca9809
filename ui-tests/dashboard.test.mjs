// The dashboard in a real browser, against a running Patchbay node: the
// same test body in Debian's chromium and firefox-esr (see browser.mjs),
// at a desktop or a phone's viewport. On every page it takes a screenshot
// and runs axe-core, and checks nothing makes the whole page scroll
// sideways.
//
// The node, its project and the mock upstreams are started by the Rust
// test crates/cli/tests/it/dashboard.rs, which passes them in:
//   PATCHBAY_URL           the node, e.g. http://127.0.0.1:41234
//   PATCHBAY_TOKEN         an API token (empty when the API is open)
//   PATCHBAY_WEBHOOK       the URL of the `order` flow's webhook
//   PATCHBAY_REMIND        the URL of the `remind` flow's webhook (it waits an hour)
//   PATCHBAY_RELAY         the URL of the `relay` flow's webhook (a chat call, then a step)
//   PATCHBAY_DEMO_URL      a second node serving the demo project (examples/demo)
//   PATCHBAY_MOCK_CONTROL  POST {this}/fail makes the chat upstream answer 400,
//                          POST {this}/fix makes it answer 200 again
//   PATCHBAY_SCREENSHOTS   folder for the screenshots, named BROWSER-WxH-NN-page.png
//   BROWSER                chromium (default) or firefox
//   VIEWPORT               WIDTHxHEIGHT in CSS pixels (default 1400x900)
//   CHROMIUM, CHROMEDRIVER the browser and its driver (default /usr/bin/chromium,
//                          /usr/bin/chromedriver)
//   FIREFOX, GECKODRIVER   likewise (default /usr/bin/firefox-esr, geckodriver on PATH)
//
// Run by hand: node --test dashboard.test.mjs (with those variables set).

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";

import { launch } from "./browser.mjs";

const BASE = required("PATCHBAY_URL");
const TOKEN = process.env.PATCHBAY_TOKEN || "";
const WEBHOOK = required("PATCHBAY_WEBHOOK");
const CONTROL = required("PATCHBAY_MOCK_CONTROL");
const REMIND = required("PATCHBAY_REMIND");
const RELAY = required("PATCHBAY_RELAY");
const DEMO = required("PATCHBAY_DEMO_URL");
const SHOTS = process.env.PATCHBAY_SCREENSHOTS || path.resolve("..", "target", "ui-screenshots");
const BROWSER = process.env.BROWSER || "chromium";
const VIEWPORT = process.env.VIEWPORT || "1400x900";
const [WIDTH, HEIGHT] = VIEWPORT.split("x").map(Number);
assert.ok(WIDTH > 0 && HEIGHT > 0, `VIEWPORT=${VIEWPORT} is not WIDTHxHEIGHT`);

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; see the top of this file`);
  return value;
}

let page;
// Per page looked at: axe's serious and critical findings, and what made
// the page wider than the viewport.
const inaccessible = [];
const overflowing = [];

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  page = await launch(BROWSER, { width: WIDTH, height: HEIGHT });
});

after(async () => {
  await page?.close();
});

// Looks at the page as it is now: a screenshot, axe, and its width.
async function look(t, name) {
  await page.screenshot(path.join(SHOTS, `${BROWSER}-${VIEWPORT}-${name}.png`));
  for (const v of await page.axe()) {
    const line = `${name}: ${v.impact} ${v.id} (${v.help}): ${v.nodes.join("; ")}`;
    if (v.impact === "serious" || v.impact === "critical") inaccessible.push(line);
    else t.diagnostic(`axe, ${line}`);
  }
  const wide = await page.overflow();
  if (wide.length) overflowing.push(`${name}: ${wide.join(", ")}`);
}

async function sendOrder(amount, url = WEBHOOK) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ amount }),
  });
  assert.equal(response.status, 202, `webhook answered ${response.status}`);
  const { run_id: id } = await response.json();
  assert.ok(id, "the webhook answer names the run");
  return id;
}

async function control(action) {
  const response = await fetch(`${CONTROL}/${action}`, { method: "POST" });
  assert.equal(response.status, 200, `mock control ${action} answered ${response.status}`);
}

test(`the dashboard follows a run, a dead letter and its replay (${BROWSER}, ${VIEWPORT})`, async (t) => {
  let ok;
  let dead;
  let relayed;

  await t.test("the token in the URL fragment is kept for the tab and removed from the URL", async (t) => {
    await page.goto(`${BASE}/ui${TOKEN ? `#token=${encodeURIComponent(TOKEN)}` : ""}`);
    await page.waitFor('[data-chart="runs-started"]');
    assert.equal(new URL(await page.url()).hash, "", "the fragment is stripped");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("patchbay.token")), TOKEN || null);
    await look(t, "01-overview-empty");
  });

  await t.test("errors and CSP violations of a page are heard", async () => {
    // The check at the end is only worth something if this browser reports
    // both kinds: provoke one of each from the page itself.
    const before = page.problems.length;
    await page.evaluate(() => {
      const probe = document.createElement("button");
      probe.id = "probe";
      probe.addEventListener("click", () => {
        throw new Error("probe: uncaught");
      });
      document.body.append(probe);
      probe.click();
      const style = document.createElement("style");
      style.textContent = "#probe { color: red }";
      document.head.append(style);
      probe.remove();
    });
    const heard = () => page.problems.slice(before).join("\n");
    for (let i = 0; i < 50 && !(/probe: uncaught/.test(heard()) && /CSP/.test(heard())); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(heard(), /probe: uncaught/, "the page error was heard");
    assert.match(heard(), /CSP/, "the CSP violation was heard");
    // Firefox also reports the violation in words of its own, a moment later.
    await new Promise((resolve) => setTimeout(resolve, 500));
    page.problems.splice(before);
  });

  await t.test("the navigation reaches every page", async () => {
    for (const nav of ["flows", "runs", "dead-letters", "connectors", "overview"]) {
      await page.click(`header nav a[data-nav="${nav}"]`);
      await page.waitFor(`body[data-page="${nav}"] header nav a[data-nav="${nav}"][aria-current="page"]`);
    }
  });

  await t.test("a webhook's run appears in the runs list and its steps on its page", async (t) => {
    ok = await sendOrder(100);
    await page.goto(`${BASE}/ui/runs`);
    const row = `#runs tr[data-run="${ok}"][data-status="succeeded"]`;
    await page.waitFor(row);
    await look(t, "02-runs");

    await page.click(`${row} a`);
    await page.waitUntil("the run's page", (id) => location.pathname === `/ui/runs/${id}`, ok);
    await page.waitFor('body[data-status="succeeded"]');
    const steps = await page.evaluate(() =>
      [...document.querySelectorAll("#timeline details")].map((e) => [e.dataset.step, e.dataset.status]),
    );
    assert.deepEqual(steps, [
      ["charge", "succeeded"],
      ["notify", "succeeded"],
    ]);
    // The journal's request summary and output, one click away.
    await page.click('#timeline details[data-step="charge"] summary');
    const body = '#timeline details[data-step="charge"] .body';
    await page.waitFor(body, "POST");
    assert.match(await page.text(body), /\/charges/);
    assert.match(await page.text(body), /ch_1/);
    await look(t, "03-run");
  });

  await t.test("runs filter by status", async () => {
    await page.goto(`${BASE}/ui/runs?status=dead`);
    await page.waitFor("#runs td.empty");
    assert.equal(await page.count(`#runs tr[data-run="${ok}"]`), 0);
  });

  await t.test("a run failing upstream becomes a dead letter, shown with its error", async (t) => {
    await control("fail");
    dead = await sendOrder(200);
    await page.goto(`${BASE}/ui/dead-letters`);
    const row = `#dead tr[data-run="${dead}"]`;
    await page.waitFor(row);
    assert.match(await page.text(`${row} td.error`), /400/);
    // The same error, grouped with its count and class.
    const group = '#error-groups tr[data-group-flow="order"]';
    await page.waitFor(group, "client_error");
    assert.equal(await page.attribute(group, "data-count"), "1");
    await look(t, "04-dead-letters");

    await page.goto(`${BASE}/ui/runs/${dead}`);
    await page.waitFor('body[data-status="dead"]');
    const failed = '#timeline details[data-step="notify"][data-status="failed"]';
    await page.waitFor(failed);
    assert.match(await page.text("#run-error"), /400/);
    // The failed attempt names its class, beside the error's wording.
    await page.click(`${failed} summary`);
    await page.waitFor(`${failed} .body`, "(client_error)");
    await look(t, "05-dead-run");
  });

  await t.test("a run's path marks the step that failed and those never reached", async (t) => {
    relayed = await sendOrder(5, RELAY);
    await page.goto(`${BASE}/ui/runs/${relayed}`);
    await page.waitFor('body[data-status="dead"]');
    await page.waitFor('#path svg g[data-step="post"].mark-failed');
    await page.waitFor('#path svg g[data-step="after"].mark-not-reached');
    await look(t, "05a-run-path");
  });

  await t.test("a run parked by a wait step says until when", async (t) => {
    const waiting = await sendOrder(1, REMIND);
    await page.goto(`${BASE}/ui/runs/${waiting}`);
    await page.waitFor('body[data-status="queued"]');
    await page.waitFor("#facts dt", "Waiting until");
    await look(t, "05b-waiting-run");
  });

  await t.test("once the upstream is fixed, replaying from the dashboard makes it succeed", async (t) => {
    await control("fix");
    await page.goto(`${BASE}/ui/dead-letters`);
    const row = `#dead tr[data-run="${dead}"]`;
    await page.waitFor(row);
    const box = `${row} input[type="checkbox"]`;
    await page.click(box);
    assert.equal(await page.evaluate((sel) => document.querySelector(sel).checked, box), true);
    assert.equal(await page.enabled("#replay-selected"), true);
    await page.click("#replay-selected");
    await page.waitFor(`#replayed tr[data-run="${dead}"][data-status="succeeded"]`);
    await page.waitGone(row);
    await look(t, "06-replayed");

    await page.goto(`${BASE}/ui/runs/${dead}`);
    await page.waitFor('body[data-status="succeeded"]');
  });

  await t.test("a dead run replayed with an edited input succeeds and keeps both inputs", async (t) => {
    await page.goto(`${BASE}/ui/runs/${relayed}`);
    await page.waitFor('body[data-status="dead"]');
    await page.click("#edit-input summary");
    await page.fill("#edited-input", "{ amount: 6");
    await page.click("#replay-edited");
    await page.waitFor("#edited-input-problem", "Not valid JSON");
    assert.equal(await page.attribute("#edited-input", "aria-invalid"), "true");
    await look(t, "06a-edit-input");
    await page.fill("#edited-input", '{"amount": 6, "edited": true}');
    await page.click("#replay-edited");
    await page.waitFor('body[data-status="succeeded"]');
    await page.waitFor("#input-edits", "Earlier inputs");
    await page.waitFor('#path svg g[data-step="after"].mark-done');
    const response = await fetch(`${BASE}/api/v1/runs/${relayed}`, {
      headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {},
    });
    const { run, input_edits: edits } = await response.json();
    assert.deepEqual(run.input, { amount: 6, edited: true });
    assert.deepEqual(
      edits.map((e) => e.previous),
      [{ amount: 5 }],
      "the journal keeps the first input",
    );
    await look(t, "06b-edited-replay");
  });

  await t.test("every flow is drawn as a picture", async (t) => {
    await page.goto(`${BASE}/ui/flows`);
    for (const flow of ["order", "remind", "relay"]) await page.waitFor(`#flows tr[data-flow="${flow}"]`);
    await look(t, "09-flows");
    await page.click('#flows tr[data-flow="order"] a');
    await page.waitUntil("the flow's page", () => location.pathname === "/ui/flows/order");
    await page.waitFor('#graph svg g.node.trigger');
    await page.waitFor('#graph svg g[data-step="charge"]', "last hour");
    await page.waitFor('#graph svg g[data-step="notify"]');
    await look(t, "10-flow-order");
  });

  await t.test("every flow of the demo project is drawn", async (t) => {
    await page.goto(`${DEMO}/ui/flows`);
    await page.waitFor("#flows tr[data-flow]");
    const flows = await page.evaluate(() => [...document.querySelectorAll("#flows tr[data-flow]")].map((r) => r.dataset.flow));
    assert.ok(flows.length >= 5, `the demo has its flows: ${flows}`);
    for (const flow of flows) {
      await page.goto(`${DEMO}/ui/flows/${encodeURIComponent(flow)}`);
      await page.waitFor("#graph svg g.node.trigger");
      assert.ok((await page.count("#graph svg g[data-step]")) >= 1, `${flow} has steps`);
      await look(t, `11-demo-flow-${flow}`);
    }
  });

  await t.test("the connectors page shows each upstream's breaker and calls", async (t) => {
    await page.goto(`${BASE}/ui/connectors`);
    for (const name of ["payments", "chat"]) {
      await page.waitFor(`#connectors tr[data-connector="${name}"]`);
    }
    const chat = '#connectors tr[data-connector="chat"]';
    assert.ok(await page.attribute(chat, "data-breaker"), "the breaker state is shown");
    // Chat keeps a breaker per endpoint: the list counts them (and would
    // name any not closed).
    await page.waitFor(`${chat} .keyed-breakers`);
    assert.match(await page.text(`${chat} .keyed-breakers`), /\d+ keys?, \d+ closed/);
    // Chat pins a version, its replies lack a field its spec requires, and it
    // announces a sunset.
    await page.waitFor(`${chat} [data-api-version="2024-06-20"]`);
    await page.waitFor(`${chat} [data-drift]`);
    const sunset = `${chat} [data-sunset]`;
    await page.waitFor(sunset);
    assert.match(await page.text(sunset), /sunset 2026-11-11/);
    assert.equal(await page.attribute(`${sunset} a`, "href"), "https://chat.example.com/changelog");
    await look(t, "07-connectors");
  });

  await t.test("the overview charts draw the runs and calls of the last hour", async (t) => {
    await page.goto(`${BASE}/ui`);
    for (const chart of ["runs-started", "connector-calls"]) {
      const panel = `[data-chart="${chart}"]`;
      await page.waitUntil(
        `points in ${chart}`,
        (sel) => Number(document.querySelector(sel)?.dataset.points) > 0,
        panel,
      );
      assert.equal(await page.count(`${panel} canvas`), 1, `${chart} has a uPlot canvas`);
      assert.ok(Number(await page.attribute(panel, "data-series")) >= 1);
    }
    // Every chart is drawn, with or without points.
    assert.equal(await page.count("[data-chart] canvas"), 6);
    const started = await page.text('#flow-summary tr[data-flow="order"] td:nth-child(2)');
    assert.equal(Number(started), 2, "both orders counted");
    // Where every started run is now: the remind run waits (queued).
    assert.equal(Number(await page.text('#flow-summary tr[data-flow="remind"] td[data-queue="queued"]')), 1);
    // Breakers and headroom beside the connectors' calls.
    await page.waitFor('#connector-summary tr[data-connector="chat"] [data-status]');
    // The window is chosen by activity, and can be chosen by hand.
    assert.ok(await page.attribute("body", "data-window"));
    await page.click('#window-switch a[data-window="24h"]');
    await page.waitFor('body[data-window="24h"]');
    await page.waitFor("#window", "last 24 hours");
    // The node serving the page reported itself and, alone, leads.
    const node = '#nodes tr[data-alive="true"][data-leader="true"]';
    await page.waitFor(node);
    assert.match(await page.text(node), /this node/);
    assert.match(await page.text(node), /127\.0\.0\.1:\d+/);
    assert.equal(await page.count("#nodes tbody tr"), 1);
    await look(t, "08-overview");
  });

  if (TOKEN) {
    await t.test("signed out, the dashboard asks for a token, and works once given", async (t) => {
      await page.goto(`${BASE}/ui/runs`);
      await page.click("#session button");
      const input = '#login input[name="token"]';
      await page.waitFor(input);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("patchbay.token")), null);
      await look(t, "09-login");
      await page.fill(input, TOKEN);
      await page.click('#login button[type="submit"]');
      await page.waitFor(`#runs tr[data-run="${ok}"]`);
    });
  }

  await t.test("an unknown page says so", async (t) => {
    await page.goto(`${BASE}/ui/no-such-page`);
    await page.waitFor("main h1", "Not found");
    await look(t, "10-not-found");
  });

  await t.test("no page raised an error or broke its content security policy", () => {
    // The login check above provokes 401s on purpose; a browser may log those.
    const real = page.problems.filter((p) => !/401 \(Unauthorized\)/.test(p));
    assert.deepEqual(real, []);
  });

  await t.test("axe finds nothing serious or critical on any page", () => {
    assert.deepEqual(inaccessible, []);
  });

  await t.test("no page is wider than the viewport", () => {
    assert.deepEqual(overflowing, []);
  });
});
