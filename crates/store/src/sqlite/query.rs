//! Read-only views of runs: one run, filtered listings and counts.
//!
//! These run on the reader pool and never block the writer.

use std::fmt::Write as _;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use super::codec::{get, id_bytes, id_floor, parse_status, parse_u64, run_columns, run_from_row};
use crate::{Run, RunFilter, RunId, RunStatus, StatusCount, StoreError};

/// Page size when the filter does not name one.
pub(super) const DEFAULT_LIMIT: u32 = 50;
/// Largest page a caller can ask for.
pub(super) const MAX_LIMIT: u32 = 1000;

const SELECT_RUN: &str = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1");

const COUNT_RUNS: &str = "\
SELECT flow, status, COUNT(*) AS count FROM runs GROUP BY flow, status ORDER BY flow, status";

pub(super) async fn run(reader: &SqlitePool, run: RunId) -> Result<Option<Run>, StoreError> {
    let row = sqlx::query(SELECT_RUN)
        .bind(id_bytes(run))
        .fetch_optional(reader)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

pub(super) async fn list_runs(
    reader: &SqlitePool,
    filter: &RunFilter,
) -> Result<Vec<Run>, StoreError> {
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
        query = query.bind(id_bytes(before));
    }
    if let Some(since) = filter.since {
        query = query.bind(id_floor(since.timestamp_millis()));
    }
    if let Some(until) = filter.until {
        query = query.bind(id_floor(until.timestamp_millis()));
    }
    if let Some(text) = &filter.error_contains {
        query = query.bind(text);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(reader).await?;
    rows.iter().map(run_from_row).collect()
}

/// The text of [`list_runs`]'s statement for `filter`: a condition per
/// filter given, in the order the values are bound, then the page size.
fn listing_sql(filter: &RunFilter) -> String {
    // The text is assembled only from the fixed fragments below, never from
    // filter values (those are bound), so it is safe to hand to SQLite. Each
    // combination of filters yields its own text, which the connection
    // prepares once and caches like any static statement.
    let mut sql = String::from(concat!("SELECT ", run_columns!(), " FROM runs"));
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
        // Repeats the condition of the partial `runs_unsucceeded` index, so
        // SQLite may use it (it does not infer it from `status = $n`).
        if status != RunStatus::Succeeded {
            conditions.push("status <> 'succeeded'".into());
        }
    }
    if filter.before.is_some() {
        conditions.push(next("id", "<"));
    }
    // Ids are UUIDv7 bytes, led by their creation time in milliseconds: a
    // time bound is an id bound, served by the id's index like the paging.
    if filter.since.is_some() {
        conditions.push(next("id", ">="));
    }
    if filter.until.is_some() {
        conditions.push(next("id", "<"));
    }
    if filter.error_contains.is_some() {
        param += 1;
        conditions.push(format!("instr(lower(error), lower(${param})) > 0"));
    }
    let limit_param = param + 1;
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    // Writing to a String cannot fail.
    let _ = write!(sql, " ORDER BY id DESC LIMIT +${limit_param}");

    sql
}

pub(super) async fn count_runs(reader: &SqlitePool) -> Result<Vec<StatusCount>, StoreError> {
    let rows = sqlx::query(COUNT_RUNS).fetch_all(reader).await?;
    rows.iter()
        .map(|row| {
            Ok(StatusCount {
                flow: get(row, "runs.flow")?,
                status: parse_status("runs.status", get(row, "runs.status")?)?,
                count: parse_u64("runs.count", get(row, "runs.count")?)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listing by a status other than `succeeded` walks the partial index
    /// of those runs; `succeeded` walks the primary key backwards.
    #[tokio::test]
    async fn a_listing_by_status_reads_an_index() {
        let (_dir, path) = super::super::tests::migrated_store().await;
        for status in [RunStatus::Dead, RunStatus::Queued, RunStatus::Cancelled] {
            let filter = RunFilter {
                status: Some(status),
                ..RunFilter::default()
            };
            let plan = super::super::tests::plan(&path, &listing_sql(&filter));
            assert!(
                plan.iter().any(|step| step.contains("runs_unsucceeded")),
                "{status:?}: {plan:?}"
            );
        }
        let filter = RunFilter {
            status: Some(RunStatus::Succeeded),
            ..RunFilter::default()
        };
        let plan = super::super::tests::plan(&path, &listing_sql(&filter));
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}
