//! The run queue: enqueue (group commit), claim with leases, lease renewal
//! and release, finishing, replaying and cancelling a run.
//!
//! All of these run on the writer's connection ([`super::writer`]), which
//! prepares each statement once and keeps it in its statement cache. Each
//! function is one job: it runs inside the writer's transaction and its
//! parameters are encoded beforehand, on the caller's thread.
//!
//! Enqueue is the intake's hot path. A batch is written with multi-row
//! inserts: it is split greedily into chunks of 64, 32, ..., 1 rows (at
//! most seven distinct statements, all cached), each insert returns the ids
//! it actually stored, and only runs that were not stored cost a further
//! lookup for the run they duplicate.
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
//! (`... WHERE status = 'running' AND lease_owner = $owner AND attempts =
//! $claim`, the claim's number being its fencing token): a statement that
//! touches no row means the lease is gone, with no separate read that could
//! race with a claim.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, OptionalExtension, ToSql};

use chrono::{DateTime, Utc};

use super::codec::{
    after, id_bytes, json_text, millis, parse_id_bytes, parse_status, run_columns, run_from_row,
};
use crate::{CancelOutcome, Claim, EnqueueOutcome, NewRun, Run, RunId, RunOutcome, StoreError};

/// Rows per insert statement, largest first; see the module doc.
const CHUNK_SIZES: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];
/// Bound parameters per row of [`insert_sql`].
const PARAMS_PER_ROW: usize = 11;

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
                            "(?{}, ?{}, CASE WHEN ?{owner} IS NULL THEN 'queued' ELSE 'running' END, \
                             ?{}, ?{}, ?{}, ?{owner} IS NOT NULL, ?{}, ?{}, ?{now}, ?{now}, ?{now}, ?{}, \
                             ?{owner}, ?{}, ?{}, 0)",
                            p + 1,
                            p + 2,
                            p + 3,
                            p + 4,
                            p + 5,
                            p + 6,
                            p + 7,
                            p + 8,
                            p + 10,
                            p + 11
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

const FIND_DEDUPE: &str = "SELECT id FROM runs WHERE dedupe_key = ?1";

/// `stalled_claims` restarts at 1 when the run journalled anything since its
/// previous claim (see migration 0006).
///
/// Each branch is limited before the union so the outer sort handles at most
/// 2 × limit rows however deep the backlog is: the queued branch walks the
/// partial `runs_ready` index in order, the expired branch takes the leases
/// that ran out first from the partial `runs_lease` index. Both are named
/// with `INDEXED BY`, so a plan that scans the table is an error, not a
/// slow claim. `RETURNING` order is unspecified, so the caller sorts again.
const CLAIM: &str = concat!(
    "UPDATE runs
SET status = 'running', lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1,
    updated_at = ?3,
    stalled_claims = CASE
        WHEN coalesce((SELECT max(key) FROM journal
                       WHERE key BETWEEN runs.seq * 1048576 AND runs.seq * 1048576 + 1048575), 0)
             > journal_mark
        THEN 1 ELSE stalled_claims + 1 END,
    journal_mark = coalesce((SELECT max(key) FROM journal
                             WHERE key BETWEEN runs.seq * 1048576 AND runs.seq * 1048576 + 1048575), 0)
WHERE id IN (
    SELECT id FROM (
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs INDEXED BY runs_ready
            WHERE status = 'queued' AND next_attempt_at <= ?3
            ORDER BY next_attempt_at, id LIMIT +?4)
        UNION ALL
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs INDEXED BY runs_lease
            WHERE status = 'running' AND lease_expires_at < ?3
            ORDER BY lease_expires_at LIMIT +?4)
    )
    ORDER BY next_attempt_at, id LIMIT +?4)
RETURNING ",
    run_columns!()
);

const RENEW: &str = "\
UPDATE runs SET lease_expires_at = ?2, updated_at = ?3
WHERE status = 'running' AND lease_owner = ?1
  AND id IN (SELECT unhex(value) FROM json_each(?4))";

const RELEASE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = ?2, updated_at = ?2, lease_owner = NULL,
    lease_expires_at = NULL, stalled_claims = 0
WHERE status = 'running' AND lease_owner = ?1";

