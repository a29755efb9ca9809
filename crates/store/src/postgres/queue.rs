//! The queue on PostgreSQL: enqueueing (group commit), claims and leases,
//! finishing, rescheduling and suspending, waking, replay, cancel, purge.
//! Semantics are those of the `Store` trait and of `crate::sqlite::queue`.
//!
//! Several nodes share the queue, so the statements that pick runs in a
//! subquery (a claim, a purge) lock the rows they pick (`FOR UPDATE SKIP
//! LOCKED`) before they change them: the lock re-checks the condition on
//! the newest version of each row, and a run another node is taking is
//! skipped, not waited for.
//!
//! Lease checks are folded into the statements themselves
//! (`... WHERE status = 'running' AND lease_owner = $owner AND attempts =
//! $claim`, the claim's number being its fencing token), as in SQLite:
//! a statement that touches no row means the lease is gone, with no
//! separate read that could race with a claim.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::{PgPool, Postgres, Row as _, Transaction};

use super::codec::{RUN_COLUMNS, int4, json_text, parse_status, run_from_row};
use crate::{CancelOutcome, Claim, EnqueueOutcome, NewRun, Run, RunId, RunOutcome, StoreError};

/// One multi-row insert for the whole batch, its columns bound as arrays.
/// Rows go in in the batch's order (`ORDER BY ord`), so of two runs of the
/// batch sharing a dedupe key the first is kept; a conflict on `id` or
/// `dedupe_key` skips the row instead of failing the batch, and
/// `RETURNING` tells which rows went in. A run with a lease owner is stored
/// as a claim would leave it: running, one attempt.
const INSERT_RUNS: &str = "\
INSERT INTO runs (id, flow, status, trigger, input, headers, attempts, config_version, dedupe_key,
                  next_attempt_at, created_at, updated_at, parent_run_id, lease_owner,
                  lease_expires_at, stalled_claims)
SELECT id, flow, CASE WHEN owner IS NULL THEN 'queued' ELSE 'running' END, trigger, input,
       headers, CASE WHEN owner IS NULL THEN 0 ELSE 1 END, config_version, dedupe_key,
       $12, $12, $12, parent, owner, lease_until, stalled
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::uuid[], $9::text[], $10::bigint[], $11::integer[])
     WITH ORDINALITY AS batch (id, flow, trigger, input, headers, config_version, dedupe_key,
                               parent, owner, lease_until, stalled, ord)
ORDER BY ord
ON CONFLICT DO NOTHING
RETURNING id";

/// Earlier runs of the batch are visible here, which is what dedupes
/// within a batch.
const FIND_DEDUPE: &str = "SELECT dedupe_key, id FROM runs WHERE dedupe_key = ANY($1)";

/// `stalled_claims` restarts at 1 when the run journalled anything since
/// its previous claim.
///
/// Each kind of ready run is picked (and locked) apart, limited, from its
/// own partial index in its own order, so a deep backlog is never sorted
/// whole; at most 2 × limit picked rows are sorted to keep the oldest.
/// Rows picked but not kept stay locked until the claim commits, which at
/// worst makes a concurrent claim skip them this once. `RETURNING` order
/// is unspecified, so the caller sorts again.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
WITH due AS (
    SELECT id, next_attempt_at FROM runs
    WHERE status = 'queued' AND next_attempt_at <= $3
    ORDER BY next_attempt_at, id LIMIT $4
    FOR UPDATE SKIP LOCKED),
expired AS (
    SELECT id, next_attempt_at FROM runs
    WHERE status = 'running' AND lease_expires_at < $3
    ORDER BY lease_expires_at LIMIT $4
    FOR UPDATE SKIP LOCKED),
chosen AS (
    SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS ready
    ORDER BY next_attempt_at, id LIMIT $4)
UPDATE runs
SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1,
    updated_at = $3,
    stalled_claims = CASE WHEN journal_entries > claim_mark THEN 1 ELSE stalled_claims + 1 END,
    claim_mark = journal_entries
WHERE id IN (SELECT id FROM chosen)
RETURNING {RUN_COLUMNS}"
    )
});

const RENEW: &str = "\
UPDATE runs SET lease_expires_at = $2, updated_at = $3
WHERE status = 'running' AND lease_owner = $1 AND id = ANY($4)";

