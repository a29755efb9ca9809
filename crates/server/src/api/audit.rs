//! `/api/v1/audit`: the audit log, and recording into it.
//!
//! [`super::auth::authorize`] hands every `/api/v1` request here once it
//! knows who is calling ([`Audit`]): a request refused for its token is
//! queued as a refusal; a request that may change something (any method
//! but `GET` and `HEAD`) is recorded before its handler runs, waiting for
//! the commit, and completed with the status answered. When the entry
//! ahead cannot be written the request is refused with 503 and its handler
//! never runs, so no action is left out of the log. See
//! `patchbay_engine::AuditLog` for how the entries are written.
//!
//! An entry holds the route template and the path parameter that names the
//! target, never the query or the body: the value of `PUT /secrets/{name}`
//! travels in the body. The peer is the connection's own address; headers
//! such as `X-Forwarded-For` are set by the client and not trusted.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use chrono::Utc;
use patchbay_engine::AuditLog;
use patchbay_store::{ANONYMOUS, AuditEntry, AuditFilter, AuditId, audit_target};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{RunPage, page_type, run_cursor};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

page_type!(
    /// A page of audit entries, newest first.
    AuditList of AuditEntry
);

/// List the audit log, newest first: every request that could change the
/// node (with who made it, from where, and the status it got) and every
/// request refused for its token.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(RunPage),
    responses((status = 200, description = "A page of audit entries, newest first", body = AuditList)),
    security(("bearer" = ["admin"]))
)]
async fn list_audit(
    State(state): State<AppState>,
    Query(page): Query<RunPage>,
) -> Result<Json<AuditList>, ApiError> {
    let page = page.page()?;
    let entries = state
        .engine
        .store()
        .list_audit(&AuditFilter {
            before: page.after,
            limit: page.limit + 1,
        })
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    Ok(Json(page.finish(entries, |e| run_cursor(e.id)).into()))
}

/// What is known of a request before it is served: all an entry needs but
/// who made it and how it ended.
pub(crate) struct Audit {
    log: AuditLog,
    id: AuditId,
    at: chrono::DateTime<Utc>,
    method: Method,
    route: String,
    target: Option<String>,
    peer: Option<String>,
}

impl Audit {
    /// The request's facts; `params` are its path parameters, the first of
    /// which names its target.
    pub fn of(
        log: &AuditLog,
        request: &Request,
        route: Option<&str>,
        params: Option<&RawPathParams>,
    ) -> Audit {
        let target = params
            .and_then(|params| params.iter().next())
            .map(|(_, value)| audit_target(value));
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.to_string());
        Audit {
            log: log.clone(),
            id: AuditId::now_v7(),
            at: log.now(),
            method: request.method().clone(),
            // Routing always matched here; the raw path is a fallback,
            // bounded like a target since the client chose it.
            route: route.map_or_else(|| audit_target(request.uri().path()), str::to_string),
            target,
            peer,
        }
    }

    /// Whether a request with this method may change something, and so is
    /// recorded before it is served.
    pub fn is_action(method: &Method) -> bool {
        !matches!(*method, Method::GET | Method::HEAD)
    }

    fn entry(&self, actor: Option<&str>, status: Option<StatusCode>) -> AuditEntry {
        AuditEntry {
            id: self.id,
            at: self.at,
            actor: actor.unwrap_or(ANONYMOUS).to_string(),
            method: self.method.as_str().to_string(),
            route: self.route.clone(),
            target: self.target.clone(),
            status: status.map(|s| s.as_u16()),
            peer: self.peer.clone(),
        }
    }

    /// Queues the entry of a request refused for its token (`actor` is the
    /// token's name when it was known but lacked the scope).
    pub fn refused(&self, actor: Option<&str>, status: StatusCode) {
        self.log.record_refusal(self.entry(actor, Some(status)));
    }

    /// Records the action ahead of serving it; an error means it must not
    /// be served.
    pub async fn ahead(&self, actor: Option<&str>) -> Result<(), ApiError> {
        self.log
            .record(&self.entry(actor, None))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the audit log cannot be written; nothing was changed, retry later",
                )
            })
    }

    /// Completes the action's entry with the status answered. A failure is
    /// logged by the writer; the entry stays without a status.
    pub async fn answered(&self, actor: Option<&str>, status: StatusCode) {
        let _ = self.log.record(&self.entry(actor, Some(status))).await;
    }
}
