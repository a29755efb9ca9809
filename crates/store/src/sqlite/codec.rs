//! Conversions between model values and SQLite columns, and row decoding.
//!
//! Anything read back from the file is treated as untrusted: a value that
//! does not decode (bad JSON, unknown status, a text where a number belongs)
//! becomes [`StoreError::Corrupt`] naming the column, never a panic.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;

use crate::rows::{column_of, parse_opt_time};
pub(super) use crate::rows::{corrupt, parse_time, parse_u64};
use crate::{JournalEntry, Run, RunId, RunStatus, StepStatus, StoreError};

/// The columns of `runs`, in the order [`run_from_row`] reads them by name.
/// A macro so queries can splice it with `concat!` and stay `&'static str`.
macro_rules! run_columns {
    () => {
        "id, flow, status, trigger, input, headers, output, error, attempts, retries, \
         config_version, dedupe_key, lease_owner, lease_expires_at, next_attempt_at, created_at, updated_at, \
         finished_at, stalled_claims, parent_run_id"
    };
}
pub(super) use run_columns;

/// `now` plus a duration in milliseconds, saturating instead of overflowing
/// for absurd durations.
pub(super) fn after(now: i64, span: std::time::Duration) -> i64 {
    now.saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
}

/// A time as stored.
pub(super) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// A run id as stored: its 16 bytes, which sort by creation time (UUIDv7).
pub(super) fn id_bytes(id: RunId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// The bytes every run id created in millisecond `ms` (unix) starts with:
/// the 48-bit big-endian millisecond timestamp that leads a UUIDv7. Any id
/// of a later millisecond sorts after it, any id of an earlier one before
/// it, and ids of the same millisecond after it (they are longer).
pub(super) fn id_floor(ms: i64) -> Vec<u8> {
    let ms = ms.clamp(0, (1 << 48) - 1);
    ms.to_be_bytes()[2..].to_vec()
}

/// An audit entry's id as stored (text; the audit log is small).
pub(super) fn id_text(id: uuid::Uuid) -> String {
    id.hyphenated().to_string()
}

/// A JSON document as stored.
pub(super) fn json_text(value: &Value) -> String {
    value.to_string()
}

/// A non-negative count as stored; counts beyond `i64` cannot occur in
/// practice, so they saturate rather than fail.
pub(super) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row as the decoders below read it, from either driver: reads go
/// through sqlx's pool, writes that return rows (a claim, a cancel)
/// through the writer's own connection.
pub(super) trait Columns {
    /// Text column `what`, NULL as `None`.
    fn opt_text(&self, what: &'static str) -> Result<Option<String>, StoreError>;
    /// Integer column `what`, NULL as `None`.
    fn opt_int(&self, what: &'static str) -> Result<Option<i64>, StoreError>;
    /// Blob column `what`, NULL as `None`.
    fn opt_bytes(&self, what: &'static str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Text column `what`, which must not be NULL.
    fn text(&self, what: &'static str) -> Result<String, StoreError> {
        self.opt_text(what)?
            .ok_or_else(|| corrupt(what, "NULL where a value belongs"))
    }
    /// Integer column `what`, which must not be NULL.
    fn int(&self, what: &'static str) -> Result<i64, StoreError> {
        self.opt_int(what)?
            .ok_or_else(|| corrupt(what, "NULL where a value belongs"))
    }
    /// Run id column `what`, NULL as `None`.
    fn opt_run_id(&self, what: &'static str) -> Result<Option<RunId>, StoreError> {
        self.opt_bytes(what)?
            .map(|bytes| parse_id_bytes(what, &bytes))
            .transpose()
    }
    /// Run id column `what`, which must not be NULL.
    fn run_id(&self, what: &'static str) -> Result<RunId, StoreError> {
        self.opt_run_id(what)?
            .ok_or_else(|| corrupt(what, "NULL where a value belongs"))
    }
}

impl Columns for SqliteRow {
    fn opt_text(&self, what: &'static str) -> Result<Option<String>, StoreError> {
        get(self, what)
    }
    fn opt_int(&self, what: &'static str) -> Result<Option<i64>, StoreError> {
        get(self, what)
    }
    fn opt_bytes(&self, what: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        get(self, what)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_text(&self, what: &'static str) -> Result<Option<String>, StoreError> {
        self.get(column_of(what)).map_err(|e| decode_error(what, e))
    }
    fn opt_int(&self, what: &'static str) -> Result<Option<i64>, StoreError> {
        self.get(column_of(what)).map_err(|e| decode_error(what, e))
    }
    fn opt_bytes(&self, what: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(column_of(what)).map_err(|e| decode_error(what, e))
    }
}

fn decode_error(what: &'static str, error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            corrupt(what, error)
        }
        other => StoreError::Sql(other),
    }
}

pub(super) fn parse_id(what: &'static str, text: &str) -> Result<RunId, StoreError> {
    RunId::parse_str(text).map_err(|e| corrupt(what, format!("{text:?}: {e}")))
}

/// A run id read back from its 16 stored bytes.
pub(super) fn parse_id_bytes(what: &'static str, bytes: &[u8]) -> Result<RunId, StoreError> {
    RunId::from_slice(bytes)
        .map_err(|_| corrupt(what, format!("{} bytes where a run id has 16", bytes.len())))
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

fn parse_u32(what: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what, format!("{value} is not a valid count")))
}

/// Decodes a row selected with [`run_columns!`].
pub(super) fn run_from_row(row: &impl Columns) -> Result<Run, StoreError> {
    Ok(Run {
        id: row.run_id("runs.id")?,
        flow: row.text("runs.flow")?,
        status: parse_status("runs.status", &row.text("runs.status")?)?,
        trigger: row.text("runs.trigger")?,
        input: parse_json("runs.input", &row.text("runs.input")?)?,
        headers: parse_json("runs.headers", &row.text("runs.headers")?)?,
        output: parse_opt_json("runs.output", row.opt_text("runs.output")?)?,
        error: row.opt_text("runs.error")?,
        attempts: parse_u32("runs.attempts", row.int("runs.attempts")?)?,
        retries: parse_u32("runs.retries", row.int("runs.retries")?)?,
        config_version: row.text("runs.config_version")?,
        dedupe_key: row.opt_text("runs.dedupe_key")?,
        lease_owner: row.opt_text("runs.lease_owner")?,
        lease_expires_at: parse_opt_time(
            "runs.lease_expires_at",
            row.opt_int("runs.lease_expires_at")?,
        )?,
        next_attempt_at: parse_time("runs.next_attempt_at", row.int("runs.next_attempt_at")?)?,
        created_at: parse_time("runs.created_at", row.int("runs.created_at")?)?,
        updated_at: parse_time("runs.updated_at", row.int("runs.updated_at")?)?,
        finished_at: parse_opt_time("runs.finished_at", row.opt_int("runs.finished_at")?)?,
        stalled_claims: parse_u32("runs.stalled_claims", row.int("runs.stalled_claims")?)?,
        parent: row.opt_run_id("runs.parent_run_id")?,
    })
}

/// Decodes a row of `journal` (all columns but `seq`).
pub(super) fn entry_from_row(row: &impl Columns) -> Result<JournalEntry, StoreError> {
    let status = row.text("journal.status")?;
    let item = row.opt_int("journal.item")?;
    Ok(JournalEntry {
        run_id: row.run_id("journal.run_id")?,
        step_index: parse_u32("journal.step_index", row.int("journal.step_index")?)?,
        step_id: row.text("journal.step_id")?,
        item: item.map(|i| parse_u32("journal.item", i)).transpose()?,
        attempt: parse_u32("journal.attempt", row.int("journal.attempt")?)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| corrupt("journal.status", format!("unknown step status {status:?}")))?,
        started_at: parse_time("journal.started_at", row.int("journal.started_at")?)?,
        duration_ms: parse_u64("journal.duration_ms", row.int("journal.duration_ms")?)?,
        request: parse_opt_json("journal.request", row.opt_text("journal.request")?)?,
        output: parse_opt_json("journal.output", row.opt_text("journal.output")?)?,
        error: row.opt_text("journal.error")?,
        error_class: row.opt_text("journal.error_class")?,
        current: row.int("journal.superseded")? == 0,
    })
}

/// Reads column `what` of a row of this store (see [`crate::rows::get`]).
pub(super) fn get<'r, T>(row: &'r SqliteRow, what: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    crate::rows::get(row, what)
}
