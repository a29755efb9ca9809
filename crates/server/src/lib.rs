//! Patchbay's HTTP edge: webhook intake, the management API and health.
//!
//! - [`webhook`]: `POST` on a flow's path → a committed run (202), or the
//!   flow's `respond` step for `sync` webhooks;
//! - [`api`]: the management API under `/api/v1` (bearer tokens with
//!   scopes), its OpenAPI document at `/api/openapi.json` and reference page
//!   at `/api/docs`;
//! - `/healthz`.
//!
//! Engine errors become HTTP responses here and only here ([`error`]).

mod api;
mod error;
pub mod metrics;
mod ui;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use patchbay_engine::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

pub use api::{AccessError, ApiAccess, NewToken, openapi_json};
pub use error::ApiError;

/// Settings of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Default webhook body limit, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Who may use the management API.
    pub api: Arc<ApiAccess>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub settings: ServerSettings,
}

/// The full router: webhooks, API, health.
pub fn router(engine: Engine, settings: ServerSettings) -> Router {
    let timeout = settings.request_timeout;
    let api = api::routes(settings.api.clone());
    let state = AppState { engine, settings };
    Router::new()
        .route("/healthz", get(health))
        .merge(api)
        .merge(ui::routes())
        .merge(
            metrics::routes().layer(axum::middleware::from_fn_with_state(
                state.settings.api.clone(),
                api::require_read,
            )),
        )
        .fallback(webhook::receive)
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
}

/// Serves until `shutdown` is cancelled, then stops accepting connections and
/// lets in-flight requests finish.
pub async fn serve(
    engine: Engine,
    listener: TcpListener,
    settings: ServerSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(engine, settings);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
