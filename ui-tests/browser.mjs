// One way to drive both browsers: WebDriver (selenium-webdriver) with its
// BiDi channel, to Debian's chromium through chromedriver and to Debian's
// firefox-esr through geckodriver. The test body sees only `Page` below, so
// it is written once for every browser.
//
// Nothing here downloads anything: the drivers and browsers are given by
// path, so selenium-webdriver never calls its driver manager.

import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";

import { Builder, By } from "selenium-webdriver";
import chrome from "selenium-webdriver/chrome.js";
import firefox from "selenium-webdriver/firefox.js";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFile(require.resolve("axe-core/axe.min.js"), "utf8");

// Pages refresh every few seconds; a condition gets several refreshes.
export const WAIT_MS = 30_000;

// Runs in every document before its own scripts. A CSP violation is not
// always a log entry of its own (chromium's BiDi reports only console and
// JavaScript entries), so it is turned into a console error here.
const WATCH_CSP = `() => {
  document.addEventListener("securitypolicyviolation", (event) => {
    console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline code"));
  });
}`;

const BROWSERS = {
  chromium(env) {
    const binary = env.CHROMIUM || "/usr/bin/chromium";
    const driver = env.CHROMEDRIVER || "/usr/bin/chromedriver";
    const options = new chrome.Options().setChromeBinaryPath(binary).addArguments(
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      // Nothing may reach out of this machine: no updates, no sync.
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    );
    options.enableBidi();
    return {
      paths: [binary, driver],
      builder: new Builder()
        .forBrowser("chrome")
        .setChromeOptions(options)
        .setChromeService(new chrome.ServiceBuilder(driver)),
    };
  },
  firefox(env) {
    const binary = env.FIREFOX || "/usr/bin/firefox-esr";
    const driver = env.GECKODRIVER || "geckodriver";
    const options = new firefox.Options().setBinary(binary).addArguments("-headless");
    // geckodriver already turns off updates, telemetry and safe browsing;
    // these are the other ways firefox calls home.
    for (const [name, value] of Object.entries({
      "network.captive-portal-service.enabled": false,
      "network.connectivity-service.enabled": false,
      "network.dns.disablePrefetch": true,
      "network.prefetch-next": false,
      "browser.region.network.url": "",
      "services.settings.server": "http://127.0.0.1:9/",
    })) {
      options.setPreference(name, value);
    }
    options.enableBidi();
    return {
      paths: [binary, driver],
      builder: new Builder()
        .forBrowser("firefox")
        .setFirefoxOptions(options)
        .setFirefoxService(new firefox.ServiceBuilder(driver)),
    };
  },
};

const BROWSER_NAMES = Object.keys(BROWSERS);

// Starts `name` with a `width`×`height` viewport; resolves to its Page.
export async function launch(name, { width, height }, env = process.env) {
  const make = BROWSERS[name];
  if (!make) throw new Error(`unknown browser ${name}; one of ${BROWSER_NAMES.join(", ")}`);
  const { paths, builder } = make(env);
  for (const p of paths) {
    if (p.includes("/") && !existsSync(p)) throw new Error(`${name} needs ${p}; scripts/setup-browser installs it`);
  }
  const driver = await builder.build();
  try {
    const bidi = await driver.getBidi();
    const context = await driver.getWindowHandle();
    const page = new Page(name, driver, bidi, context);
    await page.start(width, height);
    return page;
  } catch (e) {
    await driver.quit();
    throw e;
  }
}

export class Page {
  constructor(name, driver, bidi, context) {
    this.name = name;
    this.driver = driver;
    this.bidi = bidi;
    this.context = context;
    // What the pages raised or logged as errors.
    this.problems = [];
  }

  async start(width, height) {
    // The page a log entry came from: the last one navigated to.
    let url = "about:blank";
    this.bidi.on("browsingContext.navigationStarted", (event) => {
      url = event.url;
    });
    this.bidi.on("log.entryAdded", (entry) => {
      if (entry.type === "javascript") this.problems.push(`page error on ${url}: ${entry.text}`);
      else if (entry.level === "error") this.problems.push(`console error on ${url}: ${entry.text}`);
    });
    await this.bidi.subscribe(["log.entryAdded", "browsingContext.navigationStarted"]);
    await this.send("script.addPreloadScript", { functionDeclaration: WATCH_CSP });
    await this.send("browsingContext.setViewport", { context: this.context, viewport: { width, height } });
  }

