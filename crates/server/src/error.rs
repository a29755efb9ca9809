//! API errors: a stable snake_case code, an HTTP status and a message for the
//! caller, as `{"error": {"code", "message", ...}}`.
//!
//! | code                | status | meaning                                   |
//! |---------------------|--------|-------------------------------------------|
//! | `not_found`         | 404    | no such route, flow or run                |
//! | `method_not_allowed`| 405    | webhooks accept `POST` only               |
//! | `invalid_json`      | 400    | the body is not JSON                      |
//! | `invalid_request`   | 400    | a parameter is malformed                  |
//! | `invalid_signature` | 401    | a webhook's signature is missing or wrong |
//! | `payload_too_large` | 413    | the body exceeds the limit                |
//! | `unavailable`       | 503    | store failing or shutting down; retry     |
//! | `run_failed`        | 502    | a sync webhook's run failed               |
//! | `respond_timeout`   | 504    | a sync webhook's run did not respond in time |
//! | `internal`          | 500    | a bug; details are logged, not returned   |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
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
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownFlow(flow) => ApiError::not_found(format!("unknown flow `{flow}`")),
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
                    "the event was not stored; retry later",
                )
            }
            EngineError::Connector(_) | EngineError::WebhookSecret(_) => {
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
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        response
    }
}