const RELEASE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $2, updated_at = $2, lease_owner = NULL,
    lease_expires_at = NULL, stalled_claims = 0
WHERE status = 'running' AND lease_owner = $1";

const FINISH: &str = "\
UPDATE runs
SET status = $3, output = $4, error = $5, finished_at = $6, updated_at = $6, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $7";

const RESCHEDULE: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $3, error = $4, retries = retries + 1, updated_at = $5,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $6";

const SUSPEND: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $3, error = NULL, updated_at = $4,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $5";

const WAKE: &str = "\
UPDATE runs SET next_attempt_at = $2, updated_at = $2
WHERE id = $1 AND status = 'queued' AND next_attempt_at > $2";

/// Only dead runs are replayed: a run still queued or running needs no
/// replay, and one that succeeded must not run its side effects again.
/// From the start, every entry recorded so far is set aside by moving the
/// run's `journal_mark` past it.
const REPLAY: &str = "\
UPDATE runs
SET status = 'queued', next_attempt_at = $2, updated_at = $2, error = NULL, output = NULL,
    retries = 0, finished_at = NULL, stalled_claims = 0,
    journal_mark = CASE WHEN $3 THEN journal_entries ELSE journal_mark END
WHERE status = 'dead' AND id = ANY($1)
RETURNING id";

/// Only a run that has not ended can be cancelled. Clearing the lease makes
/// every lease-checked write of the worker executing it match nothing.
static CANCEL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
UPDATE runs
SET status = 'cancelled', finished_at = $2, updated_at = $2, lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING {RUN_COLUMNS}"
    )
});

const STATUS_OF: &str = "SELECT status FROM runs WHERE id = $1";

/// Oldest first, a bounded batch, so each transaction stays short. The
/// rows are locked as they are picked: a run replayed meanwhile is seen
/// queued and kept, never deleted on the strength of an older snapshot.
/// The journal goes with its run (`ON DELETE CASCADE`).
const PURGE: &str = "\
DELETE FROM runs WHERE id IN (
    SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1
    ORDER BY finished_at LIMIT $2
    FOR UPDATE SKIP LOCKED)";

pub(super) async fn enqueue(
    pool: &PgPool,
    channel: &str,
    runs: &[NewRun],
    now: i64,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(runs.len());
    let mut flows = Vec::with_capacity(runs.len());
    let mut triggers = Vec::with_capacity(runs.len());
    let mut inputs = Vec::with_capacity(runs.len());
    let mut headers = Vec::with_capacity(runs.len());
    let mut versions = Vec::with_capacity(runs.len());
    let mut keys = Vec::with_capacity(runs.len());
    let mut parents = Vec::with_capacity(runs.len());
    let mut owners = Vec::with_capacity(runs.len());
    let mut lease_until = Vec::with_capacity(runs.len());
    let mut stalled = Vec::with_capacity(runs.len());
    for run in runs {
        ids.push(run.id);
        flows.push(run.flow.as_str());
        triggers.push(run.trigger.as_str());
        inputs.push(json_text(&run.input));
        headers.push(json_text(&run.headers));
        versions.push(run.config_version.as_str());
        keys.push(run.dedupe_key.as_deref());
        parents.push(run.parent);
        owners.push(run.lease.as_ref().map(|lease| lease.owner.as_str()));
        lease_until.push(
            run.lease
                .as_ref()
                .map(|lease| super::after(now, lease.duration)),
        );
        // A run a worker starts at once counts its claim at commit.
        stalled.push(i32::from(run.lease.as_ref().is_some_and(|l| l.starts_now)));
    }

    let mut tx = pool.begin().await?;
    let written = async {
        let stored: HashSet<RunId> = sqlx::query_scalar(INSERT_RUNS)
            .bind(&ids)
            .bind(&flows)
            .bind(&triggers)
            .bind(&inputs)
            .bind(&headers)
            .bind(&versions)
            .bind(&keys)
            .bind(&parents)
            .bind(&owners)
            .bind(&lease_until)
            .bind(&stalled)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let skipped_keys: Vec<&str> = runs
            .iter()
            .filter(|run| !stored.contains(&run.id))
            .filter_map(|run| run.dedupe_key.as_deref())
            .collect();
        let holders: HashMap<String, RunId> = if skipped_keys.is_empty() {
            HashMap::new()
        } else {
            sqlx::query(FIND_DEDUPE)
                .bind(&skipped_keys)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("dedupe_key")?, row.try_get("id")?)))
                .collect::<Result<_, sqlx::Error>>()?
        };
        // Runs committed leased start on the node that took them; only
        // queued ones are news for the others.
        if runs
            .iter()
            .any(|run| run.lease.is_none() && stored.contains(&run.id))
        {
            super::ready::announce(&mut tx, channel).await?;
        }
        Ok((stored, holders))
    }
    .await;
    let (stored, holders) = settle(tx, written).await?;

    Ok(runs
        .iter()
        .map(|run| {
            if stored.contains(&run.id) {
                return EnqueueOutcome::Created(run.id);
            }
            // No run holds the key, so the id itself exists: the same run
            // was enqueued before (a retried batch), and it stands for
            // itself.
            let existing = run
                .dedupe_key
                .as_ref()
                .and_then(|key| holders.get(key).copied());
            EnqueueOutcome::Duplicate(existing.unwrap_or(run.id))
        })
        .collect())
}