  async send(method, params) {
    const answer = await this.bidi.send({ method, params });
    if (answer.error) throw new Error(`${this.name}: ${method} failed: ${answer.error}: ${answer.message}`);
    return answer.result;
  }

  async close() {
    await this.driver.quit();
  }

  async goto(url) {
    await this.driver.get(url);
  }

  url() {
    return this.driver.getCurrentUrl();
  }

  // `fn` runs in the page with `args`; its value (or promise's) comes back.
  evaluate(fn, ...args) {
    return this.driver.executeScript(`return (${fn}).apply(null, arguments)`, ...args);
  }

  // Waits until `fn` (run in the page) returns something truthy; returns it.
  async waitUntil(what, fn, ...args) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const value = await this.evaluate(fn, ...args);
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`${this.name}: timed out after ${WAIT_MS} ms waiting for ${what} on ${await this.url()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  // Waits for a shown element matching `css` (and holding `text`, if given).
  waitFor(css, text = "") {
    return this.waitUntil(`${css}${text ? ` with "${text}"` : ""}`, find, css, text);
  }

  waitGone(css) {
    return this.waitUntil(`${css} to go`, (sel) => !document.querySelector(sel), css);
  }

  async text(css) {
    await this.waitFor(css);
    return this.evaluate((sel) => document.querySelector(sel).innerText, css);
  }

  attribute(css, name) {
    return this.evaluate((sel, n) => document.querySelector(sel)?.getAttribute(n) ?? null, css, name);
  }

  count(css) {
    return this.evaluate((sel) => document.querySelectorAll(sel).length, css);
  }

  // Clicks as a person would: WebDriver scrolls the element into view and
  // fails when it is hidden or covered by something else.
  async click(css) {
    await this.waitFor(css);
    await this.driver.findElement(By.css(css)).click();
  }

  async fill(css, value) {
    await this.waitFor(css);
    const input = await this.driver.findElement(By.css(css));
    await input.clear();
    await input.sendKeys(value);
  }

  async enabled(css) {
    return this.driver.findElement(By.css(css)).isEnabled();
  }

  // The whole document, not only the viewport.
  async screenshot(file) {
    const shot = { context: this.context, origin: "document" };
    const { data } = await this.send("browsingContext.captureScreenshot", shot);
    await writeFile(file, Buffer.from(data, "base64"));
  }

  // What would make a person scroll the whole page sideways: empty when
  // nothing does, or the page's width and the widest culprits (an element,
  // or text overflowing it) outside any container that scrolls by itself.
  overflow() {
    return this.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const total = document.documentElement.scrollWidth;
      if (total <= width) return [];
      const scrolls = (el) => ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
      const inScroller = (el) => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) if (scrolls(p)) return true;
        return false;
      };
      const name = (el) =>
        el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "") + [...el.classList].map((c) => `.${c}`).join("");
      const culprits = [...document.body.querySelectorAll("*")]
        .filter((el) => {
          const rect = el.getBoundingClientRect();
          const hidden = el.scrollWidth - el.clientWidth;
          const spills = rect.right > width + 1 || (!scrolls(el) && hidden > 1 && rect.right + hidden > width + 1);
          return spills && !inScroller(el);
        })
        .slice(-5)
        .map(name);
      return [`the page is ${total}px wide in a ${width}px viewport`, ...culprits];
    });
  }

  // axe-core's findings on the page as it is now. axe's source is evaluated
  // through WebDriver, which the page's CSP does not govern (a <script>
  // tag would be refused by it).
  async axe() {
    const source = await AXE_SOURCE;
    const result = await this.driver.executeScript(
      `${source}
       return axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({
         id: v.id, impact: v.impact, help: v.help,
         nodes: v.nodes.map((n) => n.target.join(" ") + " — " + (n.failureSummary || "").replace(/\\s+/g, " ")),
       })));`,
    );
    return result;
  }
}

// Whether an element matching `css` is laid out, visible and holds `text`.
function find(css, text) {
  return [...document.querySelectorAll(css)].some(
    (el) =>
      el.getClientRects().length > 0 &&
      getComputedStyle(el).visibility !== "hidden" &&
      (!text || el.textContent.includes(text)),
  );
}
