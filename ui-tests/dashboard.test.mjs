// The dashboard in a real browser: Debian's chromium, driven through
// playwright-core by node's test runner, against a running Patchbay node.
//
// The node, its project and the mock upstreams are started by the Rust
// test crates/cli/tests/it/dashboard.rs, which passes them in:
//   PATCHBAY_URL           the node, e.g. http://127.0.0.1:41234
//   PATCHBAY_TOKEN         an API token (empty when the API is open)
//   PATCHBAY_WEBHOOK       the URL of the `order` flow's webhook
//   PATCHBAY_REMIND        the URL of the `remind` flow's webhook (it waits an hour)
//   PATCHBAY_MOCK_CONTROL  POST {this}/fail makes the chat upstream answer 400,
//                          POST {this}/fix makes it answer 200 again
//   PATCHBAY_SCREENSHOTS   folder for a screenshot of every page
//   CHROMIUM               the browser (default /usr/bin/chromium)
//
// Run by hand: node --test dashboard.test.mjs (with those variables set).

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

const BASE = required("PATCHBAY_URL");
const TOKEN = process.env.PATCHBAY_TOKEN || "";
const WEBHOOK = required("PATCHBAY_WEBHOOK");
const CONTROL = required("PATCHBAY_MOCK_CONTROL");
const REMIND = required("PATCHBAY_REMIND");
const SHOTS = process.env.PATCHBAY_SCREENSHOTS || path.resolve("..", "target", "ui-screenshots");
// Pages refresh every few seconds; a condition gets several refreshes.
const WAIT = { timeout: 30_000 };

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; see the top of this file`);
  return value;
}

let browser;
let context;
let page;
// Errors the pages raised or logged (a CSP violation is logged as one).
const problems = [];

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      // Nothing may reach out of this machine: no updates, no sync.
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  page = await watched(context);
});

after(async () => {
  await browser?.close();
});

async function watched(ctx) {
  const p = await ctx.newPage();
  p.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  p.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error on ${p.url()}: ${message.text()}`);
  });
  return p;
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
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

