//! `/api/v1/connectors`: how each upstream is doing on this node — circuit
//! breaker, rate-limit headroom and the calls of the last minutes.
//!
//! These figures live in the node's memory (every node has its own
//! connectors), and a configuration reload resets them.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use patchbay_connector::{BreakerState, ConnectorHealth};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{NamePage, page_type};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connectors))
        .routes(routes!(show_connector))
}

/// A connector's health.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectorView {
    pub name: String,
    pub breaker: Breaker,
    pub rate_limit: RateLimit,
    /// Calls of the last minutes (HTTP attempts, retries included).
    pub recent: Recent,
    /// The last failed call, if any since the connector was built.
    pub last_error: Option<LastError>,
    /// While the upstream asked for a pause (429 or 503 with
    /// `Retry-After`): milliseconds until calls resume.
    pub paused_for_ms: Option<u64>,
}

/// The circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Breaker {
    /// `closed` (calls go through), `open` (calls refused), `half_open`
    /// (probing) or `disabled` (`circuit_breaker: off`).
    pub state: String,
    /// Percentage of failed calls in the breaker's window.
    pub failure_rate: f64,
    /// Calls counted in the breaker's window.
    pub calls_in_window: u32,
    /// While open: milliseconds until a probe is let through.
    pub retry_in_ms: Option<u64>,
}

/// Rate-limit headroom.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RateLimit {
    /// The configured limit in calls per second (per key when keyed).
    pub limit_per_second: Option<f64>,
    /// Share of the limit left unused over the last minute, 0 to 1.
    pub headroom: Option<f64>,
    /// What the upstream last said of its own quota.
    pub upstream: Option<UpstreamQuota>,
}

/// An upstream's own quota, from its rate-limit headers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UpstreamQuota {
    pub remaining: u64,
    pub limit: Option<u64>,
    /// When it was reported.
    pub at: Option<DateTime<Utc>>,
}

/// Calls over a recent window.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Recent {
    pub window_minutes: u64,
    pub calls: u64,
    pub errors: u64,
    /// `errors / calls`, 0 without calls.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// A failed call.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LastError {
    pub at: Option<DateTime<Utc>>,
    /// As the journal shows it: credentials masked.
    pub message: String,
}

page_type!(
    /// A page of connectors, by name.
    ConnectorList of ConnectorView
);

fn unix_time(seconds: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ConnectorView {
    fn of(name: &str, health: ConnectorHealth) -> ConnectorView {
        let now = Instant::now();
        ConnectorView {
            name: name.into(),
            breaker: Breaker {
                state: match health.breaker {
                    BreakerState::Disabled => "disabled",
                    BreakerState::Closed => "closed",
                    BreakerState::Open => "open",
                    BreakerState::HalfOpen => "half_open",
                }
                .into(),
                failure_rate: health.failure_rate,
                calls_in_window: health.calls_in_window,
                retry_in_ms: health.breaker_retry_in.map(millis),
            },
            rate_limit: RateLimit {
                limit_per_second: health.rate_limit.limit_per_second,
                headroom: health.rate_limit.headroom,
                upstream: health.rate_limit.upstream.map(|quota| UpstreamQuota {
                    remaining: quota.remaining,
                    limit: quota.limit,
                    at: unix_time(quota.at),
                }),
            },
            recent: Recent {
                window_minutes: health.recent.window_minutes,
                calls: health.recent.calls,
                errors: health.recent.errors,
                error_rate: health.recent.error_rate,
                p50_ms: health.recent.p50_ms,
                p95_ms: health.recent.p95_ms,
            },
            last_error: health.last_error.map(|error| LastError {
                at: unix_time(error.at),
                message: error.message,
            }),
            paused_for_ms: health
                .paused_until
                .filter(|until| *until > now)
                .map(|until| millis(until - now)),
        }
    }
}

/// List the connectors and their health, by name.
#[utoipa::path(
    get,
    path = "/connectors",
    tag = "connectors",
    params(NamePage),
    responses((status = 200, description = "A page of connectors, by name", body = ConnectorList)),
    security(("bearer" = ["read"]))
)]
async fn list_connectors(
    State(state): State<AppState>,
    Query(page): Query<NamePage>,
) -> Result<Json<ConnectorList>, ApiError> {
    let page = page.page()?;
    let connectors = state.engine.connectors();
    let views: Vec<ConnectorView> = connectors
        .names()
        .into_iter()
        .filter_map(|name| Some(ConnectorView::of(name, connectors.get(name)?.health())))
        .collect();
    Ok(Json(page.of_sorted(views, |c| c.name.clone()).into()))
}

/// Show one connector's health.
#[utoipa::path(
    get,
    path = "/connectors/{name}",
    tag = "connectors",
    params(("name" = String, Path, description = "The connector's name")),
    responses(
        (status = 200, description = "The connector's health", body = ConnectorView),
        (status = 404, description = "`not_found`: no connector has this name"),
    ),
    security(("bearer" = ["read"]))
)]
async fn show_connector(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let connectors = state.engine.connectors();
    let connector = connectors
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("unknown connector `{name}`")))?;
    Ok(Json(ConnectorView::of(&name, connector.health())))
}
