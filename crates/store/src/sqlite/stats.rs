//! Bucketed activity for the dashboard ([`crate::Stats`]), computed inside
//! SQLite so only one row per name and bucket leaves the database.
//!
//! Every statement reaches its rows through an index, however long the
//! retention keeps history:
//! - runs started: the index of run ids, because ids are UUIDv7 whose
//!   bytes begin with the creation time, so a time bound is also an id
//!   bound;
//! - runs ended: the partial `runs_finished` index on `finished_at`;
//! - connector calls: a journal entry is only written while its run is
//!   running, so an entry that started in the window belongs to a run that
//!   ended in the window or has not ended yet (queued again or running);
//!   those runs come from `runs_finished`, `runs_ready` and `runs_lease`,
//!   and their
//!   entries from the key range of each run's `seq`. The journal has no time index of its own:
//!   that would cost every step's insert a third B-tree for a query the
//!   dashboard makes every few seconds at most.
//!
//! The 95th percentile is the nearest rank: the value at position
//! ⌈0.95·n⌉ of the bucket's sorted values, found with window functions.

use sqlx::sqlite::SqlitePool;

use super::codec::{id_floor, millis};
use crate::{Stats, StatsWindow, StoreError};

/// How much earlier than its `created_at` a run's id may have been drawn:
/// the id is made when the event arrives, `created_at` when its batch
/// commits. Generous, since it only widens the index range scanned.
const ID_SLACK_MS: i64 = 60_000;

/// Runs started per flow and bucket. `$1` since, `$2` until, `$3` step (all
/// milliseconds), `$4` the lowest id a run created since `$1` can have.
/// `MATERIALIZED` keeps SQLite on the id range: left to itself it walks all
/// of `runs_flow` to save the grouping's sort.
const STARTED: &str = "\
WITH created AS MATERIALIZED (
    SELECT flow, created_at FROM runs
    WHERE id >= $4 AND created_at >= $1 AND created_at < $2
)
SELECT flow, $1 + (created_at - $1) / $3 * $3 AS start, COUNT(*) AS started
FROM created
GROUP BY flow, start
ORDER BY flow, start";

/// Runs ended per flow and bucket, by final status, with the 95th
/// percentile of their creation-to-end time.
const ENDED: &str = "\
WITH ended AS (
    SELECT flow, status, $1 + (finished_at - $1) / $3 * $3 AS start,
           MAX(finished_at - created_at, 0) AS duration
    FROM runs
    WHERE finished_at >= $1 AND finished_at < $2
), ranked AS (
    SELECT flow, status, start, duration,
           ROW_NUMBER() OVER (PARTITION BY flow, start ORDER BY duration) AS rank,
           COUNT(*) OVER (PARTITION BY flow, start) AS n
    FROM ended
)
SELECT flow, start,
       SUM(status = 'succeeded') AS succeeded,
       SUM(status = 'dead') AS dead,
       SUM(status = 'skipped') AS skipped,
       SUM(status = 'cancelled') AS cancelled,
       MAX(CASE WHEN rank = (n * 95 + 99) / 100 THEN duration END) AS p95
FROM ranked
GROUP BY flow, start
ORDER BY flow, start";

/// Step attempts per connector and bucket (see the module doc for how the
/// runs are found), with failures and the 95th percentile of their duration.
const CALLS: &str = "\
WITH touched AS (
    SELECT seq FROM runs WHERE finished_at >= $1
    UNION
    SELECT seq FROM runs WHERE status = 'queued'
    UNION
    SELECT seq FROM runs WHERE status = 'running'
), calls AS (
    SELECT json_extract(j.request, '$.connector') AS connector,
           $1 + (j.started_at - $1) / $3 * $3 AS start,
           j.status AS status, j.duration_ms AS duration
    FROM touched
    JOIN journal AS j ON j.key BETWEEN touched.seq * 1048576 AND touched.seq * 1048576 + 1048575
    WHERE j.started_at >= $1 AND j.started_at < $2 AND j.request IS NOT NULL
), ranked AS (
    SELECT connector, start, status, duration,
           ROW_NUMBER() OVER (PARTITION BY connector, start ORDER BY duration) AS rank,
           COUNT(*) OVER (PARTITION BY connector, start) AS n
    FROM calls
    WHERE connector IS NOT NULL
)
SELECT connector, start, COUNT(*) AS calls, SUM(status = 'failed') AS errors,
       MAX(CASE WHEN rank = (n * 95 + 99) / 100 THEN duration END) AS p95
FROM ranked
GROUP BY connector, start
ORDER BY connector, start";

