//! Node reports and leases on PostgreSQL (see [`crate::cluster`]). A lease
//! is taken by one upsert whose `WHERE` only lets an expired lease or the
//! holder's own be overwritten: concurrent nodes serialise on the row, and
//! exactly one of them sees it returned.

use sqlx::PgPool;

use super::codec::int8;
use crate::cluster::micros;
use crate::{NodeReport, NodeSeen, RateSlot, StoreError};

const UPSERT_NODE: &str = "\
INSERT INTO nodes (id, version, address, config_version, started_at, heartbeat_at, runs_in_flight)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, address = excluded.address,
    config_version = excluded.config_version, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, runs_in_flight = excluded.runs_in_flight";

const LIST_NODES: &str = "\
SELECT id, version, address, config_version, started_at, heartbeat_at, runs_in_flight
FROM nodes ORDER BY id";

const FORGET_NODES: &str = "DELETE FROM nodes WHERE heartbeat_at < $1";

const HOLD_LEASE: &str = "\
INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
RETURNING holder";

const DROP_LEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

const LEASE_HOLDER: &str = "SELECT holder FROM leases WHERE name = $1 AND expires_at > $2";

/// Reserves the next slot: moves the theoretical arrival time one
/// interval on from itself or now, whichever is later, and returns how long
/// until the slot, unless that is more than the horizon. On the database's
/// clock, the one clock every node shares. `$2` interval, `$3` tolerance,
/// `$4` horizon, in microseconds; `RETURNING` reads the moved state.
const RESERVE_RATE: &str = "\
WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now)
INSERT INTO rate_limits AS r (key, tat)
SELECT $1, clock.now + $2 FROM clock
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, (SELECT now FROM clock)) + $2
WHERE r.tat - (SELECT now FROM clock) <= $3 + $4
RETURNING GREATEST(r.tat - $2 - $3 - (SELECT now FROM clock), 0) AS wait";

/// How long until a refused key's next slot.
const RATE_WAIT: &str = "\
SELECT tat - $2 - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS wait
FROM rate_limits WHERE key = $1";

const FORGET_RATES: &str = "DELETE FROM rate_limits WHERE tat < $1";

pub(super) async fn reserve_rate(
    pool: &PgPool,
    key: &str,
    (interval, tolerance): (i64, i64),
    horizon: i64,
) -> Result<RateSlot, StoreError> {
    let reserved: Option<i64> = sqlx::query_scalar(RESERVE_RATE)
        .bind(key)
        .bind(interval)
        .bind(tolerance)
        .bind(horizon)
        .fetch_optional(pool)
        .await?;
    if let Some(wait) = reserved {
        return Ok(RateSlot::Reserved(micros(wait)));
    }
    let wait: Option<i64> = sqlx::query_scalar(RATE_WAIT)
        .bind(key)
        .bind(tolerance)
        .fetch_optional(pool)
        .await?;
    Ok(RateSlot::Refused(micros(wait.unwrap_or(0))))
}

pub(super) async fn forget_rates(pool: &PgPool, before_micros: i64) -> Result<u64, StoreError> {
    let forgotten = sqlx::query(FORGET_RATES)
        .bind(before_micros)
        .execute(pool)
        .await?;
    Ok(forgotten.rows_affected())
}

/// Takes a free slot of `$1` among `$2`, one picked at random so that
/// racing nodes seldom pick the same; a hold past its time is free. When
/// two do pick the same, the second's upsert waits for the first's row and
/// its `WHERE` then refuses it: it returns nothing and the caller asks
/// again. `$4` is the hold in microseconds of the database's clock.
const TAKE_SLOT: &str = "\
WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now),
free AS (
    SELECT n FROM generate_series(0, $2 - 1) AS n, clock
    WHERE NOT EXISTS (
        SELECT 1 FROM call_slots c
        WHERE c.name = $1 AND c.slot = n AND c.expires_at > clock.now)
    ORDER BY random() LIMIT 1)
INSERT INTO call_slots AS c (name, slot, holder, expires_at)
SELECT $1, free.n, $3, clock.now + $4 FROM free, clock
ON CONFLICT (name, slot) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE c.expires_at <= (SELECT now FROM clock)
RETURNING slot";

