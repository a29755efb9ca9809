//! Decoding rows into the store's types, the same for SQLite and
//! PostgreSQL: both stores keep times as unix milliseconds and counts as
//! integers, and read them back through sqlx's `Row`, so one decoder serves
//! both. Anything read back is untrusted: a value that does not decode
//! becomes [`StoreError::Corrupt`] naming its column, never a panic.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{
    ConnectorBucket, Drift, DriftKind, Endpoint, FlowBucket, QueueDepth, SecretInfo, Stats,
    StoreError,
};

pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// The column named by `what` (`table.column`): the part after the dot.
pub(crate) fn column_of(what: &'static str) -> &'static str {
    what.rsplit('.').next().unwrap_or(what)
}

/// Reads column `what` (`table.column`; the row is looked up by the part
/// after the dot), reporting a value of the wrong type as corrupt.
pub(crate) fn get<'r, R, T>(row: &'r R, what: &'static str) -> Result<T, StoreError>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    row.try_get(column_of(what)).map_err(|e| match e {
        sqlx::Error::ColumnDecode { source, .. } => corrupt(what, source),
        other => StoreError::Query(other),
    })
}

pub(crate) fn parse_time(what: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(what, format!("{ms} ms is out of range")))
}

pub(crate) fn parse_opt_time(
    what: &'static str,
    ms: Option<i64>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|ms| parse_time(what, ms)).transpose()
}

pub(crate) fn parse_u64(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, format!("{value} is not a valid count")))
}

