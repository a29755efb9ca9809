//! Contract drift records on PostgreSQL: added to in batches, listed by
//! connector and operation. Semantics are those of the `Store` trait and
//! of `crate::sqlite::drift`.

use sqlx::PgPool;

use super::codec::int8;
use crate::{Drift, DriftObservation, StoreError};

/// Adds a batch's observations to its kind's record; the first example
/// and first sighting stay. Returns whether the row is new: its count is
/// then the batch's own (a batch counts at least one reply, so an updated
/// row's count is larger).
const UPSERT: &str = "\
INSERT INTO contract_drift (connector, operation, response, pointer, expected, seen, first_seen, \
                            last_seen, count, example) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
ON CONFLICT (connector, operation, response, pointer, expected) DO UPDATE SET \
    seen = excluded.seen, \
    first_seen = LEAST(contract_drift.first_seen, excluded.first_seen), \
    last_seen = GREATEST(contract_drift.last_seen, excluded.last_seen), \
    count = contract_drift.count + excluded.count \
RETURNING contract_drift.count = $9 AS inserted";

const LIST: &str = "\
SELECT connector, operation, response, pointer, expected, seen, first_seen, last_seen, count, \
       example \
FROM contract_drift ORDER BY connector, operation, response, pointer, expected";

/// Adds `observations`; for each, whether its kind is new.
pub(super) async fn record_drift(
    pool: &PgPool,
    observations: &[DriftObservation],
    // Observations carry their own times: the store's clock has no part
    // in a record.
    _now: i64,
) -> Result<Vec<bool>, StoreError> {
    if observations.is_empty() {
        return Ok(Vec::new());
    }
    // Rows are locked in key order, whatever the batch's order, so two
    // nodes recording overlapping batches wait for each other instead of
    // deadlocking.
    let mut order: Vec<usize> = (0..observations.len()).collect();
    order.sort_by(|&a, &b| observations[a].kind.cmp(&observations[b].kind));

    let mut new = vec![false; observations.len()];
    let mut tx = pool.begin().await?;
    for at in order {
        let seen = &observations[at];
        new[at] = sqlx::query_scalar(UPSERT)
            .bind(&seen.kind.connector)
            .bind(&seen.kind.operation)
            .bind(&seen.kind.response)
            .bind(&seen.kind.pointer)
            .bind(&seen.kind.expected)
            .bind(&seen.seen)
            .bind(seen.first_seen.timestamp_millis())
            .bind(seen.last_seen.timestamp_millis())
            .bind(int8(seen.count))
            .bind(&seen.example)
            .fetch_one(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(new)
}

pub(super) async fn list_drift(pool: &PgPool) -> Result<Vec<Drift>, StoreError> {
    let rows = sqlx::query(LIST).fetch_all(pool).await?;
    rows.iter().map(crate::rows::drift_from_row).collect()
}
