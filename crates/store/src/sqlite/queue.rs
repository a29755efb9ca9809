//! The run queue: enqueue (group commit), claim with leases, lease renewal
//! and release, finishing, replaying and cancelling a run.
//!
//! All of these run on the single writer connection, which prepares each
//! statement once and keeps it in its statement cache.
//!
//! Enqueue is the intake's hot path, and there every statement costs a
//! round trip to SQLite's connection thread that dwarfs the insert itself. So
//! a batch is written with multi-row inserts: it is split greedily into
//! chunks of 64, 32, ..., 1 rows (at most seven distinct statements, all
//! cached), each insert returns the ids it actually stored, and only runs
//! that were not stored cost a further lookup for the run they duplicate.
//!
//! A `LIMIT` takes its bound value as `+$n`, never as a bare `$n`: SQLite
//! (3.4x and later) plans with the value of a bare parameter in `LIMIT`, so
//! rebinding it, even to the same value, re-prepares the statement on its
//! next step. That made every claim parse and plan its SQL again: 41 % of
//! the instructions of an end-to-end request when each run was claimed, and
//! 46 µs against 5 µs per claim. The unary `+` hides the value from the
//! planner and changes nothing else. `a_limit_never_binds_a_bare_parameter`
//! keeps it so.
//!
//! Lease checks are folded into the statements themselves
//! (`... WHERE status = 'running' AND lease_owner = $owner`): a statement that
//! touches no row means the lease is gone, with no separate read that could
//! race with a claim.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use chrono::{DateTime, Utc};

use super::codec::{
    after, id_text, json_text, millis, parse_id, parse_status, run_columns, run_from_row,
};
use crate::{CancelOutcome, EnqueueOutcome, NewRun, Run, RunId, StoreError};

/// Rows per insert statement, largest first; see the module doc.
const CHUNK_SIZES: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];
/// Bound parameters per row of [`insert_sql`].
const PARAMS_PER_ROW: usize = 10;

/// The insert for `CHUNK_SIZES[size]` rows, built once per size. Conflicts on
/// `id` or `dedupe_key` skip the row instead of failing, so one duplicate does
/// not abort the whole batch; `RETURNING` tells which rows went in.
fn insert_sql(size: usize) -> Arc<str> {
    static SQL: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        CHUNK_SIZES
            .iter()
            .map(|&n| {
                let now = n * PARAMS_PER_ROW + 1;
                let values: Vec<String> = (0..n)
                    .map(|r| {
                        let p = r * PARAMS_PER_ROW;
                        // With a lease owner (`p + 9`), the row is stored
                        // as a claim would leave it: running, one attempt.
                        let owner = p + 9;
                        format!(
                            "(${}, ${}, CASE WHEN ${owner} IS NULL THEN 'queued' ELSE 'running' END, \
                             ${}, ${}, ${}, ${owner} IS NOT NULL, ${}, ${}, ${now}, ${now}, ${now}, ${}, \
                             ${owner}, ${}, ${owner} IS NOT NULL, 0)",
                            p + 1,
                            p + 2,
                            p + 3,
                            p + 4,
                            p + 5,
                            p + 6,
                            p + 7,
                            p + 8,
                            p + 10
                        )
                    })
                    .collect();
                Arc::from(format!(
                    "INSERT INTO runs (id, flow, status, trigger, input, headers, attempts, \
                     config_version, dedupe_key, next_attempt_at, created_at, updated_at, \
                     parent_run_id, lease_owner, lease_expires_at, stalled_claims, journal_mark) \
                     VALUES {} ON CONFLICT DO NOTHING RETURNING id",
                    values.join(", ")
                ))
            })
            .collect()
    });
    Arc::clone(&all[size.min(all.len() - 1)])
}

const FIND_DEDUPE: &str = "SELECT id FROM runs WHERE dedupe_key = $1";

