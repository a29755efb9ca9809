//! Bucketed activity per flow and connector on PostgreSQL ([`crate::Stats`]),
//! computed in the database so only one row per name and bucket leaves it.
//! Semantics are those of `crate::sqlite::stats`.
//!
//! Every statement reaches its rows through an index, however long the
//! retention keeps history:
//! - runs started: the primary key, because ids are UUIDv7 led by the
//!   creation time, so a time bound is also an id bound;
//! - runs ended: the partial `runs_finished` index on `finished_at`;
//! - connector calls: a journal entry is only written while its run is
//!   running, so an entry that started in the window belongs to a run that
//!   ended in the window or has not ended yet (queued again or running);
//!   those runs come from `runs_finished`, `runs_ready` and `runs_lease`,
//!   and their entries from the journal's key, which leads with the run.
//!
//! The 95th percentile is the nearest rank: the value at position
//! ⌈0.95·n⌉ of the bucket's sorted values, found with window functions.
//! Names sort by their bytes (`COLLATE "C"`), as in SQLite: the merge of
//! started and ended rows relies on that order.

use sqlx::PgPool;

use super::codec::id_floor;
use crate::{Stats, StatsWindow, StoreError};

/// How much earlier than its `created_at` a run's id may have been drawn:
/// the id is made when the event arrives, `created_at` when its batch
/// commits. Generous, since it only widens the index range scanned.
const ID_SLACK_MS: i64 = 60_000;

/// Runs started per flow and bucket. `$1` since, `$2` until, `$3` step (all
/// milliseconds), `$4` the lowest id a run created since `$1` can have.
const STARTED: &str = "\
SELECT flow, $1 + (created_at - $1) / $3 * $3 AS start, COUNT(*) AS started
FROM runs
WHERE id >= $4 AND created_at >= $1 AND created_at < $2
GROUP BY flow, start
ORDER BY flow COLLATE \"C\", start";

/// Runs ended per flow and bucket, by final status, with the 95th
/// percentile of their creation-to-end time.
const ENDED: &str = "\
WITH ended AS (
    SELECT flow, status, $1 + (finished_at - $1) / $3 * $3 AS start,
           GREATEST(finished_at - created_at, 0) AS duration
    FROM runs
    WHERE finished_at >= $1 AND finished_at < $2
), ranked AS (
    SELECT flow, status, start, duration,
           ROW_NUMBER() OVER (PARTITION BY flow, start ORDER BY duration) AS rank,
           COUNT(*) OVER (PARTITION BY flow, start) AS n
    FROM ended
)
SELECT flow, start,
       COUNT(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       COUNT(*) FILTER (WHERE status = 'dead') AS dead,
       COUNT(*) FILTER (WHERE status = 'skipped') AS skipped,
       COUNT(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       MAX(CASE WHEN rank = (n * 95 + 99) / 100 THEN duration END) AS p95
FROM ranked
GROUP BY flow, start
ORDER BY flow COLLATE \"C\", start";

/// Step attempts per connector and bucket (see the module doc for how the
/// runs are found), with failures and the 95th percentile of their duration.
const CALLS: &str = "\
WITH touched AS (
    SELECT id FROM runs WHERE finished_at >= $1
    UNION
    SELECT id FROM runs WHERE status = 'queued'
    UNION
    SELECT id FROM runs WHERE status = 'running'
), calls AS (
    SELECT j.request::json ->> 'connector' AS connector,
           $1 + (j.started_at - $1) / $3 * $3 AS start,
           j.status AS status, j.duration_ms AS duration
    FROM touched
    JOIN journal AS j ON j.run_id = touched.id
    WHERE j.started_at >= $1 AND j.started_at < $2 AND j.request IS NOT NULL
), ranked AS (
    SELECT connector, start, status, duration,
           ROW_NUMBER() OVER (PARTITION BY connector, start ORDER BY duration) AS rank,
           COUNT(*) OVER (PARTITION BY connector, start) AS n
    FROM calls
    WHERE connector IS NOT NULL
)
SELECT connector, start, COUNT(*) AS calls,
       COUNT(*) FILTER (WHERE status = 'failed') AS errors,
       MAX(CASE WHEN rank = (n * 95 + 99) / 100 THEN duration END) AS p95
FROM ranked
GROUP BY connector, start
ORDER BY connector COLLATE \"C\", start";

/// Each flow's queued and running runs now (`$1`), through the partial
/// indexes of each status.
const QUEUES: &str = "\
WITH live AS (
    SELECT flow, status, next_attempt_at, retries FROM runs WHERE status = 'queued'
    UNION ALL
    SELECT flow, status, next_attempt_at, retries FROM runs WHERE status = 'running'
)
SELECT flow,
       COUNT(*) FILTER (WHERE status = 'queued' AND next_attempt_at <= $1) AS ready,
       COUNT(*) FILTER (WHERE status = 'queued' AND next_attempt_at > $1 AND retries > 0) AS retrying,
       COUNT(*) FILTER (WHERE status = 'queued' AND next_attempt_at > $1 AND retries = 0) AS waiting,
       COUNT(*) FILTER (WHERE status = 'running') AS running,
       MIN(next_attempt_at) FILTER (WHERE status = 'queued' AND next_attempt_at > $1 AND retries > 0)
           AS next_retry
