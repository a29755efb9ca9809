//! Column conversions and row decoding shared by the PostgreSQL queries.
//!
//! Anything read back from the database is treated as untrusted, as in the
//! SQLite store: a value that does not decode (bad JSON, unknown status, a
//! negative count) becomes [`StoreError::Corrupt`] naming the column, never
//! a panic.

use serde_json::Value;

use sqlx::postgres::PgRow;

use crate::rows::parse_opt_time;
pub(super) use crate::rows::{corrupt, parse_time, parse_u64};
use crate::{JournalEntry, Run, RunId, RunStatus, StepStatus, StoreError};

/// The columns of `runs` that [`run_from_row`] reads, for a `SELECT` or a
/// `RETURNING` clause.
pub(super) const RUN_COLUMNS: &str = "id, flow, status, trigger, input, headers, output, error, \
     attempts, retries, config_version, dedupe_key, lease_owner, lease_expires_at, \
     next_attempt_at, created_at, updated_at, finished_at, stalled_claims, parent_run_id";

/// A JSON document as stored: exactly as `serde_json` writes it.
pub(super) fn json_text(value: &Value) -> String {
    value.to_string()
}

/// A count or index as stored in an `INTEGER` column; values beyond it
/// cannot occur in practice, so they saturate rather than fail.
pub(super) fn int4(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A count as stored in a `BIGINT` column, saturating likewise.
pub(super) fn int8(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Non-NULL column `what`.
fn required<'r, T>(row: &'r PgRow, what: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    get::<Option<T>>(row, what)?.ok_or_else(|| corrupt(what, "NULL where a value belongs"))
}

pub(super) fn parse_json(what: &'static str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn parse_opt_json(what: &'static str, text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|t| parse_json(what, &t)).transpose()
}

pub(super) fn parse_status(what: &'static str, name: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(name).ok_or_else(|| corrupt(what, format!("unknown run status {name:?}")))
}

pub(super) fn parse_u32(what: &'static str, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what, format!("{value} is not a valid count")))
}

/// Decodes a row selected (or returned) with [`RUN_COLUMNS`].
pub(super) fn run_from_row(row: &PgRow) -> Result<Run, StoreError> {
    Ok(Run {
        id: required::<RunId>(row, "runs.id")?,
        flow: required(row, "runs.flow")?,
        status: parse_status("runs.status", &required::<String>(row, "runs.status")?)?,
        trigger: required(row, "runs.trigger")?,
        input: parse_json("runs.input", &required::<String>(row, "runs.input")?)?,
        headers: parse_json("runs.headers", &required::<String>(row, "runs.headers")?)?,
        output: parse_opt_json("runs.output", get(row, "runs.output")?)?,
        error: get(row, "runs.error")?,
        attempts: parse_u32("runs.attempts", required(row, "runs.attempts")?)?,
        retries: parse_u32("runs.retries", required(row, "runs.retries")?)?,
        config_version: required(row, "runs.config_version")?,
        dedupe_key: get(row, "runs.dedupe_key")?,
        lease_owner: get(row, "runs.lease_owner")?,
        lease_expires_at: parse_opt_time(
            "runs.lease_expires_at",
            get(row, "runs.lease_expires_at")?,
        )?,
        next_attempt_at: parse_time(
            "runs.next_attempt_at",
            required(row, "runs.next_attempt_at")?,
        )?,
        created_at: parse_time("runs.created_at", required(row, "runs.created_at")?)?,
        updated_at: parse_time("runs.updated_at", required(row, "runs.updated_at")?)?,
        finished_at: parse_opt_time("runs.finished_at", get(row, "runs.finished_at")?)?,
        stalled_claims: parse_u32("runs.stalled_claims", required(row, "runs.stalled_claims")?)?,
        parent: get(row, "runs.parent_run_id")?,
    })
}

/// Decodes a row of `journal` with its run id and a boolean `superseded`
/// (set aside by a replay from the start).
pub(super) fn entry_from_row(row: &PgRow) -> Result<JournalEntry, StoreError> {
    let status: String = required(row, "journal.status")?;
    let item: Option<i32> = get(row, "journal.item")?;
    Ok(JournalEntry {
        run_id: required(row, "journal.run_id")?,
        step_index: parse_u32("journal.step_index", required(row, "journal.step_index")?)?,
        step_id: required(row, "journal.step_id")?,
        item: item.map(|i| parse_u32("journal.item", i)).transpose()?,
        attempt: parse_u32("journal.attempt", required(row, "journal.attempt")?)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| corrupt("journal.status", format!("unknown step status {status:?}")))?,
        started_at: parse_time("journal.started_at", required(row, "journal.started_at")?)?,
        duration_ms: parse_u64("journal.duration_ms", required(row, "journal.duration_ms")?)?,
        request: parse_opt_json("journal.request", get(row, "journal.request")?)?,
        output: parse_opt_json("journal.output", get(row, "journal.output")?)?,
        error: get(row, "journal.error")?,
        error_class: get(row, "journal.error_class")?,
        current: !required::<bool>(row, "journal.superseded")?,
    })
}

// ---------------------------------------------------------------------------
// Bounds on time-ordered ids, for the run listings, the stats and the audit
// log.

/// The lowest UUIDv7 of millisecond `ms` (unix): its 48-bit big-endian
/// timestamp followed by zero bits. PostgreSQL compares `uuid` values byte
/// by byte, so every id of a later millisecond sorts after it, every id of
/// an earlier one before it, and ids of that millisecond at or after it: a
/// time bound becomes an id bound, served by the primary key.
pub(super) fn id_floor(ms: i64) -> uuid::Uuid {
    let ms = ms.clamp(0, (1 << 48) - 1);
    let mut bytes = [0_u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    uuid::Uuid::from_bytes(bytes)
}

/// Reads column `what` of a row of this store (see [`crate::rows::get`]).
pub(super) fn get<'r, T>(row: &'r PgRow, what: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    crate::rows::get(row, what)
}
