//! The management API under `/api/v1`, its OpenAPI document at
//! `/api/openapi.json` and its reference page at `/api/docs`.
//!
//! One file per resource: [`flows`], [`runs`], [`dead_letters`],
//! [`connectors`], [`config`], [`secrets`], `stats`, [`drift`], [`endpoints`], [`nodes`], [`audit`]
//! (which also records the audit log). Each declares its routes
//! with `#[utoipa::path]`, which both registers the handler and describes
//! it, including the scope it needs (`security(("bearer" = ["operate"]))`):
//! [`auth`] enforces exactly what the document declares. [`page`] holds the
//! cursor pagination every list shares, [`openapi`] completes and serves
//! the document, [`docs`] renders it as HTML.
//!
//! Every error under `/api` is JSON (`{"error": {"code", "message"}}`):
//! handlers return [`ApiError`]s, and what axum answers by itself (a wrong
//! method, a malformed query or body, an unknown path) is rewritten into the
//! same shape here, so a client never has to parse plain text.

mod audit;
mod auth;
pub(crate) mod config;
mod connectors;
mod dead_letters;
mod docs;
mod drift;
mod endpoints;
mod errors;
pub(crate) mod flows;
mod graph;
mod nodes;
mod openapi;
pub(crate) mod page;
pub(crate) mod runs;
mod secrets;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use patchbay_engine::AuditLog;
use serde_json::Value;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub(crate) use auth::require_read;
pub use auth::{AccessError, ApiAccess, NewToken};

use crate::AppState;
use crate::error::ApiError;

/// Longest plain-text error body rewritten into JSON; anything longer is
/// cut (these are axum's own short rejection messages).
const MAX_REWRITTEN_BODY: usize = 4096;

/// Every `/api/v1` route, described.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(flows::routes())
        .merge(graph::routes())
        .merge(runs::routes())
        .merge(dead_letters::routes())
        .merge(connectors::routes())
        .merge(stats::routes())
        .merge(config::routes())
        .merge(secrets::routes())
        .merge(audit::routes())
        .merge(drift::routes())
        .merge(endpoints::routes())
        .merge(errors::routes())
        .merge(nodes::routes())
}

/// The `/api/v1` routes and the complete OpenAPI document describing them.
fn build() -> (Router<AppState>, Value) {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1())
        .split_for_parts();
    (router, openapi::finish(document))
}

/// The OpenAPI document, as served at `/api/openapi.json` (pretty JSON).
pub fn openapi_json() -> String {
    openapi::to_text(&build().1)
}

/// Everything under `/api`.
pub(crate) fn routes(access: Arc<ApiAccess>, audit: AuditLog) -> Router<AppState> {
    let (v1, document) = build();
    let guard = auth::Guard {
        access,
        scopes: Arc::new(auth::ScopeTable::from_document(&document)),
        audit,
    };
    let json: Arc<str> = openapi::to_text(&document).into();
    let (html, csp) = docs::render(&document);
    let html: Arc<str> = html.into();
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    v1.route_layer(from_fn_with_state(guard, auth::authorize))
        .route(
            "/api/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        json.to_string(),
                    )
                }
            }),
        )
        .route(
            "/api/docs",
            get(move || {
                let html = html.clone();
                let csp = csp.clone();
                async move {
                    (
                        [
                            (
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("text/html; charset=utf-8"),
                            ),
                            (header::CONTENT_SECURITY_POLICY, csp),
                            (
                                header::X_CONTENT_TYPE_OPTIONS,
                                HeaderValue::from_static("nosniff"),
                            ),
                        ],
                        html.to_string(),
                    )
                }
            }),
        )
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .layer(map_response(json_errors))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no API route `{}`", request.uri().path()))
}

/// Rewrites an error axum answered by itself (plain text or empty) as a
/// JSON error; JSON answers pass untouched.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REWRITTEN_BODY).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = match status {
        // Routes under `/api/v1` answer a wrong method themselves (see
        // `auth`); this covers the other `/api` routes.
        StatusCode::METHOD_NOT_ALLOWED => match parts.headers.get(header::ALLOW) {
            Some(allow) => ApiError::method_not_allowed(allow.clone()),
            None => ApiError::new(
                status,
                "method_not_allowed",
                "this route does not take this method",
            ),
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "payload_too_large", text),
        StatusCode::NOT_FOUND => ApiError::not_found(if text.is_empty() {
            "no such resource".to_string()
        } else {
            text
        }),
        // axum's JSON extractor answers 422 for a body of the wrong shape:
        // a malformed request like any other.
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ApiError::bad_request(text),
        other if other.is_server_error() => ApiError::new(other, "internal", "internal error"),
        other => ApiError::new(other, "invalid_request", text),
    };
    let mut rewritten = error.into_response();
    if !parts.headers.contains_key(header::ALLOW) {
        // axum adds the route's own `Allow` on the way out.
        rewritten.headers_mut().remove(header::ALLOW);
    }
    for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}
