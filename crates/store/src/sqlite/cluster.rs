//! Node reports and leases on SQLite (see [`crate::cluster`]): written
//! through the group commit like every write, read from the reader pool.
//! One node is the usual SQLite deployment, but the tables are the same as
//! on PostgreSQL, so the API and the dashboard show a node list either way.

use rusqlite::Connection;
use sqlx::sqlite::SqlitePool;

use super::codec::millis;
use crate::{NodeReport, NodeSeen, StoreError};

const UPSERT_NODE: &str = "\
INSERT INTO nodes (id, version, address, config_version, started_at, heartbeat_at, runs_in_flight)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, address = excluded.address,
    config_version = excluded.config_version, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, runs_in_flight = excluded.runs_in_flight";

const LIST_NODES: &str = "\
SELECT id, version, address, config_version, started_at, heartbeat_at, runs_in_flight
FROM nodes ORDER BY id";

const FORGET_NODES: &str = "DELETE FROM nodes WHERE heartbeat_at < ?1";

/// Overwrites the row only when the lease expired or is the holder's own:
/// no row returned means another holder has it.
const HOLD_LEASE: &str = "\
INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4
RETURNING holder";

const DROP_LEASE: &str = "DELETE FROM leases WHERE name = ?1 AND holder = ?2";

const LEASE_HOLDER: &str = "SELECT holder FROM leases WHERE name = $1 AND expires_at > $2";

/// Reserves the next slot (see the PostgreSQL store's statement). `?2`
/// interval, `?3` tolerance, `?4` now, `?5` horizon, in microseconds;
/// `RETURNING` reads the moved state.
const RESERVE_RATE: &str = "\
INSERT INTO rate_limits (key, tat) VALUES (?1, ?4 + ?2)
ON CONFLICT (key) DO UPDATE SET tat = max(tat, ?4) + ?2
WHERE tat - ?4 <= ?3 + ?5
RETURNING max(tat - ?2 - ?3 - ?4, 0)";

/// How long until a refused key's next slot.
const RATE_WAIT: &str = "SELECT tat - ?2 - ?3 FROM rate_limits WHERE key = ?1";

const FORGET_RATES: &str = "DELETE FROM rate_limits WHERE tat < ?1";

pub(super) fn reserve_rate(
    connection: &Connection,
    key: &str,
    (interval, tolerance): (i64, i64),
    now_micros: i64,
    horizon: i64,
) -> Result<crate::RateSlot, StoreError> {
    let reserved: Option<i64> = connection
        .prepare_cached(RESERVE_RATE)?
        .query(rusqlite::params![
            key, interval, tolerance, now_micros, horizon
        ])?
        .next()?
        .map(|row| row.get(0))
        .transpose()?;
    if let Some(wait) = reserved {
        return Ok(crate::RateSlot::Reserved(crate::cluster::micros(wait)));
    }
    let wait: Option<i64> = connection
        .prepare_cached(RATE_WAIT)?
        .query(rusqlite::params![key, tolerance, now_micros])?
        .next()?
        .map(|row| row.get(0))
        .transpose()?;
    Ok(crate::RateSlot::Refused(crate::cluster::micros(
        wait.unwrap_or(0),
    )))
}

pub(super) fn forget_rates(connection: &Connection, before_micros: i64) -> Result<u64, StoreError> {
    let forgotten = connection
        .prepare_cached(FORGET_RATES)?
        .execute(rusqlite::params![before_micros])?;
    Ok(forgotten as u64)
}

/// Takes the lowest free slot of `?1` among `?2` (a hold past its time is
/// free). The writer runs one statement at a time, so nobody races.
const TAKE_SLOT: &str = "\
WITH RECURSIVE numbers(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM numbers WHERE n + 1 < ?2)
INSERT INTO call_slots (name, slot, holder, expires_at)
SELECT ?1, n, ?3, ?4 + ?5 FROM numbers
WHERE NOT EXISTS (
    SELECT 1 FROM call_slots c WHERE c.name = ?1 AND c.slot = n AND c.expires_at > ?4)
ORDER BY n LIMIT 1
ON CONFLICT (name, slot) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
RETURNING slot";

const RELEASE_SLOT: &str = "DELETE FROM call_slots WHERE name = ?1 AND slot = ?2 AND holder = ?3";

