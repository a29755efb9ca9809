// What every page shares: the header's session controls, the login form,
// notices, DOM building and formatting, and refresh loops.
//
// Pages build their DOM with `h()` (text is always set as text, never as
// HTML), so nothing read from the API — run inputs, upstream errors — can
// inject markup or script.

import { ApiError, adoptTokenFromFragment, setToken, token } from "./api.js";

// `h("td", {class: "num"}, "12")`: an element with attributes (functions
// for `on*`, booleans for flags) and children (nodes, text, arrays, null).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function badge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status }, status.replace("_", "-"));
}

// `2026-11-24 10:31:05` in local time, from an RFC 3339 text or unix seconds.
export function time(value) {
  const date = toDate(value);
  if (!date) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

// `850 ms`, `12.3 s`, `4 min 10 s`.
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 10 && !Number.isInteger(ms)) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function percent(rate) {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "";
  return `${(rate * 100).toFixed(rate > 0 && rate < 0.01 ? 2 : 1)} %`;
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// Shows a message above the page; `kind` is `error`, `ok` or `info`.
export function notice(message, kind = "info") {
  const box = document.getElementById("notice");
  box.replaceChildren(message ? h("div", { class: `notice ${kind}`, role: "status" }, message) : "");
}

// Describes a failed API call for a person.
export function explain(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  if (error.status === 403) return `Your token's scope does not allow this: ${error.message}`;
  return error.message;
}

// Runs `task` now and then every `ms` while the tab is visible; a failed
// round shows a notice and the next one tries again. Returns a function
// that runs a round at once.
export function every(ms, task) {
  let timer = null;
  let running = false;
  // Set by a 401: the login form is up, and polling would only reset it.
  let stopped = false;
  const round = async () => {
    clearTimeout(timer);
    if (running || stopped) return;
    running = true;
    try {
      await task();
    } catch (e) {
      if (handleAuth(e)) stopped = true;
      else notice(explain(e), "error");
    } finally {
      running = false;
      if (!document.hidden && !stopped) timer = setTimeout(round, ms);
    }
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) round();
  });
  round();
  return round;
}

// Starts a page: takes a token from the fragment, marks the navigation,
// and calls `start()`; when the API answers 401 the login form replaces
// the page until a token is given, then `start()` runs again.
export function startPage(name, start) {
  adoptTokenFromFragment();
  for (const link of document.querySelectorAll("header.top nav a")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
  }
  renderSession();
  Promise.resolve()
    .then(start)
    .catch((e) => {
      if (!handleAuth(e)) notice(explain(e), "error");
    });
}

// Shows the login form for a 401; true when `error` was one.
export function handleAuth(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  showLogin(token() ? "The token was refused. Enter another one." : "This node's API needs a token.");
  return true;
}

function showLogin(message) {
  notice("");
  const login = document.getElementById("login");
  document.getElementById("main").hidden = true;
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    "aria-label": "API token",
  });
  const form = h(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        setToken(input.value.trim());
        // Reload so every refresh loop starts over with the token.
        location.reload();
      },
    },
    h("p", {}, message),
    h("label", {}, "API token (scope read or higher)", input),
    h("button", { class: "primary", type: "submit" }, "Sign in"),
  );
  login.replaceChildren(h("div", { class: "panel login" }, h("h1", {}, "Sign in"), form));
  login.hidden = false;
  renderSession();
  input.focus();
}

function renderSession() {
  const session = document.getElementById("session");
  if (!session) return;
  if (token()) {
    session.replaceChildren(
      "token set",
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            setToken(null);
            location.reload();
          },
        },
        "Sign out",
      ),
    );
  } else {
    session.replaceChildren();
  }
}
