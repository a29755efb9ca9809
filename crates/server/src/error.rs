//! API errors: a stable snake_case code, an HTTP status and a message for the
//! caller, as `{"error": {"code", "message", ...}}`.
//!
//! | code                    | status | meaning                                        |
//! |-------------------------|--------|------------------------------------------------|
//! | `not_found`             | 404    | no such route, flow, run or secret             |
//! | `method_not_allowed`    | 405    | the route exists, not with this method (`Allow` lists those it takes) |
//! | `invalid_json`          | 400    | the body is not JSON                           |
//! | `invalid_request`       | 400    | a parameter or body field is malformed; `details.parameter` names it |
//! | `unauthorized`          | 401    | no API token, or an unknown one (`WWW-Authenticate: Bearer`) |
//! | `forbidden`             | 403    | the token lacks the scope; `details.required` names it |
//! | `origin_not_allowed`    | 403    | the request came from a web page of another origin |
//! | `host_not_allowed`      | 421    | an API without tokens was asked for a non-loopback host name |
//! | `body_timeout`          | 408    | the body did not arrive within `server.body_timeout` |
//! | `invalid_signature`     | 401    | a webhook's signature is missing or wrong      |
//! | `conflict`              | 409    | the run is not in a state that allows it (cancel a finished run, replay a live one) |
//! | `payload_too_large`     | 413    | the body exceeds the limit                     |
//! | `unsupported_media_type`| 415    | a body that is not `application/json`          |
//! | `invalid_config`        | 422    | a reload found the configuration invalid       |
//! | `reload_unsupported`    | 409    | the node cannot load its configuration again   |
//! | `unavailable`           | 503    | store failing or shutting down; retry          |
//! | `busy`                  | 503    | the webhook path has too many requests in flight; retry (`Retry-After`) |
//! | `not_implemented`       | 501    | this node lacks what the endpoint needs        |
//! | `run_failed`            | 502    | a sync webhook's run failed                    |
//! | `respond_timeout`       | 504    | a sync webhook's run did not respond in time   |
//! | `internal`              | 500    | a bug; details are logged, not returned        |

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchbay_engine::EngineError;
use serde_json::{Value, json};
use tracing::{error, warn};

/// An error answered to an API or webhook caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    /// Safe to show the caller.
    pub message: String,
    pub details: Option<Value>,
    /// Headers sent with the error (`Allow`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// `invalid_request` naming the query, path or body parameter at fault.
    pub fn invalid_parameter(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::bad_request(message).with_details(json!({ "parameter": parameter }))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", message)
    }

    /// 405 for a route that takes only the methods in `allow` (`GET, POST`).
    pub fn method_not_allowed(allow: HeaderValue) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "this route takes {} only",
                allow.to_str().unwrap_or("other methods")
            ),
        )
        .with_header(header::ALLOW, allow)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            e @ EngineError::UnknownFlow { .. } => ApiError::not_found(e.to_string()),
            EngineError::InvalidConfig(report) => {
                let problems: Vec<Value> = report
                    .diagnostics
                    .iter()
                    .map(|d| {
                        json!({
                            "file": d.file.display().to_string(),
                            "line": d.line,
                            "column": d.column,
                            "message": d.message,
                        })
                    })
                    .collect();
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_config",
                    format!(
                        "the configuration on disk is invalid ({} problem(s)); the running one is unchanged",
                        problems.len()
                    ),
                )
                .with_details(json!({ "problems": problems }))
            }
            EngineError::ReloadUnsupported => ApiError::new(
                StatusCode::CONFLICT,
                "reload_unsupported",
                "this node was not started from a project folder it can load again",
            ),
            EngineError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "shutting down; retry on another node or later",
            ),
            EngineError::NotCommitted(e) => {
                warn!(error = %e, "event refused: intake batch not committed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the event was not stored; retry later",
                )
            }
            EngineError::Store(e) => {
                // The internal message goes to the log; the caller learns only
                // that nothing was accepted and it may retry.
                warn!(error = %e, "request refused: store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; nothing was changed, retry later",
                )
            }
            EngineError::EvaluatorStart(_) => {
                error!(error = %e, "unexpected engine error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(details), Value::Object(map)) = (self.details, &mut body) {
            map.insert("details".into(), details);
        }
        let mut response = (self.status, Json(json!({ "error": body }))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // Webhook paths take `POST` only; API routes name their own.
            StatusCode::METHOD_NOT_ALLOWED if !response.headers().contains_key(header::ALLOW) => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        response
    }
}
