//! [`QueueDepth`]: how much work waits in the queue, for metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The queue at one moment, as [`crate::Store::queue_depth`] reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Queued runs that are due: waiting only for a free worker.
    pub ready: u64,
    /// Queued runs due later (rescheduled after a transient failure).
    pub delayed: u64,
    /// Runs a worker holds (expired leases included).
    pub running: u64,
    /// When the longest-waiting ready run became due; `None` when no run is
    /// ready. Now minus this is how far the workers lag behind.
    pub oldest_ready_since: Option<DateTime<Utc>>,
}
