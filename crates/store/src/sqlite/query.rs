//! Read-only views of runs: one run, filtered listings and counts.
//!
//! These run on the reader pool and never block the writer.

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use super::codec::{get, id_bytes, id_floor, parse_status, parse_u64, run_columns, run_from_row};
use crate::{InputEdit, Run, RunFilter, RunId, StatusCount, StoreError};

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

/// Through `runs_unsucceeded` (status, id) for every status but
/// `succeeded`, whose runs are not grouped by error.
const ERROR_GROUPS: &str = "\
SELECT flow, error, COUNT(*) AS count, MAX(id) AS latest_run, MAX(updated_at) AS latest_at
FROM runs
WHERE status = ?1 AND status <> 'succeeded' AND error IS NOT NULL AND (?2 IS NULL OR flow = ?2)
GROUP BY flow, error
ORDER BY count DESC, flow, error
LIMIT +?3";

pub(super) async fn error_groups(
    reader: &SqlitePool,
    status: crate::RunStatus,
    flow: Option<&str>,
    limit: u32,
) -> Result<Vec<crate::ErrorGroup>, StoreError> {
    let rows: Vec<(String, String, i64, Vec<u8>, i64)> = sqlx::query_as(ERROR_GROUPS)
        .bind(status.as_str())
        .bind(flow)
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await?;
    rows.into_iter()
        .map(|(flow, error, count, latest, at)| {
            Ok(crate::ErrorGroup {
                flow,
                error,
                count: u64::try_from(count).unwrap_or(0),
                latest_run: super::codec::parse_id_bytes("runs.id", &latest)?,
                latest_at: crate::rows::parse_time("runs.updated_at", at)?,
            })
        })
        .collect()
}

const INPUT_EDITS: &str =
    "SELECT edited_at, previous FROM input_edits WHERE run_id = ?1 ORDER BY rowid";

pub(super) async fn input_edits(
    reader: &SqlitePool,
    run: RunId,
) -> Result<Vec<InputEdit>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(INPUT_EDITS)
        .bind(id_bytes(run))
        .fetch_all(reader)
        .await?;
    rows.into_iter()
        .map(|(at, previous)| {
            Ok(InputEdit {
                edited_at: crate::rows::parse_time("input_edits.edited_at", at)?,
                previous: super::codec::parse_json("input_edits.previous", &previous)?,
            })
        })
        .collect()
}

pub(super) async fn list_runs(
    reader: &SqlitePool,
    filter: &RunFilter,
) -> Result<Vec<Run>, StoreError> {
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

/// The text of [`list_runs`]'s statement for `filter`, in SQLite's dialect.
fn listing_sql(filter: &RunFilter) -> String {
    crate::listing::runs_sql(
        concat!("SELECT ", run_columns!(), " FROM runs"),
        filter,
        |param| format!("instr(lower(error), lower(${param})) > 0"),
        "LIMIT +$",
    )
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
    use crate::RunStatus;

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
