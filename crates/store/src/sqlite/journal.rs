//! The step journal and per-flow state.
//!
//! A journal entry is only appended while the recording worker still holds
//! the run's lease; the check is part of the insert (`INSERT ... SELECT ...
//! WHERE EXISTS`), so it cannot race with a claim by another worker. When a
//! step also sets the flow's state, both writes share one transaction: a
//! crash never leaves state that no journal entry accounts for, or the reverse.
//! The writes themselves are applied by [`super::batch`], which commits
//! concurrent runs' entries together.

use serde_json::Value;
use sqlx::sqlite::SqlitePool;

use super::codec::{entry_from_row, id_text, parse_json};
use crate::{JournalEntry, RunId, StoreError};

pub(super) const INSERT_ENTRY: &str = "\
INSERT INTO journal (run_id, step_index, step_id, item, attempt, status, started_at, duration_ms,
                     request, output, error, error_class)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13
WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = 'running' AND lease_owner = $12)";

/// The state belongs to the run's flow, looked up from the run itself so a
/// caller cannot write another flow's state. (`WHERE` is also what SQLite
/// needs to parse `INSERT ... SELECT` followed by `ON CONFLICT`.)
pub(super) const UPSERT_STATE: &str = "\
INSERT INTO flow_state (flow, state, updated_at)
SELECT flow, $2, $3 FROM runs WHERE id = $1
ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

const SELECT_JOURNAL: &str = "\
SELECT run_id, step_index, step_id, item, attempt, status, started_at, duration_ms, request,
       output, error, error_class, superseded
FROM journal WHERE run_id = $1 ORDER BY seq";

const SELECT_STATE: &str = "SELECT state FROM flow_state WHERE flow = $1";

pub(super) async fn journal(
    reader: &SqlitePool,
    run: RunId,
) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = sqlx::query(SELECT_JOURNAL)
        .bind(id_text(run))
        .fetch_all(reader)
        .await?;
    rows.iter().map(entry_from_row).collect()
}

pub(super) async fn flow_state(reader: &SqlitePool, flow: &str) -> Result<Value, StoreError> {
    let state: Option<String> = sqlx::query_scalar(SELECT_STATE)
        .bind(flow)
        .fetch_optional(reader)
        .await?;
    match state {
        Some(text) => parse_json("flow_state.state", &text),
        None => Ok(Value::Null),
    }
}
