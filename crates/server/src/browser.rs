//! Defences of the management surface (`/api`, `/ui`, `/metrics`) against
//! the operator's own browser.
//!
//! A page on any site can make the browser send requests to the node: a
//! `fetch(..., {mode: "no-cors"})` or a plain `<form>` needs no CORS
//! permission when its body is `text/plain` or a form, and the answer is
//! never read, so the request only has to *do* something. With no API
//! tokens (the default on loopback) nothing else stands in the way. And by
//! DNS rebinding a site can even read answers: its own name, resolved to
//! `127.0.0.1`, makes the node look same-origin to the browser. Three rules
//! close both doors, checked before the token:
//!
//! - a request whose `Origin` is not the node's own (`http[s]://` + its
//!   `Host`) is refused 403 `origin_not_allowed`: browsers send `Origin` on
//!   every cross-origin request and on every `POST`, so a foreign page can
//!   no longer change anything;
//! - a mutating API call (`POST`, `PUT`, `PATCH`, `DELETE` under `/api/v1`)
//!   with a body must say `Content-Type: application/json`, or is refused
//!   415 `unsupported_media_type`: such a request is never "simple", so a
//!   browser sends it cross-origin only after a CORS preflight, which the
//!   node never grants;
//! - while the API is open, only loopback `Host` names are answered
//!   (`localhost`, `127.0.0.0/8`, `[::1]`, any port, and those in
//!   `api.allowed_hosts`); anything else is refused 421 `host_not_allowed`,
//!   so a rebound name reaches nothing. With tokens, a rebound page has no
//!   token, and the host is not checked.
//!
//! Every answer under `/api` also carries `Cache-Control: no-store`: run
//! payloads and configuration must not linger in a browser or proxy cache.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::error::ApiError;

/// What the browser guard needs to know about the node.
#[derive(Clone, Debug)]
pub struct BrowserPolicy {
    /// Whether the node serves HTTPS: its own origin is then `https://`.
    pub https: bool,
    /// Whether the API is served without tokens, so `Host` is checked.
    pub open_api: bool,
    /// Host names (lowercase, without port) an open API answers besides
    /// the loopback ones.
    pub allowed_hosts: HashSet<String>,
}

/// Middleware on `/api`, `/ui` and `/metrics`: refuses foreign origins,
/// foreign hosts (open API only) and non-JSON mutating calls, and marks API
/// answers `no-store`.
pub(crate) async fn guard(
    State(policy): State<Arc<BrowserPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api");
    let mut response = match check(&policy, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    };
    if is_api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn check(policy: &BrowserPolicy, request: &Request) -> Result<(), ApiError> {
    let host = host_of(request);
    if policy.open_api && !host.is_some_and(|host| is_allowed_host(policy, host)) {
        debug!(
            host = host.unwrap_or("-"),
            "request refused: host not allowed"
        );
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this node's API has no tokens and answers only loopback host names \
             (localhost, 127.0.0.1, [::1]) and those in `api.allowed_hosts`",
        ));
    }
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !is_own_origin(policy, origin, host)
    {
        debug!(origin = ?origin, "request refused: foreign origin");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "requests from another origin (a web page of another site) are refused",
        ));
    }
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if mutating
        && request.uri().path().starts_with("/api/v1/")
        && has_body(request.headers())
        && !is_json(request.headers())
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        ));
    }
    Ok(())
}

/// The authority the client asked for: the request target's (absolute
/// form) or the `Host` header.
fn host_of(request: &Request) -> Option<&str> {
    match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// `host[:port]` without its port, and an IPv6 literal without brackets.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => authority,
    }
}

fn is_allowed_host(policy: &BrowserPolicy, authority: &str) -> bool {
    let name = host_name(authority);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        // An address literal cannot be rebound: the browser connects where
        // it says. Only loopback ones reach a loopback listener anyway.
        return ip.is_loopback();
    }
    policy.allowed_hosts.contains(&name.to_ascii_lowercase())
}

/// Whether `origin` is `http[s]://` followed by the requested authority.
fn is_own_origin(policy: &BrowserPolicy, origin: &HeaderValue, host: Option<&str>) -> bool {
    let (Ok(origin), Some(host)) = (origin.to_str(), host) else {
        return false;
    };
    let scheme = if policy.https { "https://" } else { "http://" };
    origin
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        && origin[scheme.len()..].eq_ignore_ascii_case(host)
}

/// Whether the request announces a body: a non-zero `Content-Length` or
/// any `Transfer-Encoding`.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(open_api: bool) -> BrowserPolicy {
        BrowserPolicy {
            https: false,
            open_api,
            allowed_hosts: ["patchbay.internal".to_string()].into(),
        }
    }

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn code(policy: &BrowserPolicy, request: &Request) -> Option<&'static str> {
        check(policy, request).err().map(|e| e.code)
    }

    #[test]
    fn an_open_api_answers_loopback_and_listed_hosts_only() {
        let open = policy(true);
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:9",
            "127.1.2.3",
            "[::1]:8080",
            "patchbay.internal:80",
        ] {
            let r = request(Method::GET, "/api/v1/runs", &[("host", host)]);
            assert_eq!(code(&open, &r), None, "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "localhost.evil.example",
            "[::2]",
        ] {
            let r = request(Method::GET, "/api/v1/runs", &[("host", host)]);
            assert_eq!(code(&open, &r), Some("host_not_allowed"), "{host}");
        }
        let r = request(Method::GET, "/api/v1/runs", &[]);
        assert_eq!(code(&open, &r), Some("host_not_allowed"));
        // With tokens, the host does not matter.
        let r = request(Method::GET, "/api/v1/runs", &[("host", "evil.example")]);
        assert_eq!(code(&policy(false), &r), None);
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let open = policy(true);
        let host = ("host", "127.0.0.1:8080");
        for origin in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8081",
        ] {
            let r = request(Method::GET, "/ui", &[host, ("origin", origin)]);
            assert_eq!(code(&open, &r), Some("origin_not_allowed"), "{origin}");
        }
        let r = request(
            Method::POST,
            "/api/v1/runs",
            &[host, ("origin", "http://127.0.0.1:8080")],
        );
        assert_eq!(code(&open, &r), None);
    }

    #[test]
    fn mutating_calls_with_a_body_need_json() {
        let open = policy(true);
        let host = ("host", "localhost");
        for (content_type, expected) in [
            (None, Some("unsupported_media_type")),
            (Some("text/plain"), Some("unsupported_media_type")),
            (
                Some("application/x-www-form-urlencoded"),
                Some("unsupported_media_type"),
            ),
            (Some("application/json"), None),
            (Some("Application/JSON; charset=utf-8"), None),
        ] {
            let mut headers = vec![host, ("content-length", "7")];
            if let Some(content_type) = content_type {
                headers.push(("content-type", content_type));
            }
            let r = request(Method::POST, "/api/v1/flows/x/runs", &headers);
            assert_eq!(code(&open, &r), expected, "{content_type:?}");
        }
        let r = request(
            Method::POST,
            "/api/v1/runs/x/cancel",
            &[host, ("content-length", "0")],
        );
        assert_eq!(code(&open, &r), None);
        let r = request(
            Method::POST,
            "/api/v1/runs/x/cancel",
            &[host, ("transfer-encoding", "chunked")],
        );
        assert_eq!(code(&open, &r), Some("unsupported_media_type"));
    }
}
