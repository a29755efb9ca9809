//! `GET /healthz`: whether this node can take work.
//!
//! 200 `{"status": "ok"}` while the store keeps what the node acknowledges;
//! 503 `{"status": "unavailable", "reason": ...}` once it cannot (its file
//! removed or replaced, or its last write failed; see
//! [`patchbay_store::StoreFault`]), so a load balancer or supervisor takes
//! the node out of service. The answer reads one atomic flag that the store
//! maintains in the background: probing costs no query.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match state.engine.store_fault() {
        None => Json(json!({ "status": "ok" })).into_response(),
        Some(fault) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": fault.to_string() })),
        )
            .into_response(),
    }
}
