//! The step journal and per-flow state.
//!
//! An entry's key is its run's `seq` times 2^20 plus the number of the run's
//! entries before it (migration 0012): a run's entries are one range of the
//! journal's primary key, found with no index of their own.
//!
//! A journal entry is only appended while the recording worker still holds
//! the run's lease; the check is part of the insert (`INSERT ... SELECT ...
//! FROM runs WHERE ...`), so it cannot race with a claim by another worker. When a
//! step also sets the flow's state, both writes share one transaction: a
//! crash never leaves state that no journal entry accounts for, or the reverse.
//! The writes themselves are jobs of [`super::writer`], which commits
//! concurrent runs' entries together.

use rusqlite::Connection;
use serde_json::Value;
use sqlx::sqlite::SqlitePool;

use super::codec::{entry_from_row, id_bytes, int, json_text, millis, parse_json};
use crate::{JournalEntry, RunId, StoreError};

/// Entries one run may hold: the span of keys each run owns.
pub(super) const ENTRIES_PER_RUN: i64 = 1 << 20;

/// The next key of the run's range, while the lease holds under the
/// entry's claim (its `attempt`, the claim's fencing token) and the range
/// has room. The literals are [`ENTRIES_PER_RUN`] (SQL text cannot name a Rust
/// constant; `the_sql_spells_the_entries_per_run` keeps them equal).
const INSERT_ENTRY: &str = "\
INSERT INTO journal (key, step_index, step_id, item, attempt, status, started_at, duration_ms,
                     request, output, error, error_class)
SELECT next_key, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13
FROM (
    SELECT r.seq * 1048576 AS first_key,
           coalesce((SELECT max(key) + 1 FROM journal
                     WHERE key BETWEEN r.seq * 1048576 AND r.seq * 1048576 + 1048575),
                    r.seq * 1048576) AS next_key
    FROM runs AS r
    WHERE r.id = ?1 AND r.status = 'running' AND r.lease_owner = ?12 AND r.attempts = ?5)
WHERE next_key < first_key + 1048576";

/// Whether the run is still leased to the owner: tells a full journal from
/// a lost lease when an entry was not inserted.
const HELD: &str = "\
SELECT 1 FROM runs WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempts = ?3";

/// The state belongs to the run's flow, looked up from the run itself so a
/// caller cannot write another flow's state. (`WHERE` is also what SQLite
/// needs to parse `INSERT ... SELECT` followed by `ON CONFLICT`.)
const UPSERT_STATE: &str = "\
INSERT INTO flow_state (flow, state, updated_at)
SELECT flow, ?2, ?3 FROM runs WHERE id = ?1
ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

/// What an entry stores as its output when it is the run's output, written
/// in the same job (the last step of a run that succeeded): no copy. Never
/// valid JSON, so never an output of its own.
const SAME_AS_RUN_OUTPUT: &str = "";

/// A journal entry (and the flow state it sets) encoded for binding, on
/// the caller's thread.
pub(super) struct EncodedEntry {
    run: RunId,
    run_bytes: Vec<u8>,
    owner: String,
    step_index: i64,
    step_id: String,
    item: Option<i64>,
    attempt: i64,
    status: &'static str,
    started_at: i64,
    duration_ms: i64,
    request: Option<String>,
    output: Option<String>,
    error: Option<String>,
    error_class: Option<String>,
    state: Option<String>,
    /// When the write was asked for: the state's update time.
    at: i64,
}

impl EncodedEntry {
    pub fn encode(
        owner: &str,
        entry: &JournalEntry,
        state: Option<&Value>,
        at: i64,
    ) -> EncodedEntry {
        EncodedEntry {
            run: entry.run_id,
            run_bytes: id_bytes(entry.run_id),
            owner: owner.to_string(),
            step_index: i64::from(entry.step_index),
            step_id: entry.step_id.clone(),
            item: entry.item.map(i64::from),
            attempt: i64::from(entry.attempt),
            status: entry.status.as_str(),
            started_at: millis(entry.started_at),
            duration_ms: int(entry.duration_ms),
            request: entry.request.as_ref().map(json_text),
            output: entry.output.as_ref().map(json_text),
            error: entry.error.clone(),
            error_class: entry.error_class.clone(),
            state: state.map(json_text),
            at,
        }
    }
}

