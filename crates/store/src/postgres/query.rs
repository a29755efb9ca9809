//! Read-only views of runs and the queue on PostgreSQL: one run, filtered
//! listings, counts per flow and status, and the queue depth behind the
//! queue metrics. Semantics are those of the `Store` trait and of
//! `crate::sqlite::query` and `depth`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use sqlx::AssertSqlSafe;
use sqlx::PgPool;

use super::codec::{RUN_COLUMNS, get, id_floor, parse_status, parse_u64, run_from_row};
use crate::{QueueDepth, Run, RunFilter, RunId, RunStatus, StatusCount, StoreError};

/// Page size when the filter does not name one.
pub(super) const DEFAULT_LIMIT: u32 = 50;
/// Largest page a caller can ask for.
pub(super) const MAX_LIMIT: u32 = 1000;

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

pub(super) async fn list_runs(pool: &PgPool, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };

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

/// The text of [`list_runs`]'s statement for `filter`: a condition per
/// filter given, in the order the values are bound, then the page size.
fn listing_sql(filter: &RunFilter) -> String {
    // Assembled only from the fixed fragments below, never from filter
    // values (those are bound); each combination of filters is its own
    // statement, prepared once per connection.
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs");
    let mut conditions = Vec::new();
    let mut param = 0;
    let mut next = |column: &str, op: &str| {
        param += 1;
        format!("{column} {op} ${param}")
    };
    if filter.flow.is_some() {
        conditions.push(next("flow", "="));
    }
    if let Some(status) = filter.status {
        conditions.push(next("status", "="));
        // A generic plan cannot prove `status = $n` implies the predicate
        // of the partial `runs_unsucceeded` index; spelling it out can.
        if status != RunStatus::Succeeded {
            conditions.push("status <> 'succeeded'".into());
        }
    }
    if filter.before.is_some() {
        conditions.push(next("id", "<"));
    }
    // Ids are UUIDv7, led by their creation time in milliseconds: a time
    // bound is an id bound, served by the primary key like the paging.
    if filter.since.is_some() {
        conditions.push(next("id", ">="));
    }
    if filter.until.is_some() {
        conditions.push(next("id", "<"));
    }
    if filter.error_contains.is_some() {
        // The needle is bound already folded; `strpos` takes it as plain
        // text, where `LIKE` would read `%` and `_` as patterns.
        param += 1;
        conditions.push(format!(
            "strpos(translate(error, '{ASCII_UPPER}', '{ASCII_LOWER}'), ${param}) > 0"
        ));
    }
    let limit_param = param + 1;
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    // Writing to a String cannot fail.
    let _ = write!(sql, " ORDER BY id DESC LIMIT ${limit_param}");
    sql
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
