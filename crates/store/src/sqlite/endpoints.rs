//! Webhook endpoint records (see [`crate::Endpoint`]): a delivery's
//! outcome goes through the group commit (see [`super::writer`]); records
//! are read from the readers.

use rusqlite::Connection;
use sqlx::sqlite::SqlitePool;

use super::codec::millis;
use crate::{DeliveryAttempt, Endpoint, StoreError};

/// `?2` is whether the attempt delivered. Every `SET` expression sees the
/// row as it was, so the spell's start and the disabling agree.
const RECORD: &str = "\
INSERT INTO endpoints (name, failing_since, disabled_at, last_attempt_at, last_status, last_error, \
                       delivered, failed) \
VALUES (?1, CASE WHEN ?2 THEN NULL ELSE ?3 END, NULL, ?3, ?4, ?5, ?2, 1 - ?2) \
ON CONFLICT (name) DO UPDATE SET \
    failing_since = CASE WHEN ?2 THEN NULL ELSE coalesce(failing_since, ?3) END, \
    disabled_at = CASE \
        WHEN disabled_at IS NOT NULL THEN disabled_at \
        WHEN NOT ?2 AND failing_since IS NOT NULL AND ?3 - failing_since >= ?6 THEN ?3 \
        ELSE NULL END, \
    last_attempt_at = ?3, \
    last_status = ?4, \
    last_error = ?5, \
    delivered = delivered + ?2, \
    failed = failed + 1 - ?2";

const ONE: &str = "\
SELECT name, failing_since, disabled_at, last_attempt_at, last_status, last_error, delivered, failed \
FROM endpoints WHERE name = ?1";

const LIST: &str = "\
SELECT name, failing_since, disabled_at, last_attempt_at, last_status, last_error, delivered, failed \
FROM endpoints ORDER BY name";

pub(super) fn record(connection: &Connection, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
    let disable_after = i64::try_from(attempt.disable_after.as_millis()).unwrap_or(i64::MAX);
    connection
        .prepare_cached(RECORD)?
        .execute(rusqlite::params![
            attempt.endpoint,
            attempt.delivered,
            millis(attempt.at),
            attempt.status,
            attempt.error,
            disable_after,
        ])?;
    Ok(())
}

pub(super) fn enable(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    let changed = connection
        .prepare_cached(
            "UPDATE endpoints SET disabled_at = NULL, failing_since = NULL WHERE name = ?1",
        )?
        .execute([name])?;
    Ok(changed > 0)
}

pub(super) async fn one(reader: &SqlitePool, name: &str) -> Result<Option<Endpoint>, StoreError> {
    let row = sqlx::query(ONE).bind(name).fetch_optional(reader).await?;
    row.as_ref().map(crate::rows::endpoint_from_row).transpose()
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<Endpoint>, StoreError> {
    let rows = sqlx::query(LIST).fetch_all(reader).await?;
    rows.iter().map(crate::rows::endpoint_from_row).collect()
}
