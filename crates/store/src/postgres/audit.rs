//! The audit log on PostgreSQL: entries written ahead and completed,
//! listed newest first, purged by age. Semantics are those of the `Store`
//! trait and of `crate::sqlite::audit`.
//!
//! Ids are UUIDv7 stored as `uuid`, which PostgreSQL orders byte by byte,
//! so the primary key orders entries by time for the listing's pages and
//! for the purge.

use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::codec::{corrupt, get, id_floor, parse_time};
use crate::{AuditEntry, AuditFilter, StoreError};

/// Inserts an entry, or completes one written ahead of its action: only
/// the status changes on a second write, so who, what and when stay as
/// first recorded.
const UPSERT: &str = "\
INSERT INTO audit (id, at, actor, method, route, target, status, peer) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
ON CONFLICT (id) DO UPDATE SET status = excluded.status";

const FIRST_PAGE: &str = "\
SELECT id, at, actor, method, route, target, status, peer FROM audit \
ORDER BY id DESC LIMIT $1";

const NEXT_PAGE: &str = "\
SELECT id, at, actor, method, route, target, status, peer FROM audit \
WHERE id < $1 ORDER BY id DESC LIMIT $2";

const PURGE: &str = "\
DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < $1 ORDER BY id LIMIT $2)";

pub(super) async fn record_audit(pool: &PgPool, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    // One statement per entry rather than one for the batch: a batch may
    // hold an entry and its completion, and one `INSERT … ON CONFLICT`
    // cannot change a row twice.
    for entry in entries {
        sqlx::query(UPSERT)
            .bind(entry.id)
            .bind(entry.at.timestamp_millis())
            .bind(&entry.actor)
            .bind(&entry.method)
            .bind(&entry.route)
            .bind(entry.target.as_deref())
            .bind(entry.status.map(i32::from))
            .bind(entry.peer.as_deref())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list_audit(
    pool: &PgPool,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = crate::listing::page_limit(filter.limit);
    let rows = match filter.before {
        Some(before) => {
            sqlx::query(NEXT_PAGE)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query(FIRST_PAGE)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(entry_from_row).collect()
}

/// Deletes up to `limit` entries recorded before `before` (by their ids'
/// time, as in SQLite), oldest first.
pub(super) async fn purge_audit(pool: &PgPool, before: i64, limit: u32) -> Result<u64, StoreError> {
    let purged = sqlx::query(PURGE)
        .bind(id_floor(before))
        .bind(i64::from(limit))
        .execute(pool)
        .await?;
    Ok(purged.rows_affected())
}

fn entry_from_row(row: &PgRow) -> Result<AuditEntry, StoreError> {
    let status: Option<i32> = get(row, "audit.status")?;
    let status = status
        .map(|s| {
            u16::try_from(s)
                .map_err(|_| corrupt("audit.status", format!("{s} is not an HTTP status")))
        })
        .transpose()?;
    Ok(AuditEntry {
        id: get(row, "audit.id")?,
        at: parse_time("audit.at", get(row, "audit.at")?)?,
        actor: get(row, "audit.actor")?,
        method: get(row, "audit.method")?,
        route: get(row, "audit.route")?,
        target: get(row, "audit.target")?,
        status,
        peer: get(row, "audit.peer")?,
    })
}
