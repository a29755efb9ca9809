//! Journal entries and flow state on PostgreSQL. Semantics are those of the
//! `Store` trait and of `crate::sqlite::journal`.
//!
//! An entry is only appended while the recording worker holds the run's
//! lease. One statement checks the lease, takes the entry's number from
//! the run's `journal_entries` (locking the run's row until the entry
//! commits: a claim by another node waits for it or is seen by it, and
//! concurrent entries of one run are numbered one after the other),
//! inserts the entry and, when the step sets it, the flow's state. A run's
//! last entry and its end are one statement too. Each is a single round
//! trip and its own transaction: the journal is written once per step, and
//! a `BEGIN … COMMIT` around separate statements would cost four or five
//! round trips where one does.
//!
//! An entry is current unless a replay from the start set it aside: its
//! number is below its run's `journal_mark`.

use serde_json::Value;
use sqlx::PgPool;

use super::codec::{entry_from_row, int4, int8, json_text, parse_json};
use crate::{Claim, JournalEntry, RunId, RunOutcome, StoreError};

/// Entries one run may hold, as in the SQLite store (where it is the span
/// of journal keys each run owns).
pub(super) const ENTRIES_PER_RUN: i32 = 1 << 20;

/// Appends an entry while the lease holds under the entry's claim (its
/// `attempt`) and the journal has room, taking the entry's number from the
/// run's `journal_entries`, and replaces the state of the run's flow with
/// `$15` when it is given: a caller cannot write another flow's state. One
/// statement, so one round trip and one commit; it returns the entry's
/// number, and no row when nothing was written.
const APPEND: &str = "\
WITH taken AS (
    UPDATE runs SET journal_entries = journal_entries + 1
    WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3
      AND journal_entries < $4
    RETURNING journal_entries - 1 AS n, flow
), appended AS (
    INSERT INTO journal (run_id, n, attempt, step_index, step_id, item, status, started_at,
                         duration_ms, request, output, error, error_class)
    SELECT $1, n, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM taken
), state AS (
    INSERT INTO flow_state (flow, state, updated_at)
    SELECT flow, $15, $16 FROM taken WHERE $15::text IS NOT NULL
    ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
)
SELECT n FROM taken";

/// Ends a run held under claim `$3` and appends its last step's entry
/// (whose `attempt`, `$19`, must be the claim's) in one statement: the
/// run's row is updated once, for both its end and the entry's number.
const FINISH_WITH_ENTRY: &str = "\
WITH finished AS (
    UPDATE runs
    SET status = $15, output = $16, error = $17, finished_at = $18, updated_at = $18,
        lease_owner = NULL, lease_expires_at = NULL, journal_entries = journal_entries + 1
    WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3
      AND attempts = $19 AND journal_entries < $4
    RETURNING journal_entries - 1 AS n
), appended AS (
    INSERT INTO journal (run_id, n, attempt, step_index, step_id, item, status, started_at,
                         duration_ms, request, output, error, error_class)
    SELECT $1, n, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM finished
)
SELECT n FROM finished";

/// Whether the run is still leased to the owner: tells a full journal from
/// a lost lease when nothing was written.
const HELD: &str = "\
SELECT 1 FROM runs WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3";

const PUT_STATE: &str = "\
INSERT INTO flow_state (flow, state, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

const SELECT_JOURNAL: &str = "\
SELECT j.run_id, j.step_index, j.step_id, j.item, j.attempt, j.status, j.started_at,
       j.duration_ms, j.request, j.output, j.error, j.error_class,
       j.n < r.journal_mark AS superseded
FROM journal AS j JOIN runs AS r ON r.id = j.run_id
WHERE j.run_id = $1
ORDER BY j.n";

const SELECT_STATE: &str = "SELECT state FROM flow_state WHERE flow = $1";

/// Appends `entry` for a run leased to `owner` under the entry's claim, and
/// replaces the run's flow's state with `state` when given.
pub(super) async fn record_step(
    pool: &PgPool,
    owner: &str,
    entry: &JournalEntry,
    state: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    let appended = lease_checked(APPEND, entry.run_id, owner, entry.attempt, entry)
        .bind(state.map(json_text))
        .bind(now)
        .fetch_optional(pool)
        .await?;
    match appended {
        Some(_) => Ok(()),
        None => Err(refusal(pool, entry.run_id, owner, entry.attempt).await?),
    }
}

/// Ends a run held by `owner` under `claim` with `outcome`, and appends its
/// last step's `entry`.
pub(super) async fn finish_with_entry(
    pool: &PgPool,
    owner: &str,
    claim: Claim,
    outcome: &RunOutcome,
    entry: &JournalEntry,
    now: i64,
) -> Result<(), StoreError> {
    let finished = lease_checked(FINISH_WITH_ENTRY, claim.run, owner, claim.attempt, entry)
        .bind(outcome.status.as_str())
        .bind(outcome.output.as_ref().map(json_text))
        .bind(outcome.error.as_deref())
        .bind(now)
        .bind(int4(entry.attempt))
        .fetch_optional(pool)
        .await?;
    match finished {
        Some(_) => Ok(()),
        None => Err(refusal(pool, claim.run, owner, claim.attempt).await?),
    }
}

/// `sql` with the parameters [`APPEND`] and [`FINISH_WITH_ENTRY`] share
/// bound: `$1` the run, `$2` its lease's owner, `$3` the claim, `$4` the
/// most entries a run may hold, `$5` to `$14` the entry's fields.
fn lease_checked<'q>(
    sql: &'static str,
    run: RunId,
    owner: &'q str,
    attempt: u32,
    entry: &'q JournalEntry,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(run)
        .bind(owner)
        .bind(int4(attempt))
        .bind(ENTRIES_PER_RUN)
        .bind(int4(entry.step_index))
        .bind(&entry.step_id)
        .bind(entry.item.map(int4))
        .bind(entry.status.as_str())
        .bind(entry.started_at.timestamp_millis())
        .bind(int8(entry.duration_ms))
        .bind(entry.request.as_ref().map(json_text))
        .bind(entry.output.as_ref().map(json_text))
        .bind(entry.error.as_deref())
        .bind(entry.error_class.as_deref())
}

/// Why a lease-checked append wrote nothing: the run is still held, so its
/// journal is full, or the lease is gone.
async fn refusal(
    pool: &PgPool,
    run: RunId,
    owner: &str,
    attempt: u32,
) -> Result<StoreError, StoreError> {
    let held = sqlx::query(HELD)
        .bind(run)
        .bind(owner)
        .bind(int4(attempt))
        .fetch_optional(pool)
        .await?
        .is_some();
    Ok(if held {
        StoreError::JournalFull {
            run,
            entries: ENTRIES_PER_RUN.unsigned_abs().into(),
        }
    } else {
        StoreError::LeaseLost { run }
    })
}

pub(super) async fn journal(pool: &PgPool, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = sqlx::query(SELECT_JOURNAL)
        .bind(run)
        .fetch_all(pool)
        .await?;
    rows.iter().map(entry_from_row).collect()
}

pub(super) async fn flow_state(pool: &PgPool, flow: &str) -> Result<Value, StoreError> {
    let state: Option<String> = sqlx::query_scalar(SELECT_STATE)
        .bind(flow)
        .fetch_optional(pool)
        .await?;
    match state {
        Some(text) => parse_json("flow_state.state", &text),
        None => Ok(Value::Null),
    }
}

pub(super) async fn put_flow_state(
    pool: &PgPool,
    flow: &str,
    state: &Value,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(PUT_STATE)
        .bind(flow)
        .bind(json_text(state))
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}