pub(super) const FINISH: &str = "\
UPDATE runs
SET status = ?3, output = ?4, error = ?5, finished_at = ?6, updated_at = ?6, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempts = ?7";

const RESCHEDULE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = ?3, error = ?4, retries = retries + 1, updated_at = ?5,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempts = ?6";

const SUSPEND: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = ?3, error = NULL, updated_at = ?4,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempts = ?5";

const WAKE: &str = "\
UPDATE runs SET next_attempt_at = ?2, updated_at = ?2
WHERE id = ?1 AND status = 'queued' AND next_attempt_at > ?2";

/// Only dead runs are replayed: a run still queued or running needs no
/// replay, and one that succeeded must not run its side effects again.
const REPLAY: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = ?2, updated_at = ?2, error = NULL, output = NULL,
    retries = 0, finished_at = NULL, stalled_claims = 0
WHERE status = 'dead' AND id IN (SELECT unhex(value) FROM json_each(?1))
RETURNING id";

/// Only a run that has not ended can be cancelled. Clearing the lease makes
/// every lease-checked write of the worker executing it match nothing.
const CANCEL: &str = concat!(
    "UPDATE runs
SET status = 'cancelled', finished_at = ?2, updated_at = ?2, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = ?1 AND status IN ('queued', 'running')
RETURNING ",
    run_columns!()
);

const STATUS_OF: &str = "SELECT status FROM runs WHERE id = ?1";

/// Each run's entries are the key range of its `seq` (see [`super::journal`]).
const SUPERSEDE: &str = "\
UPDATE journal SET superseded = 1 WHERE key IN (
    SELECT j.key FROM runs AS r
    JOIN journal AS j ON j.key BETWEEN r.seq * 1048576 AND r.seq * 1048576 + 1048575
    WHERE r.id IN (SELECT unhex(value) FROM json_each(?1)))";

/// Oldest first, a bounded batch, so each write transaction stays short
/// and intake is not held up behind a large purge.
const PURGE: &str = "\
DELETE FROM runs WHERE id IN (
    SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1
    ORDER BY finished_at LIMIT +?2)";

/// A run encoded for binding, on the caller's thread.
pub(super) struct EncodedRun {
    id: Vec<u8>,
    flow: String,
    trigger: String,
    input: String,
    headers: String,
    config_version: String,
    dedupe_key: Option<String>,
    parent: Option<Vec<u8>>,
    owner: Option<String>,
    lease: Option<std::time::Duration>,
    /// Claims counted at commit: one for a run a worker starts at once.
    stalled_claims: i64,
    run: RunId,
}

impl EncodedRun {
    pub fn encode(run: &NewRun) -> EncodedRun {
        EncodedRun {
            id: id_bytes(run.id),
            flow: run.flow.clone(),
            trigger: run.trigger.clone(),
            input: json_text(&run.input),
            headers: json_text(&run.headers),
            config_version: run.config_version.clone(),
            dedupe_key: run.dedupe_key.clone(),
            parent: run.parent.map(id_bytes),
            owner: run.lease.as_ref().map(|lease| lease.owner.clone()),
            lease: run.lease.as_ref().map(|lease| lease.duration),
            stalled_claims: i64::from(run.lease.as_ref().is_some_and(|lease| lease.starts_now)),
            run: run.id,
        }
    }
}

