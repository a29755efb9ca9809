//! Webhook endpoint records on PostgreSQL. Semantics are those of the
//! `Store` trait and of `crate::sqlite::endpoints`.

use sqlx::PgPool;

use crate::{DeliveryAttempt, Endpoint, StoreError};

/// `$2` is whether the attempt delivered. Every `SET` expression sees the
/// row as it was, so the spell's start and the disabling agree; the row is
/// locked for the update, so two nodes' attempts add up.
const RECORD: &str = "\
INSERT INTO endpoints (name, failing_since, disabled_at, last_attempt_at, last_status, last_error, \
                       delivered, failed) \
VALUES ($1, CASE WHEN $2 THEN NULL ELSE $3 END, NULL, $3, $4, $5, \
        CASE WHEN $2 THEN 1 ELSE 0 END, CASE WHEN $2 THEN 0 ELSE 1 END) \
ON CONFLICT (name) DO UPDATE SET \
    failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(endpoints.failing_since, $3) END, \
    disabled_at = CASE \
        WHEN endpoints.disabled_at IS NOT NULL THEN endpoints.disabled_at \
        WHEN NOT $2 AND endpoints.failing_since IS NOT NULL \
             AND $3 - endpoints.failing_since >= $6 THEN $3 \
        ELSE NULL END, \
    last_attempt_at = $3, \
    last_status = $4, \
    last_error = $5, \
    delivered = endpoints.delivered + CASE WHEN $2 THEN 1 ELSE 0 END, \
    failed = endpoints.failed + CASE WHEN $2 THEN 0 ELSE 1 END \
RETURNING name, failing_since, disabled_at, last_attempt_at, last_status, last_error, \
          delivered, failed";

const ONE: &str = "\
SELECT name, failing_since, disabled_at, last_attempt_at, last_status, last_error, delivered, failed \
FROM endpoints WHERE name = $1";

const LIST: &str = "\
SELECT name, failing_since, disabled_at, last_attempt_at, last_status, last_error, delivered, failed \
FROM endpoints ORDER BY name";

pub(super) async fn record(
    pool: &PgPool,
    attempt: &DeliveryAttempt,
) -> Result<Endpoint, StoreError> {
    let disable_after = i64::try_from(attempt.disable_after.as_millis()).unwrap_or(i64::MAX);
    let row = sqlx::query(RECORD)
        .bind(&attempt.endpoint)
        .bind(attempt.delivered)
        .bind(attempt.at.timestamp_millis())
        .bind(attempt.status.map(i64::from))
        .bind(&attempt.error)
        .bind(disable_after)
        .fetch_one(pool)
        .await?;
    crate::rows::endpoint_from_row(&row)
}

pub(super) async fn enable(pool: &PgPool, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE endpoints SET disabled_at = NULL, failing_since = NULL WHERE name = $1",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn one(pool: &PgPool, name: &str) -> Result<Option<Endpoint>, StoreError> {
    let row = sqlx::query(ONE).bind(name).fetch_optional(pool).await?;
    row.as_ref().map(crate::rows::endpoint_from_row).transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<Endpoint>, StoreError> {
    let rows = sqlx::query(LIST).fetch_all(pool).await?;
    rows.iter().map(crate::rows::endpoint_from_row).collect()
}
