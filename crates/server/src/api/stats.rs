//! `GET /api/v1/stats`: activity per flow and per connector over a recent
//! window, in fixed buckets, for the dashboard's charts.
//!
//! The answer is columnar: one list of bucket start times, and for each
//! flow and connector one list per figure with a value for every bucket
//! (zero, or `null` for a percentile without samples). That is the shape a
//! chart library plots directly, and it stays small: a flow costs five
//! numbers per bucket however busy it is.
//!
//! Flow figures are read from the store, so they cover every node sharing
//! it and survive restarts. Connector figures come, for the dashboard's
//! window (the last hour, per minute), from this node's connectors: their
//! own per-minute counters of HTTP attempts, retries included, with the
//! latency the upstream really took, the same counters
//! `GET /api/v1/connectors` sums. Those keep one hour in memory, so for any
//! other window or step the connector figures are read from the step
//! journal instead (one call per call step attempt, see
//! [`patchbay_store::Stats`]); `connector_figures` says which.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use patchbay_connector::{Connectors, MinuteStats, WINDOW_MINUTES};
use patchbay_store::{Stats, StatsWindow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// Longest window a caller may ask for.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Shortest bucket.
const MIN_STEP: Duration = Duration::from_secs(10);
/// Most buckets in one answer.
const MAX_BUCKETS: u64 = 1440;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// The window and bucket width, as durations like `90s`, `15m`, `1h`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// How far back to look (default `1h`, at most `24h`).
    // The patterns document a range in which every window and step combine
    // validly (whole hours, whole minutes under an hour); the handler
    // accepts more (`90s`, `15m`) and names the problem when it cannot.
    #[param(pattern = "^(?:(?:[1-9]|1[0-9]|2[0-4])h)?$")]
    window: Option<String>,
    /// Width of a bucket (default `1m`, at least `10s`, at most 1440 buckets).
    #[param(pattern = "^(?:(?:[1-9]|[1-5][0-9])m)?$")]
    step: Option<String>,
}

/// Activity per bucket: see the fields of each series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsAnswer {
    /// Length of the window, in seconds.
    window_seconds: u64,
    /// Width of a bucket, in seconds.
    step_seconds: u64,
    /// Start of every bucket, in seconds since the Unix epoch, oldest
    /// first; the last bucket is the current one, still filling. Every
    /// series below has one value per bucket, in this order.
    buckets: Vec<i64>,
    /// Every configured flow (and any other with activity in the window),
    /// by name.
    flows: Vec<FlowSeries>,
    /// Every configured connector (and any other called in the window), by
    /// name.
    connectors: Vec<ConnectorSeries>,
    /// What a connector's `calls` count: `http_attempts` (this node's
    /// connectors' own counters, every HTTP attempt including retries; used
    /// for windows of at most an hour in one-minute steps) or
    /// `step_attempts` (the journal of every node: one per call step
    /// attempt, its retries inside).
    connector_figures: String,
}

/// One flow's runs per bucket.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowSeries {
    name: String,
    /// Runs accepted.
    started: Vec<u64>,
    /// Runs that ended `succeeded`.
    succeeded: Vec<u64>,
    /// Runs that ended `dead` (dead letters).
    dead: Vec<u64>,
    /// Runs a filter step ended (`skipped`).
    skipped: Vec<u64>,
    /// Runs cancelled.
    cancelled: Vec<u64>,
    /// 95th percentile of the time from acceptance to end of the runs that
    /// ended, in milliseconds; `null` where none ended.
    p95_ms: Vec<Option<u64>>,
    /// The flow's runs that have not ended, now.
    queue: QueueNow,
}

/// A flow's runs that have not ended, as of the answer: with the buckets'
/// started and ended counts, where every run is.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct QueueNow {
    /// Queued and due: waiting only for a free worker.
    ready: u64,
    /// Queued for a run-level retry after a transient failure.
    retrying: u64,
    /// Queued for later without a failure (a `wait` step, or a parent
    /// waiting for its child).
    waiting: u64,
    /// Held by a worker.
    running: u64,
    /// When the soonest retry is due.
    next_retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One connector's calls per bucket (see `connector_figures` for what a
/// call is).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectorSeries {
    name: String,
    /// Calls made.
    calls: Vec<u64>,
    /// Those that failed.
    errors: Vec<u64>,
    /// 95th percentile of their duration, in milliseconds; `null` where
    /// there were no calls.
    p95_ms: Vec<Option<f64>>,
}

/// Per-minute activity of every flow and connector.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "stats",
    params(StatsQuery),
    responses((status = 200, description = "Activity per bucket, oldest first", body = StatsAnswer)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<StatsAnswer>, ApiError> {
    let span = parse_span("window", query.window.as_deref(), Duration::from_secs(3600))?;
    let step = parse_span("step", query.step.as_deref(), Duration::from_secs(60))?;
    if span > MAX_WINDOW {
        return Err(ApiError::bad_request("`window` may be at most 24h"));
    }
    if step < MIN_STEP || step > span {
        return Err(ApiError::bad_request(
            "`step` must be at least 10s and at most the window",
        ));
    }
    if span.as_secs() / step.as_secs() > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!(
            "`window` / `step` makes more than {MAX_BUCKETS} buckets"
        )));
    }
    let window = StatsWindow::last(span, step);
    let stats = state
        .engine
        .store()
        .stats(&window)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let plan = state.engine.plan();
    let flows = plan.flows.keys().cloned();
    let live = live_covers(span, step).then(|| recent_calls(&state.engine.connectors()));
    Ok(Json(columns(&window, &stats, flows, live)))
}