pub(super) async fn claim(
    pool: &PgPool,
    owner: &str,
    limit: u32,
    lease_until: i64,
    now: i64,
) -> Result<Vec<Run>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(CLAIM.as_str())
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    let mut runs = rows
        .iter()
        .map(run_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by_key(|r| (r.next_attempt_at, r.id));
    Ok(runs)
}

pub(super) async fn renew_leases(
    pool: &PgPool,
    owner: &str,
    runs: &[RunId],
    lease_until: i64,
    now: i64,
) -> Result<u64, StoreError> {
    if runs.is_empty() {
        return Ok(0);
    }
    let renewed = sqlx::query(RENEW)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(runs)
        .execute(pool)
        .await?;
    Ok(renewed.rows_affected())
}

pub(super) async fn release(
    pool: &PgPool,
    channel: &str,
    owner: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let written = async {
        let released = sqlx::query(RELEASE)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if released > 0 {
            super::ready::announce(&mut tx, channel).await?;
        }
        Ok(released)
    }
    .await;
    settle(tx, written).await
}

/// Refuses to end `run` with an outcome that is not final, before anything
/// is written.
pub(super) fn refuse_unfinal(run: RunId, outcome: &RunOutcome) -> Result<(), StoreError> {
    if outcome.status.is_final() {
        Ok(())
    } else {
        Err(StoreError::NotFinal {
            run,
            status: outcome.status,
        })
    }
}

/// Ends a run held by `owner` without a last journal entry (the last one
/// goes through the journal's group commit, with the run's end).
pub(super) async fn finish(
    pool: &PgPool,
    owner: &str,
    claim: Claim,
    outcome: &RunOutcome,
    now: i64,
) -> Result<(), StoreError> {
    let run = claim.run;
    refuse_unfinal(run, outcome)?;
    let finished = sqlx::query(FINISH)
        .bind(run)
        .bind(owner)
        .bind(outcome.status.as_str())
        .bind(outcome.output.as_ref().map(json_text))
        .bind(outcome.error.as_deref())
        .bind(now)
        .bind(int4(claim.attempt))
        .execute(pool)
        .await?;
    lease_held(finished.rows_affected(), run)
}

pub(super) async fn reschedule(
    pool: &PgPool,
    owner: &str,
    claim: Claim,
    at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(RESCHEDULE)
        .bind(claim.run)
        .bind(owner)
        .bind(at)
        .bind(error)
        .bind(now)
        .bind(int4(claim.attempt))
        .execute(pool)
        .await?;
    lease_held(updated.rows_affected(), claim.run)
}

pub(super) async fn suspend(
    pool: &PgPool,
    owner: &str,
    claim: Claim,
    until: i64,
    now: i64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(SUSPEND)
        .bind(claim.run)
        .bind(owner)
        .bind(until)
        .bind(now)
        .bind(int4(claim.attempt))
        .execute(pool)
        .await?;
    lease_held(updated.rows_affected(), claim.run)
}