const RELEASE_SLOT: &str = "DELETE FROM call_slots WHERE name = $1 AND slot = $2 AND holder = $3";

pub(super) async fn take_slot(
    pool: &PgPool,
    name: &str,
    limit: u32,
    holder: &str,
    hold_micros: i64,
) -> Result<Option<u32>, StoreError> {
    let slot: Option<i32> = sqlx::query_scalar(TAKE_SLOT)
        .bind(name)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(holder)
        .bind(hold_micros)
        .fetch_optional(pool)
        .await?;
    Ok(slot.map(|slot| slot.unsigned_abs()))
}

pub(super) async fn release_slot(
    pool: &PgPool,
    name: &str,
    slot: u32,
    holder: &str,
) -> Result<(), StoreError> {
    sqlx::query(RELEASE_SLOT)
        .bind(name)
        .bind(i32::try_from(slot).unwrap_or(i32::MAX))
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

const PUBLISH_CONFIG: &str = "\
INSERT INTO published_config (singleton, version, node, published_at) VALUES (1, $1, $2, $3)
ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, node = excluded.node,
    published_at = excluded.published_at";

const PUBLISHED_CONFIG: &str =
    "SELECT version, node, published_at FROM published_config WHERE singleton = 1";

pub(super) async fn publish_config(
    pool: &PgPool,
    version: &str,
    node: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(PUBLISH_CONFIG)
        .bind(version)
        .bind(node)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn published_config(
    pool: &PgPool,
) -> Result<Option<crate::PublishedConfig>, StoreError> {
    let row = sqlx::query(PUBLISHED_CONFIG).fetch_optional(pool).await?;
    row.as_ref()
        .map(crate::cluster::published_from_row)
        .transpose()
}

const OPEN_BREAKER: &str = "\
INSERT INTO breaker_openings (connector, open_until, node) VALUES ($1, $2, $3)
ON CONFLICT (connector) DO UPDATE SET open_until = excluded.open_until, node = excluded.node
WHERE excluded.open_until > breaker_openings.open_until";

const OPEN_BREAKERS: &str = "\
SELECT connector, open_until, node FROM breaker_openings WHERE open_until > $1 ORDER BY connector";

pub(super) async fn open_breaker(
    pool: &PgPool,
    connector: &str,
    until: i64,
    node: &str,
) -> Result<(), StoreError> {
    sqlx::query(OPEN_BREAKER)
        .bind(connector)
        .bind(until)
        .bind(node)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn open_breakers(
    pool: &PgPool,
    now: i64,
) -> Result<Vec<crate::BreakerOpening>, StoreError> {
    let rows = sqlx::query(OPEN_BREAKERS).bind(now).fetch_all(pool).await?;
    rows.iter().map(crate::cluster::opening_from_row).collect()
}

pub(super) async fn heartbeat(
    pool: &PgPool,
    report: &NodeReport,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(UPSERT_NODE)
        .bind(&report.id)
        .bind(&report.version)
        .bind(report.address.as_deref())
        .bind(&report.config_version)
        .bind(report.started_at.timestamp_millis())
        .bind(now)
        .bind(int8(report.runs_in_flight))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn nodes(pool: &PgPool) -> Result<Vec<NodeSeen>, StoreError> {
    let rows = sqlx::query(LIST_NODES).fetch_all(pool).await?;
    rows.iter().map(crate::cluster::node_from_row).collect()
}

pub(super) async fn forget_nodes(pool: &PgPool, before: i64) -> Result<u64, StoreError> {
    let forgotten = sqlx::query(FORGET_NODES).bind(before).execute(pool).await?;
    Ok(forgotten.rows_affected())
}

pub(super) async fn hold_lease(
    pool: &PgPool,
    name: &str,
    holder: &str,
    until: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let held = sqlx::query(HOLD_LEASE)
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    Ok(held.is_some())
}

pub(super) async fn drop_lease(pool: &PgPool, name: &str, holder: &str) -> Result<(), StoreError> {
    sqlx::query(DROP_LEASE)
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn lease_holder(
    pool: &PgPool,
    name: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(LEASE_HOLDER)
        .bind(name)
        .bind(now)
        .fetch_optional(pool)
        .await?)
}