/// Whether the connectors' own counters cover the window: they keep
/// [`WINDOW_MINUTES`] one-minute buckets.
fn live_covers(span: Duration, step: Duration) -> bool {
    step == Duration::from_secs(60) && span <= Duration::from_secs(60 * WINDOW_MINUTES as u64)
}

/// Every connector's calls per minute, as its own counters hold them.
fn recent_calls(connectors: &Connectors) -> Vec<(String, Vec<MinuteStats>)> {
    connectors
        .names()
        .into_iter()
        .filter_map(|name| {
            let minutes = connectors.get(name)?.recent_minutes(WINDOW_MINUTES);
            Some((name.to_string(), minutes))
        })
        .collect()
}

/// Turns the sparse buckets into one value per bucket. Connector figures
/// come from `live` (each connector's calls per minute) when given, else
/// from the journal's figures in `stats`.
fn columns(
    window: &StatsWindow,
    stats: &Stats,
    configured: impl Iterator<Item = String>,
    live: Option<Vec<(String, Vec<MinuteStats>)>>,
) -> StatsAnswer {
    let starts = window.buckets();
    let slot: BTreeMap<i64, usize> = starts
        .iter()
        .enumerate()
        .map(|(i, start)| (start.timestamp_millis(), i))
        .collect();
    let n = starts.len();

    let mut flows: BTreeMap<String, FlowSeries> = configured
        .map(|name| (name.clone(), FlowSeries::empty(name, n)))
        .collect();
    for bucket in &stats.flows {
        let Some(&i) = slot.get(&bucket.start.timestamp_millis()) else {
            continue;
        };
        let series = flows
            .entry(bucket.flow.clone())
            .or_insert_with(|| FlowSeries::empty(bucket.flow.clone(), n));
        series.started[i] = bucket.started;
        series.succeeded[i] = bucket.succeeded;
        series.dead[i] = bucket.dead;
        series.skipped[i] = bucket.skipped;
        series.cancelled[i] = bucket.cancelled;
        series.p95_ms[i] = bucket.p95_ms;
    }
    for queue in &stats.queues {
        let series = flows
            .entry(queue.flow.clone())
            .or_insert_with(|| FlowSeries::empty(queue.flow.clone(), n));
        series.queue = QueueNow {
            ready: queue.ready,
            retrying: queue.retrying,
            waiting: queue.waiting,
            running: queue.running,
            next_retry_at: queue.next_retry_at,
        };
    }

    let mut connectors: BTreeMap<String, ConnectorSeries> = BTreeMap::new();
    let empty = |name: &str| ConnectorSeries {
        name: name.to_string(),
        calls: vec![0; n],
        errors: vec![0; n],
        p95_ms: vec![None; n],
    };
    let connector_figures = match live {
        Some(live) => {
            for (name, minutes) in live {
                let series = connectors
                    .entry(name.clone())
                    .or_insert_with(|| empty(&name));
                for minute in minutes {
                    let Some(&i) = slot.get(&(minute.minute as i64 * 1000)) else {
                        continue;
                    };
                    series.calls[i] = minute.calls;
                    series.errors[i] = minute.errors;
                    series.p95_ms[i] = minute.p95_ms;
                }
            }
            "http_attempts"
        }
        None => {
            for bucket in &stats.connectors {
                let Some(&i) = slot.get(&bucket.start.timestamp_millis()) else {
                    continue;
                };
                let series = connectors
                    .entry(bucket.connector.clone())
                    .or_insert_with(|| empty(&bucket.connector));
                series.calls[i] = bucket.calls;
                series.errors[i] = bucket.errors;
                series.p95_ms[i] = bucket.p95_ms.map(|ms| ms as f64);
            }
            "step_attempts"
        }
    };

    StatsAnswer {
        window_seconds: (window.until - window.since).num_seconds().max(0) as u64,
        step_seconds: window.step.as_secs(),
        buckets: starts.iter().map(|s| s.timestamp()).collect(),
        flows: flows.into_values().collect(),
        connectors: connectors.into_values().collect(),
        connector_figures: connector_figures.to_string(),
    }
}

impl FlowSeries {
    fn empty(name: String, n: usize) -> FlowSeries {
        FlowSeries {
            name,
            started: vec![0; n],
            succeeded: vec![0; n],
            dead: vec![0; n],
            skipped: vec![0; n],
            cancelled: vec![0; n],
            p95_ms: vec![None; n],
            queue: QueueNow::default(),
        }
    }
}