/// [`Stats`] from the rows of the three statistics queries, which both
/// stores name alike: `started` (`flow`, `start`, `started`), `ended`
/// (`flow`, `start`, `succeeded`, `dead`, `skipped`, `p95`), both ordered by
/// flow then start, and `calls` (`connector`, `start`, `calls`, `errors`,
/// `p95`).
pub(crate) fn stats_from_rows<R>(
    started: &[R],
    ended: &[R],
    calls: &[R],
    queues: &[R],
) -> Result<Stats, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Stats {
        flows: merge_flows(started, ended)?,
        connectors: calls
            .iter()
            .map(|row| {
                Ok(ConnectorBucket {
                    connector: get(row, "journal.connector")?,
                    start: parse_time("journal.start", get(row, "journal.start")?)?,
                    calls: parse_u64("journal.calls", get(row, "journal.calls")?)?,
                    errors: parse_u64("journal.errors", get(row, "journal.errors")?)?,
                    p95_ms: p95(row, "journal.p95")?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        queues: queues
            .iter()
            .map(|row| {
                Ok(crate::FlowQueue {
                    flow: get(row, "runs.flow")?,
                    ready: parse_u64("runs.ready", get(row, "runs.ready")?)?,
                    retrying: parse_u64("runs.retrying", get(row, "runs.retrying")?)?,
                    waiting: parse_u64("runs.waiting", get(row, "runs.waiting")?)?,
                    running: parse_u64("runs.running", get(row, "runs.running")?)?,
                    next_retry_at: get::<R, Option<i64>>(row, "runs.next_retry")?
                        .map(|ms| parse_time("runs.next_retry", ms))
                        .transpose()?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
    })
}

fn p95<R>(row: &R, what: &'static str) -> Result<Option<u64>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    get::<R, Option<i64>>(row, what)?
        .map(|ms| parse_u64(what, ms))
        .transpose()
}

/// Joins the started and ended rows (both ordered by flow, then start) into
/// one bucket per flow and start.
fn merge_flows<R>(started: &[R], ended: &[R]) -> Result<Vec<FlowBucket>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut buckets: Vec<FlowBucket> = Vec::with_capacity(started.len().max(ended.len()));
    for row in started {
        let mut bucket = empty(row)?;
        bucket.started = parse_u64("runs.started", get(row, "runs.started")?)?;
        buckets.push(bucket);
    }
    for row in ended {
        let key = empty(row)?;
        let at = match buckets.binary_search_by(|b| (&b.flow, b.start).cmp(&(&key.flow, key.start)))
        {
            Ok(at) => at,
            Err(at) => {
                buckets.insert(at, key);
                at
            }
        };
        let bucket = &mut buckets[at];
        bucket.succeeded = parse_u64("runs.succeeded", get(row, "runs.succeeded")?)?;
        bucket.dead = parse_u64("runs.dead", get(row, "runs.dead")?)?;
        bucket.skipped = parse_u64("runs.skipped", get(row, "runs.skipped")?)?;
        bucket.cancelled = parse_u64("runs.cancelled", get(row, "runs.cancelled")?)?;
        bucket.p95_ms = p95(row, "runs.p95")?;
    }
    Ok(buckets)
}

/// A bucket with no activity yet, keyed by the row's flow and start.
fn empty<R>(row: &R) -> Result<FlowBucket, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(FlowBucket {
        flow: get(row, "runs.flow")?,
        start: parse_time("runs.start", get(row, "runs.start")?)?,
        started: 0,
        succeeded: 0,
        dead: 0,
        skipped: 0,
        cancelled: 0,
        p95_ms: None,
    })
}

/// A contract drift record from a row of `contract_drift`.
pub(crate) fn drift_from_row<R>(row: &R) -> Result<Drift, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let count: i64 = get(row, "contract_drift.count")?;
    Ok(Drift {
        kind: DriftKind {
            connector: get(row, "contract_drift.connector")?,
            operation: get(row, "contract_drift.operation")?,
            response: get(row, "contract_drift.response")?,
            pointer: get(row, "contract_drift.pointer")?,
            expected: get(row, "contract_drift.expected")?,
        },
        seen: get(row, "contract_drift.seen")?,
        first_seen: parse_time(
            "contract_drift.first_seen",
            get(row, "contract_drift.first_seen")?,
        )?,
        last_seen: parse_time(
            "contract_drift.last_seen",
            get(row, "contract_drift.last_seen")?,
        )?,
        count: u64::try_from(count).unwrap_or(0),
        example: get(row, "contract_drift.example")?,
    })
}

pub(crate) fn endpoint_from_row<R>(row: &R) -> Result<Endpoint, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: Option<i64> = get(row, "endpoints.last_status")?;
    Ok(Endpoint {
        name: get(row, "endpoints.name")?,
        failing_since: parse_opt_time(
            "endpoints.failing_since",
            get(row, "endpoints.failing_since")?,
        )?,
        disabled_at: parse_opt_time("endpoints.disabled_at", get(row, "endpoints.disabled_at")?)?,
        last_attempt_at: parse_time(
            "endpoints.last_attempt_at",
            get(row, "endpoints.last_attempt_at")?,
        )?,
        last_status: status
            .map(|s| u16::try_from(s).map_err(|_| corrupt("endpoints.last_status", "not a status")))
            .transpose()?,
        last_error: get(row, "endpoints.last_error")?,
        delivered: parse_u64("endpoints.delivered", get(row, "endpoints.delivered")?)?,
        failed: parse_u64("endpoints.failed", get(row, "endpoints.failed")?)?,
    })
}

/// The queue's depth from the row of the depth query (`ready`, `delayed`,
/// `running`, `oldest`).
pub(crate) fn depth_from_row<R>(row: &R) -> Result<QueueDepth, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let count = |name: &'static str| -> Result<u64, StoreError> {
        parse_u64(name, get::<R, i64>(row, name)?)
    };
    let oldest: Option<i64> = get(row, "oldest")?;
    Ok(QueueDepth {
        ready: count("ready")?,
        delayed: count("delayed")?,
        running: count("running")?,
        oldest_ready_since: parse_opt_time("oldest", oldest)?,
    })
}

/// A secret's name and update time, as both stores list them.
pub(crate) fn secret_info((name, updated_at): (String, i64)) -> SecretInfo {
    SecretInfo {
        name,
        updated_at: DateTime::from_timestamp_millis(updated_at).unwrap_or_default(),
    }
}

/// [`crate::StepTotal`]s from `(step, succeeded, failed, skipped)` rows.
pub(crate) fn step_totals(rows: Vec<(String, i64, i64, i64)>) -> Vec<crate::StepTotal> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    rows.into_iter()
        .map(|(step, succeeded, failed, skipped)| crate::StepTotal {
            step,
            succeeded: count(succeeded),
            failed: count(failed),
            skipped: count(skipped),
        })
        .collect()
}
