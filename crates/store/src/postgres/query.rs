//! Read-only views of runs and the queue on PostgreSQL: one run, filtered
//! listings, counts per flow and status, and the queue depth behind the
//! queue metrics. Semantics are those of the `Store` trait and of
//! `crate::sqlite::query` and `depth`.

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;
use sqlx::PgPool;

use super::codec::{RUN_COLUMNS, get, id_floor, parse_status, parse_u64, run_from_row};
use crate::{InputEdit, QueueDepth, Run, RunFilter, RunId, StatusCount, StoreError};

static SELECT_RUN: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"));

/// Names sort by their bytes (`COLLATE "C"`), as in SQLite, whatever the
/// database's default collation.
const COUNT_RUNS: &str = "\
SELECT flow, status, COUNT(*) AS count FROM runs GROUP BY flow, status \
ORDER BY flow COLLATE \"C\", status COLLATE \"C\"";

/// Every part is served by a partial index of unfinished runs:
/// `runs_ready` for queued runs by due time, `runs_lease` for running ones.
const QUEUE_DEPTH: &str = "\
SELECT
  (SELECT COUNT(*) FROM runs WHERE status = 'queued' AND next_attempt_at <= $1) AS ready,
  (SELECT MIN(next_attempt_at) FROM runs WHERE status = 'queued' AND next_attempt_at <= $1)
    AS oldest,
  (SELECT COUNT(*) FROM runs WHERE status = 'queued' AND next_attempt_at > $1) AS delayed,
  (SELECT COUNT(*) FROM runs WHERE status = 'running') AS running";

/// ASCII letters only, as SQLite's `lower()` folds them: PostgreSQL's
/// `lower()` follows the locale and would fold other letters too.
const ASCII_UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ASCII_LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

pub(super) async fn run(pool: &PgPool, run: RunId) -> Result<Option<Run>, StoreError> {
    let row = sqlx::query(SELECT_RUN.as_str())
        .bind(run)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

/// Through `runs_unsucceeded` (status, id) for every status but
/// `succeeded`, whose runs are not grouped by error.
const ERROR_GROUPS: &str = "\
SELECT flow, error, COUNT(*) AS count, MAX(id::text)::uuid AS latest_run,
       MAX(updated_at) AS latest_at
FROM runs
WHERE status = $1 AND status <> 'succeeded' AND error IS NOT NULL
  AND ($2::text IS NULL OR flow = $2)
GROUP BY flow, error
ORDER BY count DESC, flow COLLATE \"C\", error COLLATE \"C\"
LIMIT $3";

pub(super) async fn error_groups(
    pool: &PgPool,
    status: crate::RunStatus,
    flow: Option<&str>,
    limit: u32,
) -> Result<Vec<crate::ErrorGroup>, StoreError> {
    let rows: Vec<(String, String, i64, RunId, i64)> = sqlx::query_as(ERROR_GROUPS)
        .bind(status.as_str())
        .bind(flow)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(flow, error, count, latest_run, at)| {
            Ok(crate::ErrorGroup {
                flow,
                error,
                count: u64::try_from(count).unwrap_or(0),
                latest_run,
                latest_at: crate::rows::parse_time("runs.updated_at", at)?,
            })
        })
        .collect()
}

const INPUT_EDITS: &str =
    "SELECT edited_at, previous FROM input_edits WHERE run_id = $1 ORDER BY n";

pub(super) async fn input_edits(pool: &PgPool, run: RunId) -> Result<Vec<InputEdit>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(INPUT_EDITS)
        .bind(run)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(at, previous)| {
            Ok(InputEdit {
                edited_at: crate::rows::parse_time("input_edits.edited_at", at)?,
                previous: serde_json::from_str(&previous).map_err(|e| StoreError::Corrupt {
                    what: "input_edits.previous",
                    detail: e.to_string(),
                })?,
            })
        })
        .collect()
}

pub(super) async fn list_runs(pool: &PgPool, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let limit = crate::listing::page_limit(filter.limit);

    let sql = listing_sql(filter);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(flow) = &filter.flow {
        query = query.bind(flow);
    }
    if let Some(status) = filter.status {
        query = query.bind(status.as_str());
    }
    if let Some(before) = filter.before {
        query = query.bind(before);
    }
    if let Some(since) = filter.since {
        query = query.bind(id_floor(since.timestamp_millis()));
    }
    if let Some(until) = filter.until {
        query = query.bind(id_floor(until.timestamp_millis()));
    }
    if let Some(text) = &filter.error_contains {
        query = query.bind(text.to_ascii_lowercase());
    }
    let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
    rows.iter().map(run_from_row).collect()
}

/// The text of [`list_runs`]'s statement for `filter`, in PostgreSQL's dialect.
fn listing_sql(filter: &RunFilter) -> String {
    crate::listing::runs_sql(
        &format!("SELECT {RUN_COLUMNS} FROM runs"),
        filter,
        |param| {
            // The needle is bound already folded; `strpos` takes it as plain
            // text, where `LIKE` would read `%` and `_` as patterns.
            format!("strpos(translate(error, '{ASCII_UPPER}', '{ASCII_LOWER}'), ${param}) > 0")
        },
        "LIMIT $",
    )
}

pub(super) async fn count_runs(pool: &PgPool) -> Result<Vec<StatusCount>, StoreError> {
    let rows = sqlx::query(COUNT_RUNS).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(StatusCount {
                flow: get(row, "runs.flow")?,
                status: parse_status("runs.status", &get::<String>(row, "runs.status")?)?,
                count: parse_u64("runs.count", get(row, "runs.count")?)?,
            })
        })
        .collect()
}

/// The depth at `now` (unix milliseconds): runs due by then are ready.
pub(super) async fn queue_depth(pool: &PgPool, now: i64) -> Result<QueueDepth, StoreError> {
    let row = sqlx::query(QUEUE_DEPTH).bind(now).fetch_one(pool).await?;
    crate::rows::depth_from_row(&row)
}