/// `90s`, `15m`, `1h`, `1d`: a whole number and a unit.
fn parse_span(name: &str, text: Option<&str>, default: Duration) -> Result<Duration, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    let invalid = || {
        ApiError::bad_request(format!(
            "`{name}` must be a whole number and a unit (s, m, h or d), like `15m`; got `{text}`"
        ))
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    match number.checked_mul(unit) {
        Some(0) | None => Err(invalid()),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use patchbay_store::{ConnectorBucket, FlowBucket, FlowQueue};

    use super::*;

    #[test]
    fn spans_parse_with_units_and_refuse_the_rest() {
        let default = Duration::from_secs(7);
        assert_eq!(parse_span("w", None, default).unwrap(), default);
        assert_eq!(parse_span("w", Some("90s"), default).unwrap().as_secs(), 90);
        assert_eq!(
            parse_span("w", Some("15m"), default).unwrap().as_secs(),
            900
        );
        assert_eq!(
            parse_span("w", Some("1h"), default).unwrap().as_secs(),
            3600
        );
        assert_eq!(
            parse_span("w", Some("1d"), default).unwrap().as_secs(),
            86_400
        );
        for bad in [
            "h",
            "1",
            "0m",
            "1.5h",
            "-1h",
            "1 h",
            "1w",
            "99999999999999999999h",
        ] {
            let error = parse_span("w", Some(bad), default).unwrap_err();
            assert_eq!(error.code, "invalid_request", "{bad}");
        }
    }

    #[test]
    fn sparse_buckets_become_columns_with_every_configured_flow() {
        let window = StatsWindow::last(Duration::from_secs(600), Duration::from_secs(60));
        let buckets = window.buckets();
        let stats = Stats {
            flows: vec![FlowBucket {
                flow: "orders".into(),
                start: buckets[9],
                started: 3,
                succeeded: 2,
                dead: 1,
                skipped: 0,
                cancelled: 0,
                p95_ms: Some(40),
            }],
            connectors: vec![ConnectorBucket {
                connector: "crm".into(),
                start: buckets[0],
                calls: 5,
                errors: 1,
                p95_ms: Some(12),
            }],
            queues: vec![FlowQueue {
                flow: "orders".into(),
                ready: 1,
                retrying: 2,
                waiting: 0,
                running: 3,
                next_retry_at: None,
            }],
        };
        let answer = columns(
            &window,
            &stats,
            ["idle".to_string(), "orders".to_string()].into_iter(),
            None,
        );
        assert_eq!(answer.buckets.len(), 10);
        assert_eq!(answer.step_seconds, 60);
        assert_eq!(answer.window_seconds, 600);
        assert_eq!(answer.buckets[9], buckets[9].timestamp());
        let names: Vec<_> = answer.flows.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["idle", "orders"]);
        assert!(answer.flows[0].started.iter().all(|n| *n == 0));
        let orders = &answer.flows[1];
        assert_eq!(orders.started[9], 3);
        assert_eq!(orders.dead[9], 1);
        assert_eq!(orders.p95_ms[9], Some(40));
        assert_eq!(orders.p95_ms[8], None);
        assert_eq!(
            (
                orders.queue.ready,
                orders.queue.retrying,
                orders.queue.running
            ),
            (1, 2, 3)
        );
        assert_eq!(answer.flows[0].queue.running, 0, "idle has no queue");
        let crm = &answer.connectors[0];
        assert_eq!(
            (crm.calls[0], crm.errors[0], crm.p95_ms[0]),
            (5, 1, Some(12.0))
        );
        assert_eq!(crm.calls.len(), 10);
        assert_eq!(answer.connector_figures, "step_attempts");

        // The connectors' own counters replace the journal's figures, and
        // a connector without calls still gets its (empty) series.
        let minute = |start: &chrono::DateTime<chrono::Utc>, calls| MinuteStats {
            minute: start.timestamp() as u64,
            calls,
            errors: 1,
            p50_ms: Some(1.5),
            p95_ms: Some(3.5),
        };
        let live = vec![
            ("chat".to_string(), vec![]),
            (
                "crm".to_string(),
                vec![minute(&buckets[8], 7), minute(&buckets[9], 2)],
            ),
        ];
        let answer = columns(&window, &stats, std::iter::empty(), Some(live));
        assert_eq!(answer.connector_figures, "http_attempts");
        let names: Vec<_> = answer.connectors.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["chat", "crm"]);
        let crm = &answer.connectors[1];
        assert_eq!(&crm.calls[7..], [0, 7, 2]);
        assert_eq!(crm.p95_ms[9], Some(3.5));
        assert_eq!(
            crm.p95_ms[0], None,
            "the journal's figures are not mixed in"
        );
        assert!(answer.connectors[0].calls.iter().all(|c| *c == 0));
        assert!(live_covers(
            Duration::from_secs(3600),
            Duration::from_secs(60)
        ));
        assert!(!live_covers(
            Duration::from_secs(7200),
            Duration::from_secs(60)
        ));
        assert!(!live_covers(
            Duration::from_secs(3600),
            Duration::from_secs(300)
        ));
    }
}
