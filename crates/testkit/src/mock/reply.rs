//! [`Reply`]: what a mock answers, and how it becomes an HTTP response.
//!
//! A reply is plain data (status, headers, body, delay) so tests can build,
//! clone and script them freely. Invalid pieces (a status outside 100..=999, a
//! header name with spaces) are not rejected when the reply is built; the mock
//! answers 500 `{"error":"invalid_reply"}` instead, so a typo in a test shows up
//! as a failing request rather than a panic inside the server.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

/// Body of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// No body at all.
    Empty,
    /// A JSON document, sent with `content-type: application/json`.
    Json(Value),
    /// Raw bytes with their content type.
    Raw {
        /// Value of the `content-type` header.
        content_type: String,
        /// The bytes sent.
        bytes: Bytes,
    },
}

/// A reply a [`MockUpstream`](crate::MockUpstream) sends for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers, sent in order; a `content-type` here overrides the body's.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ReplyBody,
    /// How long to wait before answering (after any hold is released).
    pub delay: Duration,
    /// Instead of answering, reset the connection (after the delay): the
    /// client gets no HTTP response at all. Status, headers and body are
    /// then unused.
    pub reset: bool,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: Value) -> Self {
        Self::with_body(status, ReplyBody::Json(value))
    }

    /// A reply with no body.
    pub fn status(status: u16) -> Self {
        Self::with_body(status, ReplyBody::Empty)
    }

    /// A text reply with an explicit content type.
    pub fn text(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Self::bytes(status, content_type, body.into())
    }

    /// A reply with raw bytes and an explicit content type.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::with_body(
            status,
            ReplyBody::Raw {
                content_type: content_type.to_owned(),
                bytes: body.into(),
            },
        )
    }

    /// No answer at all: after the delay the connection is reset (TCP RST),
    /// as when an upstream crashes or a proxy cuts the line.
    pub fn reset() -> Self {
        Self {
            reset: true,
            ..Self::status(502)
        }
    }

    /// `429 Too Many Requests` with `Retry-After` in whole seconds (rounded
    /// up, as the header cannot carry fractions).
    pub fn too_many_requests(retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::error(429, "rate_limited").with_header("retry-after", &seconds.to_string())
    }

    /// A body that claims to be JSON but breaks off mid-document.
    pub fn malformed_json(status: u16) -> Self {
        Self::bytes(
            status,
            "application/json",
            Bytes::from_static(br#"{"id": 42, "items": [1, 2,"#),
        )
    }

    /// A valid JSON document of `size` bytes (at least 12): `{"data":"xx…"}`.
    pub fn huge_json(status: u16, size: usize) -> Self {
        const FRAME: &[u8] = br#"{"data":""}"#;
        let mut body = Vec::with_capacity(size.max(FRAME.len() + 1));
        body.extend_from_slice(br#"{"data":""#);
        body.resize(size.max(FRAME.len() + 1) - 2, b'x');
        body.extend_from_slice(br#""}"#);
        Self::bytes(status, "application/json", body)
    }

    /// Adds a header (appended; `content-type` replaces the body's).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Delays the reply by `delay`.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A JSON error reply `{"error": code}` as every mock uses.
    pub(crate) fn error(status: u16, code: &str) -> Self {
        Self::json(status, json!({ "error": code }))
    }

    fn with_body(status: u16, body: ReplyBody) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
            reset: false,
        }
    }

    /// Builds the HTTP response, or a 500 explaining why this reply is unusable.
    pub(crate) fn into_response(self) -> Response {
        match self.try_into_response() {
            Ok(response) => response,
            Err(detail) => plain_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "invalid_reply", "detail": detail }),
            ),
        }
    }

    fn try_into_response(self) -> Result<Response, String> {
        let status = StatusCode::from_u16(self.status)
            .map_err(|_| format!("status {} is not a valid HTTP status", self.status))?;
        let (content_type, body) = match self.body {
            ReplyBody::Empty => (None, Bytes::new()),
            ReplyBody::Json(value) => (
                Some("application/json".to_owned()),
                Bytes::from(serde_json::to_vec(&value).map_err(|e| e.to_string())?),
            ),
            ReplyBody::Raw {
                content_type,
                bytes,
            } => (Some(content_type), bytes),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(&content_type).map_err(|_| {
                format!("content type {content_type:?} is not a valid header value")
            })?;
            headers.insert(CONTENT_TYPE, value);
        }
        for (name, value) in self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("{value:?} is not a valid value for header {name}"))?;
            if header == CONTENT_TYPE {
                headers.insert(header, value);
            } else {
                headers.append(header, value);
            }
        }
        Ok(response)
    }
}

/// A JSON response built without going through [`Reply`] validation.
pub(crate) fn plain_json(status: StatusCode, value: Value) -> Response {
    let body = serde_json::to_vec(&value).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reply_sets_content_type_and_headers() {
        let response = Reply::json(201, json!({"a": 1}))
            .with_header("x-one", "1")
            .with_header("x-one", "2")
            .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let values: Vec<_> = response.headers().get_all("x-one").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn explicit_content_type_overrides_body() {
        let response = Reply::json(200, json!(1))
            .with_header("Content-Type", "application/problem+json")
            .into_response();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers().get_all(CONTENT_TYPE).iter().count(), 1);
    }

    #[test]
    fn helper_replies() {
        let limited = Reply::too_many_requests(Duration::from_millis(1500));
        assert_eq!(limited.status, 429);
        assert_eq!(
            limited.headers,
            [("retry-after".to_string(), "2".to_string())]
        );
        let huge = Reply::huge_json(200, 1000);
        let ReplyBody::Raw { bytes, .. } = &huge.body else {
            panic!("raw body expected");
        };
        assert_eq!(bytes.len(), 1000);
        assert!(serde_json::from_slice::<Value>(bytes).is_ok());
        let ReplyBody::Raw { bytes, .. } = Reply::malformed_json(200).body else {
            panic!("raw body expected");
        };
        assert!(serde_json::from_slice::<Value>(&bytes).is_err());
        assert!(Reply::reset().reset);
    }

    #[test]
    fn invalid_pieces_become_500() {
        for reply in [
            Reply::status(1000),
            Reply::status(200).with_header("bad name", "x"),
            Reply::status(200).with_header("x", "line\nbreak"),
            Reply::text(200, "text/plain\n", "x"),
        ] {
            let response = reply.into_response();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}
