//! Journal entries and flow state on PostgreSQL. Semantics are those of the
//! `Store` trait and of `crate::sqlite::journal`.
//!
//! An entry is only appended while the recording worker holds the run's
//! lease. One statement checks the lease and takes the entry's number from
//! the run's `journal_entries`, locking the run's row until the entry
//! commits: a claim by another node waits for it or is seen by it, and
//! concurrent entries of one run are numbered one after the other. When a
//! step also sets the flow's state, both writes share the transaction.
//!
//! An entry is current unless a replay from the start set it aside: its
//! number is below its run's `journal_mark`.

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row as _};

use super::codec::{entry_from_row, int4, int8, json_text, parse_json};
use super::queue::settle;
use crate::{JournalEntry, RunId, StoreError};

/// Entries one run may hold, as in the SQLite store (where it is the span
/// of journal keys each run owns).
pub(super) const ENTRIES_PER_RUN: i32 = 1 << 20;

/// Takes the next entry number while the lease holds under the entry's
/// claim (its `attempt`) and the journal has room; returns it with the
/// run's flow (whose state the entry may set).
const TAKE_NUMBER: &str = "\
UPDATE runs SET journal_entries = journal_entries + 1
WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $4
  AND journal_entries < $3
RETURNING journal_entries - 1 AS n, flow";

/// Whether the run is still leased to the owner: tells a full journal from
/// a lost lease when no number was taken.
const HELD: &str = "\
SELECT 1 FROM runs WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3";

const INSERT_ENTRY: &str = "\
INSERT INTO journal (run_id, n, step_index, step_id, item, attempt, status, started_at,
                     duration_ms, request, output, error, error_class)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// A step's state goes to the flow [`TAKE_NUMBER`] read from the run: a
/// caller cannot write another flow's state.
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

/// Appends `entry` for a run leased to `owner` under the entry's claim, and replaces the run's
/// flow's state with `state` when given, inside the caller's transaction.
pub(super) async fn insert_entry(
    connection: &mut PgConnection,
    owner: &str,
    entry: &JournalEntry,
    state: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    let run = entry.run_id;
    let taken = sqlx::query(TAKE_NUMBER)
        .bind(run)
        .bind(owner)
        .bind(ENTRIES_PER_RUN)
        .bind(int4(entry.attempt))
        .fetch_optional(&mut *connection)
        .await?;
    let Some(taken) = taken else {
        let held = sqlx::query(HELD)
            .bind(run)
            .bind(owner)
            .bind(int4(entry.attempt))
            .fetch_optional(&mut *connection)
            .await?
            .is_some();
        return Err(if held {
            StoreError::JournalFull {
                run,
                entries: ENTRIES_PER_RUN.unsigned_abs().into(),
            }
        } else {
            StoreError::LeaseLost { run }
        });
    };
    let n: i32 = taken.try_get("n")?;
    let flow: String = taken.try_get("flow")?;
    sqlx::query(INSERT_ENTRY)
        .bind(run)
        .bind(n)
        .bind(int4(entry.step_index))
        .bind(&entry.step_id)
        .bind(entry.item.map(int4))
        .bind(int4(entry.attempt))
        .bind(entry.status.as_str())
        .bind(entry.started_at.timestamp_millis())
        .bind(int8(entry.duration_ms))
        .bind(entry.request.as_ref().map(json_text))
        .bind(entry.output.as_ref().map(json_text))
        .bind(entry.error.as_deref())
        .bind(entry.error_class.as_deref())
        .execute(&mut *connection)
        .await?;
    if let Some(state) = state {
        sqlx::query(PUT_STATE)
            .bind(flow)
            .bind(json_text(state))
            .bind(now)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

pub(super) async fn record_step(
    pool: &PgPool,
    owner: &str,
    entry: &JournalEntry,
    state: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let written = insert_entry(&mut tx, owner, entry, state, now).await;
    settle(tx, written).await
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