/// `stalled_claims` restarts at 1 when the run journalled anything since its
/// previous claim (see migration 0006).
///
/// Each branch is limited before the union so the outer sort handles at most
/// 2 × limit rows however deep the backlog is: the queued branch walks the
/// `runs_claim` index in order, the expired branch takes the leases that ran
/// out first from the partial `runs_lease` index. Without statistics SQLite
/// would rather walk every running run through `runs_claim` to skip a tiny
/// sort, hence `INDEXED BY`. `RETURNING` order is unspecified, so the caller
/// sorts again.
const CLAIM: &str = concat!(
    "UPDATE runs
SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1,
    updated_at = $3,
    stalled_claims = CASE
        WHEN coalesce((SELECT max(seq) FROM journal WHERE run_id = runs.id), 0) > journal_mark
        THEN 1 ELSE stalled_claims + 1 END,
    journal_mark = coalesce((SELECT max(seq) FROM journal WHERE run_id = runs.id), 0)
WHERE id IN (
    SELECT id FROM (
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs
            WHERE status = 'queued' AND next_attempt_at <= $3
            ORDER BY next_attempt_at, id LIMIT +$4)
        UNION ALL
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs INDEXED BY runs_lease
            WHERE status = 'running' AND lease_expires_at < $3
            ORDER BY lease_expires_at LIMIT +$4)
    )
    ORDER BY next_attempt_at, id LIMIT +$4)
RETURNING ",
    run_columns!()
);

const RENEW: &str = "\
UPDATE runs SET lease_expires_at = $2, updated_at = $3
WHERE status = 'running' AND lease_owner = $1
  AND id IN (SELECT value FROM json_each($4))";

const RELEASE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $2, updated_at = $2, lease_owner = NULL,
    lease_expires_at = NULL, stalled_claims = 0
WHERE status = 'running' AND lease_owner = $1";

pub(super) const FINISH: &str = "\
UPDATE runs
SET status = $3, output = $4, error = $5, finished_at = $6, updated_at = $6, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2";

const RESCHEDULE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $3, error = $4, retries = retries + 1, updated_at = $5,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2";

const SUSPEND: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $3, error = NULL, updated_at = $4,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2";

const WAKE: &str = "\
UPDATE runs SET next_attempt_at = $2, updated_at = $2
WHERE id = $1 AND status = 'queued' AND next_attempt_at > $2";

/// Only dead runs are replayed: a run still queued or running needs no
/// replay, and one that succeeded must not run its side effects again.
const REPLAY: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $2, updated_at = $2, error = NULL, output = NULL,
    retries = 0, finished_at = NULL, stalled_claims = 0
WHERE status = 'dead' AND id IN (SELECT value FROM json_each($1))
RETURNING id";

/// Only a run that has not ended can be cancelled. Clearing the lease makes
/// every lease-checked write of the worker executing it match nothing.
const CANCEL: &str = concat!(
    "UPDATE runs
SET status = 'cancelled', finished_at = $2, updated_at = $2, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING ",
    run_columns!()
);

const STATUS_OF: &str = "SELECT status FROM runs WHERE id = $1";

const SUPERSEDE: &str = "\
UPDATE journal SET superseded = 1 WHERE run_id IN (SELECT value FROM json_each($1))";

/// Oldest first, a bounded batch, so each write transaction stays short
/// and intake is not held up behind a large purge.
const PURGE: &str = "\
DELETE FROM runs WHERE id IN (
    SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1
    ORDER BY finished_at LIMIT +$2)";

