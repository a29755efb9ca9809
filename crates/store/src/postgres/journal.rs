//! Journal entries and flow state on PostgreSQL. Semantics are those of the
//! `Store` trait and of `crate::sqlite::journal`.
//!
//! An entry is only appended while the recording worker holds the run's
//! lease. Writes normally go through [`super::group_commit`], many in one
//! statement; the statements here apply one write alone, which the group
//! commit falls back to when PostgreSQL refuses a batch. One statement
//! checks the lease, takes the entry's number from the run's
//! `journal_entries` (locking the run's row until the entry commits: a
//! claim by another node waits for it or is seen by it, and concurrent
//! entries of one run are numbered one after the other), inserts the entry
//! and, when the step sets it, the flow's state. A run's last entry and its
//! end are one statement too. Each is a single round trip and its own
//! transaction: a `BEGIN … COMMIT` around separate statements would cost
//! four or five round trips where one does.
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

/// A journal write as its columns are bound: an entry, and either the
/// flow's new state or the run's end. Built once by the caller, so the
/// group commit ([`super::group_commit`]) and the statements of one write
/// bind the same values.
pub(super) struct Write {
    pub owner: String,
    /// The claim the write is made under.
    pub claim: i32,
    /// The entry's run attempt: the claim's, or nothing is written.
    pub attempt: i32,
    pub run: RunId,
    pub step_index: i32,
    pub step_id: String,
    pub item: Option<i32>,
    pub status: &'static str,
    pub started_at: i64,
    pub duration_ms: i64,
    pub request: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub error_class: Option<String>,
    /// The flow's new state, for an entry that sets it.
    pub state: Option<String>,
    /// The run's end, for its last entry.
    pub end: Option<End>,
    pub now: i64,
}

/// A run's end, as bound.
pub(super) struct End {
    pub status: &'static str,
    pub output: Option<String>,
    pub error: Option<String>,
}

impl Write {
    /// `entry`, appended under the entry's own claim, setting the flow's
    /// state to `state` when given.
    pub fn append(owner: &str, entry: &JournalEntry, state: Option<&Value>, now: i64) -> Write {
        Write::new(owner, entry.attempt, entry, state, None, now)
    }

    /// `entry`, appended under `claim` as the run's last, ending the run
    /// with `outcome`.
    pub fn finish(
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
        entry: &JournalEntry,
        now: i64,
    ) -> Write {
        let end = End {
            status: outcome.status.as_str(),
            output: outcome.output.as_ref().map(json_text),
            error: outcome.error.clone(),
        };
        Write::new(owner, claim.attempt, entry, None, Some(end), now)
    }

    fn new(
        owner: &str,
        claim: u32,
        entry: &JournalEntry,
        state: Option<&Value>,
        end: Option<End>,
        now: i64,
    ) -> Write {
        Write {
            owner: owner.to_string(),
            claim: int4(claim),
            attempt: int4(entry.attempt),
            run: entry.run_id,
            step_index: int4(entry.step_index),
            step_id: entry.step_id.clone(),
            item: entry.item.map(int4),
            status: entry.status.as_str(),
            started_at: entry.started_at.timestamp_millis(),
            duration_ms: int8(entry.duration_ms),
            request: entry.request.as_ref().map(json_text),
            output: entry.output.as_ref().map(json_text),
            error: entry.error.clone(),
            error_class: entry.error_class.clone(),
            state: state.map(json_text),
            end,
            now,
        }
    }
}

/// Applies `write` on its own: one statement, one commit.
pub(super) async fn apply_one(pool: &PgPool, write: &Write) -> Result<(), StoreError> {
    let written = match &write.end {
        None => {
            lease_checked(APPEND, write)
                .bind(write.state.as_deref())
                .bind(write.now)
                .fetch_optional(pool)
                .await?
        }
        Some(end) => {
            lease_checked(FINISH_WITH_ENTRY, write)
                .bind(end.status)
                .bind(end.output.as_deref())
                .bind(end.error.as_deref())
                .bind(write.now)
                .bind(write.attempt)
                .fetch_optional(pool)
                .await?
        }
    };
    match written {
        Some(_) => Ok(()),
        None => Err(refusal(pool, write).await?),
    }
}

/// `sql` with the parameters [`APPEND`] and [`FINISH_WITH_ENTRY`] share
/// bound: `$1` the run, `$2` its lease's owner, `$3` the claim, `$4` the
/// most entries a run may hold, `$5` to `$14` the entry's fields.
fn lease_checked<'q>(
    sql: &'static str,
    write: &'q Write,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(write.run)
        .bind(&write.owner)
        .bind(write.claim)
        .bind(ENTRIES_PER_RUN)
        .bind(write.step_index)
        .bind(&write.step_id)
        .bind(write.item)
        .bind(write.status)
        .bind(write.started_at)
        .bind(write.duration_ms)
        .bind(write.request.as_deref())
        .bind(write.output.as_deref())
        .bind(write.error.as_deref())
        .bind(write.error_class.as_deref())
}

/// Why a lease-checked write wrote nothing: the run is still held, so its
/// journal is full, or the lease is gone.
pub(super) async fn refusal(pool: &PgPool, write: &Write) -> Result<StoreError, StoreError> {
    let run = write.run;
    let held = sqlx::query(HELD)
        .bind(run)
        .bind(&write.owner)
        .bind(write.claim)
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
