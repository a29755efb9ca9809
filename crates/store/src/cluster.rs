//! The nodes that share a store, and the leases that give one of them a
//! duty.
//!
//! Every node reports itself on a heartbeat ([`NodeReport`]): what it runs,
//! which configuration, how many runs it has in flight. The store keeps the
//! last report of each with the time it arrived ([`NodeSeen`]), which is
//! what the management API and the dashboard show of the cluster.
//!
//! A **lease** is a named row with a holder and an expiry: a node takes it
//! when it is free or expired, keeps it by taking it again before it
//! expires, and gives it up on a clean shutdown. One statement (an upsert
//! that only overwrites an expired lease or the holder's own) decides, so
//! two nodes can never both believe they hold it at the store's clock.
//! Rate limits that must hold across nodes are kept here too, as one GCRA
//! state per connector and key (its theoretical arrival time). A call
//! reserves its slot with one upsert, which moves the state on and names
//! the instant the slot comes, unless that is further away than the caller
//! would wait: callers sleep until their own slot instead of racing for the
//! next free one, so the pace holds at the limit however many nodes call.
//!
//! The `leader` lease picks the node that does the cluster's housekeeping
//! (retention); work that is safe on every node (claims, lease rescue,
//! schedules, which are deduplicated by their fire time) needs no leader.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::StoreError;
use crate::rows::{get, parse_time, parse_u64};

/// The lease held by the node that does the cluster's housekeeping.
pub const LEADER_LEASE: &str = "leader";

/// What a node says of itself on each heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    /// The node's id, also the owner of the runs it claims.
    pub id: String,
    /// The Patchbay version it runs.
    pub version: String,
    /// Where its HTTP server listens, when it runs one.
    pub address: Option<String>,
    /// The configuration version it runs new work on.
    pub config_version: String,
    pub started_at: DateTime<Utc>,
    /// Runs it is executing now.
    pub runs_in_flight: u64,
}

/// A node's last report and when the store received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeSeen {
    #[serde(flatten)]
    pub report: NodeReport,
    /// When its last heartbeat was recorded (the store's clock).
    pub last_heartbeat: DateTime<Utc>,
}

/// A configuration a node published on a reload (see
/// [`crate::Store::publish_config`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublishedConfig {
    pub version: String,
    /// The node that reloaded it.
    pub node: String,
    /// When (the store's clock): tells a new publication from one already
    /// acted on, even of the same version (secrets may have changed).
    pub published_at: DateTime<Utc>,
}

/// Decodes the row of `published_config`.
pub(crate) fn published_from_row<R>(row: &R) -> Result<PublishedConfig, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(PublishedConfig {
        version: get(row, "published_config.version")?,
        node: get(row, "published_config.node")?,
        published_at: parse_time(
            "published_config.published_at",
            get(row, "published_config.published_at")?,
        )?,
    })
}

/// What [`crate::Store::reserve_rate`] gave a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateSlot {
    /// A slot is the call's: it may go after this long (zero: now).
    Reserved(std::time::Duration),
    /// The next free slot is further away than the caller would wait:
    /// this long from now. Nothing was reserved.
    Refused(std::time::Duration),
}

/// A circuit breaker a node opened (see [`crate::Store::open_breaker`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerOpening {
    pub connector: String,
    /// Until when calls to it are refused (the store's clock).
    pub until: DateTime<Utc>,
    /// The node whose breaker opened.
    pub node: String,
}

/// Decodes a row of `breaker_openings`.
pub(crate) fn opening_from_row<R>(row: &R) -> Result<BreakerOpening, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(BreakerOpening {
        connector: get(row, "breaker_openings.connector")?,
        until: parse_time(
            "breaker_openings.open_until",
            get(row, "breaker_openings.open_until")?,
        )?,
        node: get(row, "breaker_openings.node")?,
    })
}

/// A GCRA's pacing in the store's unit (microseconds): the interval
/// between slots and how far ahead of now the theoretical arrival time may
/// run (`burst` − 1 intervals).
pub(crate) fn gcra_micros(interval: std::time::Duration, burst: u32) -> (i64, i64) {
    let interval = i64::try_from(interval.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    let tolerance = interval.saturating_mul(i64::from(burst.max(1) - 1));
    (interval, tolerance)
}

/// A wait the store computed, in microseconds.
pub(crate) fn micros(micros: i64) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// A horizon or a hold in microseconds; a huge one stays far from
/// overflowing when added to a time.
pub(crate) fn duration_micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX / 4)
}

/// Decodes a row of the `nodes` table, which both stores name alike.
pub(crate) fn node_from_row<R>(row: &R) -> Result<NodeSeen, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(NodeSeen {
        report: NodeReport {
            id: get(row, "nodes.id")?,
            version: get(row, "nodes.version")?,
            address: get(row, "nodes.address")?,
            config_version: get(row, "nodes.config_version")?,
            started_at: parse_time("nodes.started_at", get(row, "nodes.started_at")?)?,
            runs_in_flight: parse_u64("nodes.runs_in_flight", get(row, "nodes.runs_in_flight")?)?,
        },
        last_heartbeat: parse_time("nodes.heartbeat_at", get(row, "nodes.heartbeat_at")?)?,
    })
}
