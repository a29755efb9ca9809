// The management API as the dashboard uses it: the bearer token, JSON in
// and out, and errors as `ApiError` with the API's stable code.
//
// The token comes from the URL fragment (`#token=...`, which browsers never
// send to the server), or from the login form, and is kept in this tab's
// sessionStorage only: closing the tab forgets it. When the node defines no
// tokens the API is open and no token is needed.

const TOKEN_KEY = "patchbay.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Moves a `token` in the URL fragment into sessionStorage and removes it
// from the address bar and history, so it is not bookmarked or shared.
export function adoptTokenFromFragment() {
  const fragment = location.hash.replace(/^#/, "");
  if (!fragment) return;
  const params = new URLSearchParams(fragment);
  if (!params.has("token")) return;
  const token = params.get("token").trim();
  params.delete("token");
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Calls `/api/v1{path}` for a text answer (an SVG picture); rejects with an
// ApiError as `api` does.
export async function apiText(path) {
  const headers = {};
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { headers, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network", `Patchbay cannot be reached (${e.message})`);
  }
  const text = await response.text();
  if (!response.ok) {
    let error = {};
    try {
      error = JSON.parse(text).error || {};
    } catch {
      error = {};
    }
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || `GET ${path} answered ${response.status}`);
  }
  return text;
}

// Calls `/api/v1{path}`; resolves to the JSON answer (or null for an empty
// one) and rejects with an ApiError.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", `Patchbay cannot be reached (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `${method} ${path} answered ${response.status}`,
      error.details,
    );
  }
  return data;
}

// The items of a list answer.
export function itemsOf(answer) {
  return (answer && answer.items) || [];
}