pub(super) fn take_slot(
    connection: &Connection,
    name: &str,
    limit: u32,
    holder: &str,
    (now_micros, hold_micros): (i64, i64),
) -> Result<Option<u32>, StoreError> {
    let slot: Option<u32> = connection
        .prepare_cached(TAKE_SLOT)?
        .query(rusqlite::params![
            name,
            limit,
            holder,
            now_micros,
            hold_micros
        ])?
        .next()?
        .map(|row| row.get(0))
        .transpose()?;
    Ok(slot)
}

pub(super) fn release_slot(
    connection: &Connection,
    name: &str,
    slot: u32,
    holder: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(RELEASE_SLOT)?
        .execute(rusqlite::params![name, slot, holder])?;
    Ok(())
}

const PUBLISH_CONFIG: &str = "\
INSERT INTO published_config (singleton, version, node, published_at) VALUES (1, ?1, ?2, ?3)
ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, node = excluded.node,
    published_at = excluded.published_at";

const PUBLISHED_CONFIG: &str =
    "SELECT version, node, published_at FROM published_config WHERE singleton = 1";

pub(super) fn publish_config(
    connection: &Connection,
    version: &str,
    node: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(PUBLISH_CONFIG)?
        .execute(rusqlite::params![version, node, now])?;
    Ok(())
}

pub(super) async fn published_config(
    reader: &SqlitePool,
) -> Result<Option<crate::PublishedConfig>, StoreError> {
    let row = sqlx::query(PUBLISHED_CONFIG).fetch_optional(reader).await?;
    row.as_ref()
        .map(crate::cluster::published_from_row)
        .transpose()
}

const OPEN_BREAKER: &str = "\
INSERT INTO breaker_openings (connector, open_until, node) VALUES (?1, ?2, ?3)
ON CONFLICT (connector) DO UPDATE SET open_until = excluded.open_until, node = excluded.node
WHERE excluded.open_until > breaker_openings.open_until";

const OPEN_BREAKERS: &str = "\
SELECT connector, open_until, node FROM breaker_openings WHERE open_until > ?1 ORDER BY connector";

pub(super) fn open_breaker(
    connection: &Connection,
    connector: &str,
    until: i64,
    node: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(OPEN_BREAKER)?
        .execute(rusqlite::params![connector, until, node])?;
    Ok(())
}

pub(super) async fn open_breakers(
    reader: &SqlitePool,
    now: i64,
) -> Result<Vec<crate::BreakerOpening>, StoreError> {
    let rows = sqlx::query(OPEN_BREAKERS)
        .bind(now)
        .fetch_all(reader)
        .await?;
    rows.iter().map(crate::cluster::opening_from_row).collect()
}

pub(super) fn heartbeat(
    connection: &Connection,
    report: &NodeReport,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(UPSERT_NODE)?
        .execute(rusqlite::params![
            report.id,
            report.version,
            report.address,
            report.config_version,
            millis(report.started_at),
            now,
            i64::try_from(report.runs_in_flight).unwrap_or(i64::MAX),
        ])?;
    Ok(())
}

pub(super) async fn nodes(reader: &SqlitePool) -> Result<Vec<NodeSeen>, StoreError> {
    let rows = sqlx::query(LIST_NODES).fetch_all(reader).await?;
    rows.iter().map(crate::cluster::node_from_row).collect()
}

pub(super) fn forget_nodes(connection: &Connection, before: i64) -> Result<u64, StoreError> {
    let forgotten = connection
        .prepare_cached(FORGET_NODES)?
        .execute(rusqlite::params![before])?;
    Ok(forgotten as u64)
}

pub(super) fn hold_lease(
    connection: &Connection,
    name: &str,
    holder: &str,
    until: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let held = connection
        .prepare_cached(HOLD_LEASE)?
        .query(rusqlite::params![name, holder, until, now])?
        .next()?
        .is_some();
    Ok(held)
}

pub(super) fn drop_lease(
    connection: &Connection,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(DROP_LEASE)?
        .execute(rusqlite::params![name, holder])?;
    Ok(())
}

pub(super) async fn lease_holder(
    reader: &SqlitePool,
    name: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(LEASE_HOLDER)
        .bind(name)
        .bind(now)
        .fetch_optional(reader)
        .await?)
}
