//! `/api/v1/connectors`: how each upstream is doing on this node — circuit
//! breaker, rate-limit headroom, the calls of the last minutes, the
//! newest deprecation notice, and the contract drift recorded.
//!
//! These figures live in the node's memory (every node has its own
//! connectors; a restart resets them, a configuration reload keeps them, see
//! `Connectors::carry_over_from`); drift is read from
//! the store, so it covers every node and survives reloads.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use patchbay_connector::{ConnectorHealth, DeprecationNotice};
use patchbay_store::Drift;
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
    /// The API version the connector pins (`api_version`), if any.
    pub api_version: Option<String>,
    pub breaker: Breaker,
    pub rate_limit: RateLimit,
    /// Calls of the last minutes (HTTP attempts, retries included).
    pub recent: Recent,
    /// The last failed call, if any since the connector was built.
    pub last_error: Option<LastError>,
    /// While the upstream asked for a pause (429 or 503 with
    /// `Retry-After`): milliseconds until calls resume.
    pub paused_for_ms: Option<u64>,
    /// The newest `Deprecation` or `Sunset` notice the upstream sent, if
    /// any since the connector was built.
    pub deprecation: Option<Deprecation>,
    /// Contract drift recorded for this connector (see `/api/v1/drift`);
    /// absent without any.
    pub drift: Option<DriftSummary>,
}

/// What an upstream said of an endpoint going away.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deprecation {
    /// The request that got the notice, e.g. `GET /v1/contacts`.
    pub endpoint: String,
    /// The `Deprecation` header as sent (`@1688169599`, a date, `true`).
    pub deprecated: Option<String>,
    /// Since when, when the header holds a date.
    pub deprecated_at: Option<DateTime<Utc>>,
    /// The `Sunset` header as sent.
    pub sunset: Option<String>,
    /// When the endpoint stops answering, when the header parses.
    pub sunset_at: Option<DateTime<Utc>>,
    /// The provider's notice (a `Link` with `rel="deprecation"` or
    /// `"sunset"`).
    pub link: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A connector's contract drift, summed over its kinds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DriftSummary {
    /// Kinds of difference recorded.
    pub kinds: u64,
    /// Replies that showed one, summed over the kinds.
    pub occurrences: u64,
    pub last_seen: DateTime<Utc>,
}

/// The circuit breaker. A connector that keys its breakers
/// (`circuit_breaker.key`) reports the worst of them here, and each in
/// `keyed`.
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
    /// A keyed connector's breakers, open ones first; empty otherwise.
    pub keyed: Vec<KeyedBreaker>,
}

/// One breaker of a connector that keys them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyedBreaker {
    /// The value of `circuit_breaker.key` its calls had.
    pub key: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    pub failure_rate: f64,
    pub calls_in_window: u32,
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

impl DriftSummary {
    fn of(connector: &str, drift: &[Drift]) -> Option<DriftSummary> {
        drift
            .iter()
            .filter(|record| record.kind.connector == connector)
            .fold(None, |summary: Option<DriftSummary>, record| {
                Some(match summary {
                    None => DriftSummary {
                        kinds: 1,
                        occurrences: record.count,
                        last_seen: record.last_seen,
                    },
                    Some(summary) => DriftSummary {
                        kinds: summary.kinds + 1,
                        occurrences: summary.occurrences + record.count,
                        last_seen: summary.last_seen.max(record.last_seen),
                    },
                })
            })
    }
}

impl From<DeprecationNotice> for Deprecation {
    fn from(notice: DeprecationNotice) -> Deprecation {
        Deprecation {
            endpoint: notice.endpoint,
            deprecated: notice.deprecated,
            deprecated_at: notice.deprecated_at,
            sunset: notice.sunset,
            sunset_at: notice.sunset_at,
            link: notice.link,
            first_seen: notice.first_seen,
            last_seen: notice.last_seen,
        }
    }
}

impl ConnectorView {
    fn of(name: &str, health: ConnectorHealth, drift: &[Drift]) -> ConnectorView {
        let now = Instant::now();
        ConnectorView {
            name: name.into(),
            breaker: Breaker {
                state: health.breaker.as_str().into(),
                failure_rate: health.failure_rate,
                calls_in_window: health.calls_in_window,
                retry_in_ms: health.breaker_retry_in.map(millis),
                keyed: health
                    .keyed_breakers
                    .into_iter()
                    .map(|breaker| KeyedBreaker {
                        key: breaker.key,
                        state: breaker.state.as_str().into(),
                        failure_rate: breaker.failure_rate,
                        calls_in_window: breaker.calls,
                        retry_in_ms: breaker.retry_in.map(millis),
                    })
                    .collect(),
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
            deprecation: health.deprecation.map(Deprecation::from),
            drift: DriftSummary::of(name, drift),
            api_version: health.api_version,
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
    let drift = drift_records(&state).await?;
    let connectors = state.engine.connectors();
    let views: Vec<ConnectorView> = connectors
        .names()
        .into_iter()
        .filter_map(|name| {
            Some(ConnectorView::of(
                name,
                connectors.get(name)?.health(),
                &drift,
            ))
        })
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
    let drift = drift_records(&state).await?;
    let connectors = state.engine.connectors();
    let connector = connectors.get(&name).ok_or_else(|| {
        let hint = patchbay_config::suggest_closest(&name, connectors.names())
            .map(|closest| format!(" — did you mean `{closest}`?"))
            .unwrap_or_default();
        ApiError::not_found(format!("unknown connector `{name}`{hint}"))
    })?;
    Ok(Json(ConnectorView::of(&name, connector.health(), &drift)))
}

/// Every drift record (kinds, not replies: a few rows).
async fn drift_records(state: &AppState) -> Result<Vec<Drift>, ApiError> {
    Ok(state
        .engine
        .store()
        .list_drift()
        .await
        .map_err(patchbay_engine::EngineError::from)?)
}