pub(super) async fn enqueue(
    writer: &SqlitePool,
    runs: &[NewRun],
    now: i64,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut outcomes = Vec::with_capacity(runs.len());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut rest = runs;
    while !rest.is_empty() {
        // The last size is 1, so some size always fits.
        let size = CHUNK_SIZES
            .iter()
            .position(|&n| n <= rest.len())
            .unwrap_or(CHUNK_SIZES.len() - 1);
        let (chunk, tail) = rest.split_at(CHUNK_SIZES[size]);
        rest = tail;

        // The text only ever comes from `insert_sql`, never from input.
        let mut insert = sqlx::query_scalar::<_, String>(AssertSqlSafe(insert_sql(size)));
        for run in chunk {
            insert = insert
                .bind(id_text(run.id))
                .bind(&run.flow)
                .bind(&run.trigger)
                .bind(json_text(&run.input))
                .bind(json_text(&run.headers))
                .bind(&run.config_version)
                .bind(run.dedupe_key.as_deref())
                .bind(run.parent.map(id_text))
                .bind(run.lease.as_ref().map(|lease| lease.owner.as_str()))
                .bind(run.lease.as_ref().map(|lease| after(now, lease.duration)));
        }
        let stored = insert
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|text| parse_id("runs.id", text))
            .collect::<Result<HashSet<RunId>, _>>()?;

        for run in chunk {
            if stored.contains(&run.id) {
                outcomes.push(EnqueueOutcome::Created(run.id));
                continue;
            }
            // Either the dedupe key or the id is taken. Earlier runs of this
            // batch are visible here, which is what dedupes within a batch.
            let existing = match &run.dedupe_key {
                Some(key) => sqlx::query_scalar::<_, String>(FIND_DEDUPE)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|text| parse_id("runs.id", &text))
                    .transpose()?,
                None => None,
            };
            // No run holds the key, so the id itself exists: the same run was
            // enqueued before (a retried batch), and it stands for itself.
            outcomes.push(EnqueueOutcome::Duplicate(existing.unwrap_or(run.id)));
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

pub(super) async fn claim(
    writer: &SqlitePool,
    owner: &str,
    limit: u32,
    lease: Duration,
    now: i64,
) -> Result<Vec<Run>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // A single statement is atomic on its own: no explicit transaction needed.
    let rows = sqlx::query(CLAIM)
        .bind(owner)
        .bind(after(now, lease))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(writer)
        .await?;
    let mut runs = rows
        .iter()
        .map(run_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by_key(|r| (r.next_attempt_at, r.id));
    Ok(runs)
}

pub(super) async fn renew_leases(
    writer: &SqlitePool,
    owner: &str,
    runs: &[RunId],
    lease: Duration,
    now: i64,
) -> Result<u64, StoreError> {
    if runs.is_empty() {
        return Ok(0);
    }
    let ids = id_list(runs)?;
    let done = sqlx::query(RENEW)
        .bind(owner)
        .bind(after(now, lease))
        .bind(now)
        .bind(ids)
        .execute(writer)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn release(writer: &SqlitePool, owner: &str, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(RELEASE)
        .bind(owner)
        .bind(now)
        .execute(writer)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn reschedule(
    writer: &SqlitePool,
    owner: &str,
    run: RunId,
    at: DateTime<Utc>,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query(RESCHEDULE)
        .bind(id_text(run))
        .bind(owner)
        .bind(millis(at))
        .bind(error)
        .bind(now)
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost { run });
    }
    Ok(())
}

pub(super) async fn suspend(
    writer: &SqlitePool,
    owner: &str,
    run: RunId,
    until: DateTime<Utc>,
    now: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query(SUSPEND)
        .bind(id_text(run))
        .bind(owner)
        .bind(millis(until))
        .bind(now)
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost { run });
    }
    Ok(())
}

pub(super) async fn wake(writer: &SqlitePool, run: RunId, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(WAKE)
        .bind(id_text(run))
        .bind(now)
        .execute(writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn replay(
    writer: &SqlitePool,
    runs: &[RunId],
    from_start: bool,
    now: i64,
) -> Result<Vec<RunId>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids = id_list(runs)?;
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let replayed = sqlx::query_scalar::<_, String>(REPLAY)
        .bind(&ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|text| parse_id("runs.id", text))
        .collect::<Result<Vec<RunId>, _>>()?;
    if from_start && !replayed.is_empty() {
        sqlx::query(SUPERSEDE)
            .bind(id_list(&replayed)?)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(replayed)
}

pub(super) async fn cancel(
    writer: &SqlitePool,
    run: RunId,
    now: i64,
) -> Result<CancelOutcome, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let row = sqlx::query(CANCEL)
        .bind(id_text(run))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let outcome = match row {
        Some(row) => CancelOutcome::Cancelled(Box::new(run_from_row(&row)?)),
        None => match sqlx::query_scalar::<_, String>(STATUS_OF)
            .bind(id_text(run))
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(status) => CancelOutcome::Finished(parse_status("runs.status", &status)?),
            None => CancelOutcome::NotFound,
        },
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Run ids as a JSON array, for `json_each`: one bound parameter however
/// many ids, so one prepared statement serves every list length.
fn id_list(runs: &[RunId]) -> Result<String, StoreError> {
    let ids: Vec<String> = runs.iter().map(|id| id_text(*id)).collect();
    serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt {
        what: "run id list",
        detail: e.to_string(),
    })
}

pub(super) async fn purge_finished(
    writer: &SqlitePool,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let done = sqlx::query(PURGE)
        .bind(millis(before))
        .bind(i64::from(limit))
        .execute(writer)
        .await?;
    Ok(done.rows_affected())
}