pub(super) fn enqueue(
    connection: &Connection,
    runs: &[EncodedRun],
    now: i64,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(runs.len());
    let mut rest = runs;
    while !rest.is_empty() {
        // The last size is 1, so some size always fits.
        let size = CHUNK_SIZES
            .iter()
            .position(|&n| n <= rest.len())
            .unwrap_or(CHUNK_SIZES.len() - 1);
        let (chunk, tail) = rest.split_at(CHUNK_SIZES[size]);
        rest = tail;

        let lease_until: Vec<Option<i64>> = chunk
            .iter()
            .map(|run| run.lease.map(|lease| after(now, lease)))
            .collect();
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * PARAMS_PER_ROW + 1);
        for (run, lease_until) in chunk.iter().zip(&lease_until) {
            params.extend([
                &run.id as &dyn ToSql,
                &run.flow,
                &run.trigger,
                &run.input,
                &run.headers,
                &run.config_version,
                &run.dedupe_key,
                &run.parent,
                &run.owner,
                lease_until,
                &run.stalled_claims,
            ]);
        }
        params.push(&now);
        let mut insert = connection.prepare_cached(&insert_sql(size))?;
        let stored = insert
            .query_map(params.as_slice(), |row| row.get::<_, Vec<u8>>(0))?
            .map(|bytes| parse_id_bytes("runs.id", &bytes?))
            .collect::<Result<HashSet<RunId>, _>>()?;

        for run in chunk {
            if stored.contains(&run.run) {
                outcomes.push(EnqueueOutcome::Created(run.run));
                continue;
            }
            // Either the dedupe key or the id is taken. Earlier runs of this
            // batch are visible here, which is what dedupes within a batch.
            let existing = match &run.dedupe_key {
                Some(key) => connection
                    .prepare_cached(FIND_DEDUPE)?
                    .query_row([key], |row| row.get::<_, Vec<u8>>(0))
                    .optional()?
                    .map(|bytes| parse_id_bytes("runs.id", &bytes))
                    .transpose()?,
                None => None,
            };
            // No run holds the key, so the id itself exists: the same run was
            // enqueued before (a retried batch), and it stands for itself.
            outcomes.push(EnqueueOutcome::Duplicate(existing.unwrap_or(run.run)));
        }
    }
    Ok(outcomes)
}

pub(super) fn claim(
    connection: &Connection,
    owner: &str,
    limit: u32,
    lease_until: i64,
    now: i64,
) -> Result<Vec<Run>, StoreError> {
    let mut statement = connection.prepare_cached(CLAIM)?;
    let mut rows = statement.query(rusqlite::params![owner, lease_until, now, limit])?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(run_from_row(row)?);
    }
    runs.sort_by_key(|r| (r.next_attempt_at, r.id));
    Ok(runs)
}

pub(super) fn renew_leases(
    connection: &Connection,
    owner: &str,
    ids: &str,
    lease_until: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let renewed = connection
        .prepare_cached(RENEW)?
        .execute(rusqlite::params![owner, lease_until, now, ids])?;
    Ok(count(renewed))
}

pub(super) fn release(connection: &Connection, owner: &str, now: i64) -> Result<u64, StoreError> {
    let released = connection
        .prepare_cached(RELEASE)?
        .execute(rusqlite::params![owner, now])?;
    Ok(count(released))
}

pub(super) fn reschedule(
    connection: &Connection,
    owner: &str,
    claim: Claim,
    at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    let updated = connection
        .prepare_cached(RESCHEDULE)?
        .execute(rusqlite::params![
            id_bytes(claim.run),
            owner,
            at,
            error,
            now,
            claim.attempt
        ])?;
    if updated == 0 {
        return Err(StoreError::LeaseLost { run: claim.run });
    }
    Ok(())
}

pub(super) fn suspend(
    connection: &Connection,
    owner: &str,
    claim: Claim,
    until: i64,
    now: i64,
) -> Result<(), StoreError> {
    let updated = connection
        .prepare_cached(SUSPEND)?
        .execute(rusqlite::params![
            id_bytes(claim.run),
            owner,
            until,
            now,
            claim.attempt
        ])?;
    if updated == 0 {
        return Err(StoreError::LeaseLost { run: claim.run });
    }
    Ok(())
}

/// A run's end, encoded for binding on the caller's thread.
pub(super) struct Ending {
    claim: Claim,
    owner: String,
    status: &'static str,
    output: Option<String>,
    error: Option<String>,
    at: i64,
}

impl Ending {
    /// Refuses a status that is not final before anything is written.
    pub fn encode(
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
        at: i64,
    ) -> Result<Ending, StoreError> {
        if !outcome.status.is_final() {
            return Err(StoreError::NotFinal {
                run: claim.run,
                status: outcome.status,
            });
        }
        Ok(Ending {
            claim,
            owner: owner.to_string(),
            status: outcome.status.as_str(),
            output: outcome.output.as_ref().map(json_text),
            error: outcome.error.clone(),
            at,
        })
    }
}

