//! Contract drift records: added to through the group commit (see
//! [`super::writer`]), listed by connector and operation.

use rusqlite::Connection;
use sqlx::sqlite::SqlitePool;

use super::codec::millis;
use crate::{Drift, DriftObservation, StoreError};

/// Adds a batch's observations to its kind's record; the first example
/// and first sighting stay. Returns whether the row is new: its count is
/// then the batch's own (a batch counts at least one reply, so an updated
/// row's count is larger).
const UPSERT: &str = "\
INSERT INTO contract_drift (connector, operation, response, pointer, expected, seen, first_seen, \
                            last_seen, count, example) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
ON CONFLICT (connector, operation, response, pointer, expected) DO UPDATE SET \
    seen = excluded.seen, \
    first_seen = min(first_seen, excluded.first_seen), \
    last_seen = max(last_seen, excluded.last_seen), \
    count = count + excluded.count \
RETURNING count = ?9";

const LIST: &str = "\
SELECT connector, operation, response, pointer, expected, seen, first_seen, last_seen, count, \
       example \
FROM contract_drift ORDER BY connector, operation, response, pointer, expected";

/// Adds `observations`; for each, whether its kind is new.
pub(super) fn record(
    connection: &Connection,
    observations: &[DriftObservation],
) -> Result<Vec<bool>, StoreError> {
    let mut upsert = connection.prepare_cached(UPSERT)?;
    let mut new = Vec::with_capacity(observations.len());
    for seen in observations {
        let count = i64::try_from(seen.count).unwrap_or(i64::MAX);
        let is_new: bool = upsert.query_row(
            rusqlite::params![
                seen.kind.connector,
                seen.kind.operation,
                seen.kind.response,
                seen.kind.pointer,
                seen.kind.expected,
                seen.seen,
                millis(seen.first_seen),
                millis(seen.last_seen),
                count,
                seen.example,
            ],
            |row| row.get(0),
        )?;
        new.push(is_new);
    }
    Ok(new)
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<Drift>, StoreError> {
    let rows = sqlx::query(LIST).fetch_all(reader).await?;
    rows.iter().map(crate::rows::drift_from_row).collect()
}
