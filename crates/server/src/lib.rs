//! Patchbay's HTTP edge: webhook intake, the management API and health.
//!
//! - [`webhook`]: `POST` on a flow's path → a committed run (202), or the
//!   flow's `respond` step for `sync` webhooks;
//! - [`api`]: the management API under `/api/v1` (bearer tokens with
//!   scopes), its OpenAPI document at `/api/openapi.json` and reference page
//!   at `/api/docs`;
//! - [`health`]: `/healthz`, failing when the store cannot keep new work;
//! - [`listener`]: connections: header and body timeouts, the connection
//!   cap, TLS ([`tls`]), graceful shutdown;
//! - [`browser`]: what keeps a web page in the operator's browser from
//!   using the API, the dashboard and `/metrics`.
//!
//! Engine errors become HTTP responses here and only here ([`error`]).

#![forbid(unsafe_code)]

mod api;
mod browser;
pub mod documents;
mod error;
mod health;
mod inflight;
mod listener;
pub mod metrics;
pub mod tls;
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
pub use browser::BrowserPolicy;
pub use error::ApiError;
pub use listener::BodyTimedOut;

/// Settings of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Default webhook body limit, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Who may use the management API.
    pub api: Arc<ApiAccess>,
    /// What a browser may send to the API, dashboard and metrics.
    pub browser: Arc<BrowserPolicy>,
    /// Longest a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Longest a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most requests in flight on one webhook path.
    pub max_inflight_per_webhook: usize,
    /// Serve HTTPS with this certificate; HTTP when `None`.
    pub tls: Option<Arc<tls::CertResolver>>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub settings: ServerSettings,
    pub inflight: Arc<inflight::InFlight>,
}

/// The full router: webhooks, API, health.
pub fn router(engine: Engine, settings: ServerSettings) -> Router {
    let timeout = settings.request_timeout;
    let api = api::routes(settings.api.clone(), engine.audit().clone());
    let inflight = Arc::new(inflight::InFlight::new(settings.max_inflight_per_webhook));
    let state = AppState {
        engine,
        settings,
        inflight,
    };
    let management = Router::new()
        .merge(api)
        .merge(ui::routes())
        .merge(
            metrics::routes().layer(axum::middleware::from_fn_with_state(
                state.settings.api.clone(),
                api::require_read,
            )),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.settings.browser.clone(),
            browser::guard,
        ));
    Router::new()
        .route("/healthz", get(health::health))
        .merge(management)
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
    let limits = listener::Limits {
        header_timeout: settings.header_timeout,
        body_timeout: settings.body_timeout,
        max_connections: settings.max_connections,
    };
    let tls = settings.tls.clone();
    let app = router(engine, settings);
    listener::serve(app, listener, limits, tls, shutdown).await
}