impl EncodedEntry {
    /// Stores the output as a reference to the run's when the two are the
    /// same text: the run's output is written with this entry.
    pub fn share_output_with_run(&mut self, run_output: Option<&str>) {
        if self.output.is_some() && self.output.as_deref() == run_output {
            self.output = Some(SAME_AS_RUN_OUTPUT.to_owned());
        }
    }
}

/// Appends an entry while the run is leased to its owner under the
/// entry's claim, and replaces the
/// flow's state when the entry sets it.
pub(super) fn record_step(connection: &Connection, entry: &EncodedEntry) -> Result<(), StoreError> {
    let inserted = connection
        .prepare_cached(INSERT_ENTRY)?
        .execute(rusqlite::params![
            entry.run_bytes,
            entry.step_index,
            entry.step_id,
            entry.item,
            entry.attempt,
            entry.status,
            entry.started_at,
            entry.duration_ms,
            entry.request,
            entry.output,
            entry.error,
            entry.owner,
            entry.error_class,
        ])?;
    if inserted == 0 {
        let held = connection.prepare_cached(HELD)?.exists(rusqlite::params![
            entry.run_bytes,
            entry.owner,
            entry.attempt
        ])?;
        return Err(if held {
            StoreError::JournalFull {
                run: entry.run,
                entries: ENTRIES_PER_RUN.unsigned_abs(),
            }
        } else {
            StoreError::LeaseLost { run: entry.run }
        });
    }
    if let Some(state) = &entry.state {
        connection
            .prepare_cached(UPSERT_STATE)?
            .execute(rusqlite::params![entry.run_bytes, state, entry.at])?;
    }
    Ok(())
}

const SELECT_JOURNAL: &str = "\
SELECT r.id AS run_id, j.step_index, j.step_id, j.item, j.attempt, j.status, j.started_at,
       j.duration_ms, j.request, CASE WHEN j.output = '' THEN r.output ELSE j.output END AS output,
       j.error, j.error_class, j.superseded
FROM runs AS r
JOIN journal AS j ON j.key BETWEEN r.seq * 1048576 AND r.seq * 1048576 + 1048575
WHERE r.id = $1
ORDER BY j.key";

const PUT_STATE: &str = "\
INSERT INTO flow_state (flow, state, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";

pub(super) fn put_flow_state(
    connection: &rusqlite::Connection,
    flow: &str,
    state: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(PUT_STATE)?
        .execute(rusqlite::params![flow, state, now])?;
    Ok(())
}

const SELECT_STATE: &str = "SELECT state FROM flow_state WHERE flow = $1";

pub(super) async fn journal(
    reader: &SqlitePool,
    run: RunId,
) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = sqlx::query(SELECT_JOURNAL)
        .bind(id_bytes(run))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::{migrated_store, plan, scans_history};

    #[test]
    fn the_sql_spells_the_shared_output_marker() {
        assert!(SELECT_JOURNAL.contains(&format!("j.output = '{SAME_AS_RUN_OUTPUT}'")));
    }

    #[test]
    fn the_sql_spells_the_entries_per_run() {
        let first = ENTRIES_PER_RUN.to_string();
        let last = (ENTRIES_PER_RUN - 1).to_string();
        for sql in [INSERT_ENTRY, SELECT_JOURNAL] {
            assert!(sql.contains(&first) && sql.contains(&last), "{sql}");
        }
    }

    /// A run's entries are a range of the journal's key, found through the
    /// run's id: no scan, and no index of the journal's own.
    #[tokio::test]
    async fn a_run_s_entries_are_one_key_range() {
        let (_dir, path) = migrated_store().await;
        for sql in [INSERT_ENTRY, SELECT_JOURNAL] {
            let plan = plan(&path, sql);
            assert!(!plan.iter().any(|s| scans_history(s)), "{plan:?}");
            assert!(
                plan.iter()
                    .any(|s| s.contains("SEARCH j") || s.contains("SEARCH journal")),
                "{plan:?}"
            );
        }
    }
}
