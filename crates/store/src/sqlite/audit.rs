//! The audit log: entries written through the group commit (see
//! [`super::writer`]), listed newest first, purged by age.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::codec::{get, id_text, millis, parse_id, parse_time};
use crate::{AuditEntry, AuditFilter, StoreError};

/// The text every audit id created in `time`'s millisecond starts with: the
/// 48-bit millisecond timestamp of a UUIDv7 in hyphenated hex. Any id of a
/// later millisecond sorts after it, any id of an earlier one before it, and
/// ids of the same millisecond after it (they are longer).
fn id_prefix(time: DateTime<Utc>) -> String {
    let ms = time.timestamp_millis().clamp(0, (1 << 48) - 1);
    format!("{:08x}-{:04x}-", ms >> 16, ms & 0xffff)
}

/// Inserts an entry, or completes one written ahead of its action: only
/// the status changes on a second write, so who, what and when stay as
/// first recorded.
const UPSERT: &str = "\
INSERT INTO audit (id, at, actor, method, route, target, status, peer) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
ON CONFLICT (id) DO UPDATE SET status = excluded.status";

const FIRST_PAGE: &str = "\
SELECT id, at, actor, method, route, target, status, peer FROM audit \
ORDER BY id DESC LIMIT +$1";

const NEXT_PAGE: &str = "\
SELECT id, at, actor, method, route, target, status, peer FROM audit \
WHERE id < $1 ORDER BY id DESC LIMIT +$2";

const PURGE: &str = "\
DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < ?1 ORDER BY id LIMIT +?2)";

/// An entry encoded for binding.
pub(super) struct Encoded {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub method: String,
    pub route: String,
    pub target: Option<String>,
    pub status: Option<i64>,
    pub peer: Option<String>,
}

impl Encoded {
    pub fn encode(entry: &AuditEntry) -> Encoded {
        Encoded {
            id: id_text(entry.id),
            at: millis(entry.at),
            actor: entry.actor.clone(),
            method: entry.method.clone(),
            route: entry.route.clone(),
            target: entry.target.clone(),
            status: entry.status.map(i64::from),
            peer: entry.peer.clone(),
        }
    }
}

pub(super) async fn list_audit(
    reader: &SqlitePool,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = crate::listing::page_limit(filter.limit);
    let rows = match filter.before {
        Some(before) => {
            sqlx::query(NEXT_PAGE)
                .bind(id_text(before))
                .bind(i64::from(limit))
                .fetch_all(reader)
                .await?
        }
        None => {
            sqlx::query(FIRST_PAGE)
                .bind(i64::from(limit))
                .fetch_all(reader)
                .await?
        }
    };
    rows.iter().map(entry_from_row).collect()
}

/// Inserts or completes entries (see [`UPSERT`]).
pub(super) fn record(connection: &Connection, entries: &[Encoded]) -> Result<(), StoreError> {
    let mut upsert = connection.prepare_cached(UPSERT)?;
    for entry in entries {
        upsert.execute(rusqlite::params![
            entry.id,
            entry.at,
            entry.actor,
            entry.method,
            entry.route,
            entry.target,
            entry.status,
            entry.peer,
        ])?;
    }
    Ok(())
}

/// Deletes up to `limit` entries recorded before `before`, oldest first.
pub(super) fn purge_audit(
    connection: &Connection,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    // Ids are UUIDv7 text led by their time: the primary key serves this.
    let purged = connection
        .prepare_cached(PURGE)?
        .execute(rusqlite::params![id_prefix(before), limit])?;
    Ok(u64::try_from(purged).unwrap_or(u64::MAX))
}

fn entry_from_row(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    let status: Option<i64> = get(row, "audit.status")?;
    let status = status
        .map(|s| {
            u16::try_from(s).map_err(|_| StoreError::Corrupt {
                what: "audit.status",
                detail: format!("{s} is not an HTTP status"),
            })
        })
        .transpose()?;
    Ok(AuditEntry {
        id: parse_id("audit.id", get(row, "audit.id")?)?,
        at: parse_time("audit.at", get(row, "audit.at")?)?,
        actor: get(row, "audit.actor")?,
        method: get(row, "audit.method")?,
        route: get(row, "audit.route")?,
        target: get(row, "audit.target")?,
        status,
        peer: get(row, "audit.peer")?,
    })
}