impl Ending {
    /// The run's output as stored.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

/// Ends a run held by its owner.
pub(super) fn finish(connection: &Connection, ending: &Ending) -> Result<(), StoreError> {
    let updated = connection
        .prepare_cached(FINISH)?
        .execute(rusqlite::params![
            id_bytes(ending.claim.run),
            ending.owner,
            ending.status,
            ending.output,
            ending.error,
            ending.at,
            ending.claim.attempt
        ])?;
    if updated == 0 {
        return Err(StoreError::LeaseLost {
            run: ending.claim.run,
        });
    }
    Ok(())
}

pub(super) fn wake(connection: &Connection, run: RunId, now: i64) -> Result<bool, StoreError> {
    let woken = connection
        .prepare_cached(WAKE)?
        .execute(rusqlite::params![id_bytes(run), now])?;
    Ok(woken > 0)
}

pub(super) fn replay(
    connection: &Connection,
    ids: &str,
    from_start: bool,
    now: i64,
) -> Result<Vec<RunId>, StoreError> {
    let replayed = connection
        .prepare_cached(REPLAY)?
        .query_map(rusqlite::params![ids, now], |row| row.get::<_, Vec<u8>>(0))?
        .map(|bytes| parse_id_bytes("runs.id", &bytes?))
        .collect::<Result<Vec<RunId>, StoreError>>()?;
    if from_start && !replayed.is_empty() {
        connection
            .prepare_cached(SUPERSEDE)?
            .execute([id_list(&replayed)?])?;
    }
    Ok(replayed)
}

/// Keeps the run's input before a replay replaces it.
const KEEP_INPUT: &str = "\
INSERT INTO input_edits (run_id, edited_at, previous) SELECT id, ?2, input FROM runs WHERE id = ?1";

const SET_INPUT: &str = "UPDATE runs SET input = ?2 WHERE id = ?1";

/// [`crate::Store::replay_with_input`]: the replay, the old input kept and
/// the new one set, in the caller's transaction.
pub(super) fn replay_with_input(
    connection: &Connection,
    run: RunId,
    input: &str,
    now: i64,
) -> Result<bool, StoreError> {
    if replay(connection, &id_list(&[run])?, true, now)?.is_empty() {
        return Ok(false);
    }
    let id = id_bytes(run);
    connection
        .prepare_cached(KEEP_INPUT)?
        .execute(rusqlite::params![id, now])?;
    connection
        .prepare_cached(SET_INPUT)?
        .execute(rusqlite::params![id, input])?;
    Ok(true)
}

pub(super) fn cancel(
    connection: &Connection,
    run: RunId,
    now: i64,
) -> Result<CancelOutcome, StoreError> {
    let id = id_bytes(run);
    let mut cancel = connection.prepare_cached(CANCEL)?;
    let mut rows = cancel.query(rusqlite::params![id, now])?;
    if let Some(row) = rows.next()? {
        return Ok(CancelOutcome::Cancelled(Box::new(run_from_row(row)?)));
    }
    let status = connection
        .prepare_cached(STATUS_OF)?
        .query_row([&id], |row| row.get::<_, String>(0))
        .optional()?;
    Ok(match status {
        Some(status) => CancelOutcome::Finished(parse_status("runs.status", &status)?),
        None => CancelOutcome::NotFound,
    })
}

/// Run ids as a JSON array of their bytes in hex, for `unhex(value)` over
/// `json_each`: one bound parameter however many ids, so one prepared
/// statement serves every list length.
pub(super) fn id_list(runs: &[RunId]) -> Result<String, StoreError> {
    let ids: Vec<String> = runs.iter().map(|id| id.simple().to_string()).collect();
    serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt {
        what: "run id list",
        detail: e.to_string(),
    })
}

pub(super) fn purge_finished(
    connection: &Connection,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let purged = connection
        .prepare_cached(PURGE)?
        .execute(rusqlite::params![millis(before), limit])?;
    Ok(count(purged))
}

/// A row count as the store reports it.
fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::{migrated_store, plan, scans_history};

    /// The claim reads the two partial indexes of unfinished runs, never
    /// the table, however many finished runs it holds.
    #[tokio::test]
    async fn the_claim_reads_only_unfinished_runs() {
        let (_dir, path) = migrated_store().await;
        let plan = plan(&path, CLAIM);
        assert!(plan.iter().any(|s| s.contains("runs_ready")), "{plan:?}");
        assert!(plan.iter().any(|s| s.contains("runs_lease")), "{plan:?}");
        assert!(!plan.iter().any(|s| scans_history(s)), "{plan:?}");
    }
}