/// Each flow's queued and running runs now (`$1`), through the partial
/// indexes of each status.
const QUEUES: &str = "\
WITH live AS (
    SELECT flow, status, next_attempt_at, retries FROM runs WHERE status = 'queued'
    UNION ALL
    SELECT flow, status, next_attempt_at, retries FROM runs WHERE status = 'running'
)
SELECT flow,
       SUM(status = 'queued' AND next_attempt_at <= $1) AS ready,
       SUM(status = 'queued' AND next_attempt_at > $1 AND retries > 0) AS retrying,
       SUM(status = 'queued' AND next_attempt_at > $1 AND retries = 0) AS waiting,
       SUM(status = 'running') AS running,
       MIN(CASE WHEN status = 'queued' AND next_attempt_at > $1 AND retries > 0
                THEN next_attempt_at END) AS next_retry
FROM live
GROUP BY flow
ORDER BY flow";

/// Step attempts of one flow since `$1`, by step: its runs are found as in
/// [`CALLS`], then only the flow's are kept (`+flow`: through the time and
/// status indexes, never `runs_flow`, which would walk the flow's whole
/// history).
const STEPS: &str = "\
WITH touched AS (
    SELECT seq FROM runs WHERE finished_at >= $1 AND +flow = $2
    UNION
    SELECT seq FROM runs WHERE status = 'queued' AND +flow = $2
    UNION
    SELECT seq FROM runs WHERE status = 'running' AND +flow = $2
)
SELECT j.step_id AS step,
       SUM(j.status = 'succeeded') AS succeeded,
       SUM(j.status = 'failed') AS failed,
       SUM(j.status = 'skipped') AS skipped
FROM touched
JOIN journal AS j ON j.key BETWEEN touched.seq * 1048576 AND touched.seq * 1048576 + 1048575
WHERE j.started_at >= $1 AND j.item IS NULL
GROUP BY j.step_id
ORDER BY j.step_id";

pub(super) async fn step_totals(
    reader: &SqlitePool,
    flow: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::StepTotal>, StoreError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(STEPS)
        .bind(millis(since))
        .bind(flow)
        .fetch_all(reader)
        .await?;
    Ok(crate::rows::step_totals(rows))
}

pub(super) async fn stats(
    reader: &SqlitePool,
    window: &StatsWindow,
    now: i64,
) -> Result<Stats, StoreError> {
    let since = millis(window.since);
    let until = millis(window.until);
    let step = i64::try_from(window.step.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let lowest_id = id_floor(since - ID_SLACK_MS);

    let started = sqlx::query(STARTED)
        .bind(since)
        .bind(until)
        .bind(step)
        .bind(lowest_id)
        .fetch_all(reader)
        .await?;
    let ended = sqlx::query(ENDED)
        .bind(since)
        .bind(until)
        .bind(step)
        .fetch_all(reader)
        .await?;
    let calls = sqlx::query(CALLS)
        .bind(since)
        .bind(until)
        .bind(step)
        .fetch_all(reader)
        .await?;

    let queues = sqlx::query(QUEUES).bind(now).fetch_all(reader).await?;

    crate::rows::stats_from_rows(&started, &ended, &calls, &queues)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn id_floor_bounds_uuid_v7_bytes() {
        let at = DateTime::from_timestamp_millis(1_760_000_000_123).unwrap();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        );
        let id = uuid::Uuid::new_v7(ts).as_bytes().to_vec();
        let floor = id_floor(at.timestamp_millis());
        assert!(id.starts_with(&floor), "{id:?} vs {floor:?}");
        assert!(id_floor(at.timestamp_millis() + 1) > id);
        assert!(id_floor(at.timestamp_millis() - 1) < id);
        assert_eq!(id_floor(-5), [0; 6]);
    }

    /// The queries reach runs and journal entries through indexes only: a
    /// full scan would grow with the retention, not the window.
    #[tokio::test]
    async fn no_query_scans_a_whole_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(super::super::SqliteOptions::new(
            dir.path().join("s.db"),
        ))
        .await
        .unwrap();
        for (name, sql, params) in [
            ("STARTED", STARTED, 4),
            ("ENDED", ENDED, 3),
            ("CALLS", CALLS, 3),
            ("STEPS", STEPS, 2),
            ("QUEUES", QUEUES, 1),
        ] {
            let query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
            let query = if params == 1 {
                query.bind(0_i64)
            } else if params == 2 {
                query.bind(0_i64).bind("orders")
            } else {
                let query = query.bind(0_i64).bind(1_i64).bind(60_000_i64);
                if params == 4 { query.bind("0") } else { query }
            };
            let rows = query.fetch_all(&store.reader).await.unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
                .collect();
            assert!(
                !plan
                    .iter()
                    .any(|step| super::super::tests::scans_history(step)),
                "{name} scans a table:\n{}",
                plan.join("\n")
            );
        }
        store.close().await;
    }
}
