//! [`RecordedRequest`]: one request as a mock received it.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

/// A request recorded by a [`MockUpstream`](crate::MockUpstream) on arrival,
/// before its reply is chosen or sent.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival order, starting at 0 for the first request the mock received.
    pub seq: usize,
    /// Upper-case method, e.g. `"POST"`.
    pub method: String,
    /// Path without the query string, as sent (not decoded).
    pub path: String,
    /// Raw query string without the `?`; empty when there is none.
    pub query: String,
    /// Decoded query pairs in the order sent.
    pub query_pairs: Vec<(String, String)>,
    /// Request headers (names are lower-case).
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// The body parsed as JSON, when it is non-empty valid JSON.
    pub json: Option<Value>,
    /// The route pattern that matched (e.g. `/customers/{id}`), if any.
    pub route: Option<String>,
    /// Path parameters captured by the route pattern, percent-decoded.
    pub params: BTreeMap<String, String>,
    /// When the request was recorded, on tokio's clock (paused in a test
    /// that pauses time).
    pub received_at: Instant,
}

impl RecordedRequest {
    /// First value of header `name` (any case), if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// First value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query_pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Path parameter `name` captured by the route pattern.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}