/// A lease-checked write that touched no row found the run no longer
/// held by its caller.
fn lease_held(rows: u64, run: RunId) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::LeaseLost { run });
    }
    Ok(())
}

pub(super) async fn wake(
    pool: &PgPool,
    channel: &str,
    run: RunId,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let written = async {
        let woken = sqlx::query(WAKE)
            .bind(run)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let woken = woken.rows_affected() > 0;
        if woken {
            super::ready::announce(&mut tx, channel).await?;
        }
        Ok(woken)
    }
    .await;
    settle(tx, written).await
}

/// Returns the replayed runs in the order they were asked for.
pub(super) async fn replay(
    pool: &PgPool,
    channel: &str,
    runs: &[RunId],
    from_start: bool,
    now: i64,
) -> Result<Vec<RunId>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let written = async {
        let replayed: HashSet<RunId> = sqlx::query_scalar(REPLAY)
            .bind(runs)
            .bind(now)
            .bind(from_start)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        if !replayed.is_empty() {
            super::ready::announce(&mut tx, channel).await?;
        }
        Ok(replayed)
    }
    .await;
    let mut replayed = settle(tx, written).await?;
    // `remove` also drops an id named twice in `runs`.
    Ok(runs
        .iter()
        .copied()
        .filter(|id| replayed.remove(id))
        .collect())
}

/// Keeps the run's input before a replay replaces it.
const KEEP_INPUT: &str = "\
INSERT INTO input_edits (run_id, edited_at, previous) SELECT id, $2, input FROM runs WHERE id = $1";

const SET_INPUT: &str = "UPDATE runs SET input = $2 WHERE id = $1";

/// [`crate::Store::replay_with_input`]: the replay from the start, the old
/// input kept and the new one set, in one transaction.
pub(super) async fn replay_with_input(
    pool: &PgPool,
    channel: &str,
    run: RunId,
    input: &serde_json::Value,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let written = async {
        let replayed: Option<RunId> = sqlx::query_scalar(REPLAY)
            .bind([run].as_slice())
            .bind(now)
            .bind(true)
            .fetch_optional(&mut *tx)
            .await?;
        if replayed.is_none() {
            return Ok(false);
        }
        sqlx::query(KEEP_INPUT)
            .bind(run)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(SET_INPUT)
            .bind(run)
            .bind(json_text(input))
            .execute(&mut *tx)
            .await?;
        super::ready::announce(&mut tx, channel).await?;
        Ok(true)
    }
    .await;
    settle(tx, written).await
}

pub(super) async fn purge_finished(
    pool: &PgPool,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    if limit == 0 {
        return Ok(0);
    }
    let purged = sqlx::query(PURGE)
        .bind(before)
        .bind(i64::from(limit))
        .execute(pool)
        .await?;
    Ok(purged.rows_affected())
}

pub(super) async fn cancel(
    pool: &PgPool,
    run: RunId,
    now: i64,
) -> Result<CancelOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let outcome = async {
        let cancelled = sqlx::query(CANCEL.as_str())
            .bind(run)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = cancelled {
            return Ok(CancelOutcome::Cancelled(Box::new(run_from_row(&row)?)));
        }
        let status: Option<String> = sqlx::query_scalar(STATUS_OF)
            .bind(run)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(match status {
            Some(status) => CancelOutcome::Finished(parse_status("runs.status", &status)?),
            None => CancelOutcome::NotFound,
        })
    }
    .await;
    settle(tx, outcome).await
}

/// Commits `tx` when `result` is a success, and otherwise rolls it back
/// before returning the error. A transaction merely dropped is rolled back
/// only when its connection is next used or returned to the pool, by a task
/// of the runtime; until then it keeps its locks, and a runtime that shuts
/// down first leaves it open.
pub(super) async fn settle<T>(
    tx: Transaction<'_, Postgres>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            // The error that made the transaction fail is the one to
            // report; a connection that cannot roll back is closed by the
            // pool.
            tx.rollback().await.ok();
            Err(error)
        }
    }
}