test("the dashboard follows a run, a dead letter and its replay", async (t) => {
  let ok;
  let dead;

  await t.test("the token in the URL fragment is kept for the tab and removed from the URL", async () => {
    await page.goto(`${BASE}/ui${TOKEN ? `#token=${encodeURIComponent(TOKEN)}` : ""}`);
    await page.locator('[data-chart="runs-started"]').waitFor(WAIT);
    assert.equal(new URL(page.url()).hash, "", "the fragment is stripped");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("patchbay.token")), TOKEN || null);
    await shot("01-overview-empty");
  });

  await t.test("a webhook's run appears in the runs list and its steps on its page", async () => {
    ok = await sendOrder(100);
    await page.goto(`${BASE}/ui/runs`);
    const row = page.locator(`#runs tr[data-run="${ok}"][data-status="succeeded"]`);
    await row.waitFor(WAIT);
    await shot("02-runs");

    await row.locator("a").click();
    await page.waitForURL(`**/ui/runs/${ok}`);
    await page.locator('body[data-status="succeeded"]').waitFor(WAIT);
    const steps = page.locator("#timeline details");
    assert.deepEqual(await steps.evaluateAll((els) => els.map((e) => [e.dataset.step, e.dataset.status])), [
      ["charge", "succeeded"],
      ["notify", "succeeded"],
    ]);
    // The journal's request summary and output, one click away.
    await page.locator('#timeline details[data-step="charge"] summary').click();
    const body = page.locator('#timeline details[data-step="charge"] .body');
    await body.getByText("POST").first().waitFor(WAIT);
    assert.match(await body.innerText(), /\/charges/);
    assert.match(await body.innerText(), /ch_1/);
    await shot("03-run");
  });

  await t.test("runs filter by status", async () => {
    await page.goto(`${BASE}/ui/runs?status=dead`);
    await page.locator("#runs td.empty").waitFor(WAIT);
    assert.equal(await page.locator(`#runs tr[data-run="${ok}"]`).count(), 0);
  });

  await t.test("a run failing upstream becomes a dead letter, shown with its error", async () => {
    await control("fail");
    dead = await sendOrder(200);
    await page.goto(`${BASE}/ui/dead-letters`);
    const row = page.locator(`#dead tr[data-run="${dead}"]`);
    await row.waitFor(WAIT);
    assert.match(await row.locator("td.error").innerText(), /400/);
    await shot("04-dead-letters");

    await page.goto(`${BASE}/ui/runs/${dead}`);
    await page.locator('body[data-status="dead"]').waitFor(WAIT);
    const failed = page.locator('#timeline details[data-step="notify"][data-status="failed"]');
    await failed.waitFor(WAIT);
    assert.match(await page.locator("#run-error").innerText(), /400/);
    // The failed attempt names its class, beside the error's wording.
    await failed.locator("summary").click();
    await failed.getByText("(client_error)").waitFor(WAIT);
    await shot("05-dead-run");
  });

  await t.test("a run parked by a wait step says until when", async () => {
    const waiting = await sendOrder(1, REMIND);
    await page.goto(`${BASE}/ui/runs/${waiting}`);
    await page.locator('body[data-status="queued"]').waitFor(WAIT);
    await page.locator("#facts dt", { hasText: "Waiting until" }).waitFor(WAIT);
    await shot("05b-waiting-run");
  });

  await t.test("once the upstream is fixed, replaying from the dashboard makes it succeed", async () => {
    await control("fix");
    await page.goto(`${BASE}/ui/dead-letters`);
    const row = page.locator(`#dead tr[data-run="${dead}"]`);
    await row.waitFor(WAIT);
    await row.locator('input[type="checkbox"]').check();
    const replay = page.locator("#replay-selected");
    assert.equal(await replay.isEnabled(), true);
    await replay.click();
    await page.locator(`#replayed tr[data-run="${dead}"][data-status="succeeded"]`).waitFor(WAIT);
    await row.waitFor({ state: "detached", ...WAIT });
    await shot("06-replayed");

    await page.goto(`${BASE}/ui/runs/${dead}`);
    await page.locator('body[data-status="succeeded"]').waitFor(WAIT);
  });

  await t.test("the connectors page shows each upstream's breaker and calls", async () => {
    await page.goto(`${BASE}/ui/connectors`);
    for (const name of ["payments", "chat"]) {
      await page.locator(`#connectors tr[data-connector="${name}"]`).waitFor(WAIT);
    }
    const chat = page.locator('#connectors tr[data-connector="chat"]');
    assert.ok(await chat.getAttribute("data-breaker"), "the breaker state is shown");
    // Chat pins a version, its replies lack a field its spec requires, and it
    // announces a sunset.
    await chat.locator('[data-api-version="2024-06-20"]').waitFor(WAIT);
    await chat.locator("[data-drift]").waitFor(WAIT);
    const sunset = chat.locator("[data-sunset]");
    await sunset.waitFor(WAIT);
    assert.match(await sunset.innerText(), /sunset 2026-11-11/);
    assert.equal(await sunset.locator("a").getAttribute("href"), "https://chat.example.com/changelog");
    await shot("07-connectors");
  });

  await t.test("the overview charts draw the runs and calls of the last hour", async () => {
    await page.goto(`${BASE}/ui`);
    for (const chart of ["runs-started", "connector-calls"]) {
      const panel = page.locator(`[data-chart="${chart}"]`);
      await page.waitForFunction(
        (id) => Number(document.querySelector(`[data-chart="${id}"]`)?.dataset.points) > 0,
        chart,
        WAIT,
      );
      assert.equal(await panel.locator("canvas").count(), 1, `${chart} has a uPlot canvas`);
      assert.ok(Number(await panel.getAttribute("data-series")) >= 1);
    }
    // Every chart is drawn, with or without points.
    assert.equal(await page.locator("[data-chart] canvas").count(), 6);
    const started = await page.locator('#flow-summary tr[data-flow="order"] td').nth(1).innerText();
    assert.equal(Number(started), 2, "both orders counted");
    // The node serving the page reported itself and, alone, leads.
    const node = page.locator('#nodes tr[data-alive="true"][data-leader="true"]');
    await node.waitFor(WAIT);
    assert.match(await node.innerText(), /this node/);
    assert.match(await node.innerText(), /127\.0\.0\.1:\d+/);
    assert.equal(await page.locator("#nodes tbody tr").count(), 1);
    await shot("08-overview");
  });

  if (TOKEN) {
    await t.test("without a token the dashboard asks for one, and works once given", async () => {
      const fresh = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      const other = await watched(fresh);
      await other.goto(`${BASE}/ui/runs`);
      const input = other.locator('#login input[name="token"]');
      await input.waitFor(WAIT);
      await other.screenshot({ path: path.join(SHOTS, "09-login.png"), fullPage: true });
      await input.fill(TOKEN);
      await other.locator('#login button[type="submit"]').click();
      await other.locator(`#runs tr[data-run="${ok}"]`).waitFor(WAIT);
      await fresh.close();
    });
  }

  await t.test("no page raised an error or broke its content security policy", () => {
    // The login check above provokes 401s on purpose; the browser logs those.
    const real = problems.filter((p) => !/401 \(Unauthorized\)/.test(p));
    assert.deepEqual(real, []);
  });
});