FROM live
GROUP BY flow
ORDER BY flow COLLATE \"C\"";

/// Step attempts of one flow since `$1`, by step: its runs are found as in
/// [`CALLS`], then only the flow's are kept.
const STEPS: &str = "\
WITH touched AS (
    SELECT id FROM runs WHERE finished_at >= $1 AND flow = $2
    UNION
    SELECT id FROM runs WHERE status = 'queued' AND flow = $2
    UNION
    SELECT id FROM runs WHERE status = 'running' AND flow = $2
)
SELECT j.step_id AS step,
       COUNT(*) FILTER (WHERE j.status = 'succeeded') AS succeeded,
       COUNT(*) FILTER (WHERE j.status = 'failed') AS failed,
       COUNT(*) FILTER (WHERE j.status = 'skipped') AS skipped
FROM touched
JOIN journal AS j ON j.run_id = touched.id
WHERE j.started_at >= $1 AND j.item IS NULL
GROUP BY j.step_id
ORDER BY j.step_id";

pub(super) async fn step_totals(
    pool: &PgPool,
    flow: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::StepTotal>, StoreError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(STEPS)
        .bind(since.timestamp_millis())
        .bind(flow)
        .fetch_all(pool)
        .await?;
    Ok(crate::rows::step_totals(rows))
}

pub(super) async fn stats(
    pool: &PgPool,
    window: &StatsWindow,
    now: i64,
) -> Result<Stats, StoreError> {
    let since = window.since.timestamp_millis();
    let until = window.until.timestamp_millis();
    let step = i64::try_from(window.step.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let lowest_id = id_floor(since.saturating_sub(ID_SLACK_MS));

    // One snapshot for the three statements, so a run that ends between
    // them is not counted as neither started nor ended.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let started = sqlx::query(STARTED)
        .bind(since)
        .bind(until)
        .bind(step)
        .bind(lowest_id)
        .fetch_all(&mut *tx)
        .await?;
    let ended = sqlx::query(ENDED)
        .bind(since)
        .bind(until)
        .bind(step)
        .fetch_all(&mut *tx)
        .await?;
    let calls = sqlx::query(CALLS)
        .bind(since)
        .bind(until)
        .bind(step)
        .fetch_all(&mut *tx)
        .await?;
    let queues = sqlx::query(QUEUES).bind(now).fetch_all(&mut *tx).await?;
    tx.commit().await?;

    crate::rows::stats_from_rows(&started, &ended, &calls, &queues)
}