/// What only several nodes on one database show: the integration suite
/// (`crates/store/tests/it`, with `PATCHBAY_TEST_STORE=postgres`) holds
/// this store to the SQLite store's behaviour; these tests hold it to what
/// concurrency on PostgreSQL adds. They run only with
/// `PATCHBAY_TEST_STORE=postgres`, on `PATCHBAY_TEST_PG_URL` (by default
/// the local `test` database), each in a schema of its own.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::super::journal::ENTRIES_PER_RUN;
    use crate::{JournalEntry, NewRun, RunId, StepStatus, Store, StoreError};

    const LONG: Duration = Duration::from_secs(600);

    use super::super::test_support::{drop_schema, new_run, open};

    fn entry(run: RunId, item: u32) -> JournalEntry {
        JournalEntry {
            run_id: run,
            step_index: 0,
            step_id: "step-0".into(),
            item: Some(item),
            attempt: 1,
            status: StepStatus::Succeeded,
            started_at: chrono::Utc::now(),
            duration_ms: 1,
            request: None,
            output: Some(json!(item)),
            error: None,
            error_class: None,
            current: true,
        }
    }

    /// Nodes claiming together never take the same run, and between them
    /// take every run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_take_each_run_once() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let runs: Vec<NewRun> = (0..300).map(|_| new_run(None)).collect();
        store.enqueue(&runs).await.unwrap();

        let claimers: Vec<_> = (0..8)
            .map(|node| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let owner = format!("node-{node}");
                    let mut taken = Vec::new();
                    loop {
                        let claimed = store.claim(&owner, 7, LONG).await.unwrap();
                        if claimed.is_empty() {
                            return taken;
                        }
                        assert!(claimed.iter().all(|r| r.attempts == 1), "{claimed:?}");
                        taken.extend(claimed.into_iter().map(|r| r.id));
                    }
                })
            })
            .collect();
        let mut taken = Vec::new();
        for claimer in claimers {
            taken.extend(claimer.await.unwrap());
        }

        taken.sort();
        let mut all: Vec<RunId> = runs.iter().map(|r| r.id).collect();
        all.sort();
        assert_eq!(taken, all, "every run claimed exactly once");
        drop_schema(&store, schema).await;
    }

    /// The items of a `for_each` step finish together: their entries are
    /// numbered one after the other, none lost to a clash of numbers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_entries_of_one_run_are_all_kept() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let run = new_run(None);
        store.enqueue(std::slice::from_ref(&run)).await.unwrap();
        store.claim("w1", 1, LONG).await.unwrap();

        let writers: Vec<_> = (0..32)
            .map(|item| {
                let store = Arc::clone(&store);
                let id = run.id;
                tokio::spawn(async move {
                    let state = json!({ "item": item });
                    store
                        .record_step("w1", &entry(id, item), Some(&state))
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }

        let mut items: Vec<u32> = store
            .journal(run.id)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| e.item)
            .collect();
        items.sort_unstable();
        assert_eq!(items, (0..32).collect::<Vec<_>>());
        assert!(store.flow_state("orders").await.unwrap()["item"].is_u64());
        drop_schema(&store, schema).await;
    }

    /// A run holds as many entries as in the SQLite store; a full journal
    /// is told from a lost lease.
    #[tokio::test]
    async fn a_full_journal_is_refused_as_full() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let run = new_run(None);
        store.enqueue(std::slice::from_ref(&run)).await.unwrap();
        store.claim("w1", 1, LONG).await.unwrap();
        store
            .record_step("w1", &entry(run.id, 0), None)
            .await
            .unwrap();
        sqlx::query("UPDATE runs SET journal_entries = $2 WHERE id = $1")
            .bind(run.id)
            .bind(ENTRIES_PER_RUN)
            .execute(&store.pool)
            .await
            .unwrap();

        let full = store.record_step("w1", &entry(run.id, 1), None).await;
        assert!(
            matches!(full, Err(StoreError::JournalFull { run: id, entries })
                if id == run.id && entries == 1 << 20),
            "{full:?}"
        );
        let lost = store.record_step("w2", &entry(run.id, 1), None).await;
        assert!(
            matches!(lost, Err(StoreError::LeaseLost { .. })),
            "{lost:?}"
        );
        assert_eq!(store.journal(run.id).await.unwrap().len(), 1);
        drop_schema(&store, schema).await;
    }
}
