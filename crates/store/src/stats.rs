//! Activity over a recent time window, in fixed-width buckets, for the
//! dashboard's charts: per flow (runs started, ended, how long they took)
//! and per connector (calls made by steps, how many failed, how long they
//! took).
//!
//! Per-connector figures are read from the journal: every call or GraphQL
//! step attempt records a request summary naming its connector, with the
//! step's duration (retries of the call included). A step attempt is one
//! "call" here, however many HTTP attempts its retries made.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The time span [`crate::Store::stats`] reports on, cut into buckets of
/// `step` aligned on multiples of `step` since the Unix epoch (whole minutes
/// for a one-minute step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsWindow {
    /// Start of the first bucket (inclusive).
    pub since: DateTime<Utc>,
    /// End of the last bucket (exclusive).
    pub until: DateTime<Utc>,
    /// Width of a bucket; at least one millisecond.
    pub step: Duration,
}

impl StatsWindow {
    /// The `span` before `now`, in buckets of `step`; the last bucket is the
    /// one `now` falls in, so it is still filling.
    pub fn ending_at(now: DateTime<Utc>, span: Duration, step: Duration) -> StatsWindow {
        let step_ms = duration_ms(step).max(1);
        let buckets = (duration_ms(span) / step_ms).max(1);
        let now_ms = now.timestamp_millis();
        let last = now_ms.div_euclid(step_ms) * step_ms;
        let since = last - (buckets - 1) * step_ms;
        StatsWindow {
            since: DateTime::from_timestamp_millis(since).unwrap_or(now),
            until: DateTime::from_timestamp_millis(last + step_ms).unwrap_or(now),
            step: Duration::from_millis(step_ms as u64),
        }
    }

    /// The `span` before now, in buckets of `step` (see
    /// [`StatsWindow::ending_at`]).
    pub fn last(span: Duration, step: Duration) -> StatsWindow {
        StatsWindow::ending_at(Utc::now(), span, step)
    }

    /// Start of every bucket, in order.
    pub fn buckets(&self) -> Vec<DateTime<Utc>> {
        let step_ms = duration_ms(self.step).max(1);
        let (since, until) = (self.since.timestamp_millis(), self.until.timestamp_millis());
        (0..)
            .map(|i| since + i * step_ms)
            .take_while(|start| *start < until)
            .filter_map(DateTime::from_timestamp_millis)
            .collect()
    }
}

/// A duration in whole milliseconds, saturating.
fn duration_ms(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX)
}

/// What happened in one bucket for one flow. Buckets without activity are
/// left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowBucket {
    pub flow: String,
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Runs created (accepted) in the bucket.
    pub started: u64,
    /// Runs that ended `succeeded` in the bucket.
    pub succeeded: u64,
    /// Runs that ended `dead` in the bucket.
    pub dead: u64,
    /// Runs that a filter ended (`skipped`) in the bucket.
    pub skipped: u64,
    /// Runs cancelled in the bucket.
    pub cancelled: u64,
    /// 95th percentile (nearest rank) of creation-to-end time of the runs
    /// that ended in the bucket, queueing and rescheduling included; `None`
    /// when none ended.
    pub p95_ms: Option<u64>,
}

/// What one connector's calls did in one bucket. Buckets without calls are
/// left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectorBucket {
    pub connector: String,
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Step attempts that called the connector and started in the bucket.
    pub calls: u64,
    /// Those that failed.
    pub errors: u64,
    /// 95th percentile (nearest rank) of their duration.
    pub p95_ms: Option<u64>,
}

/// How one step of a flow went over a window: its attempts by outcome
/// ([`crate::Store::step_totals`]). A `for_each` step counts its collecting
/// entry, not each item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepTotal {
    /// The step's id.
    pub step: String,
    pub succeeded: u64,
    pub failed: u64,
    /// Attempts whose `when` was false.
    pub skipped: u64,
}

/// A flow's runs that have not ended, now: the queue behind the buckets'
/// started and ended counts. Flows with none are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowQueue {
    pub flow: String,
    /// Queued and due: waiting only for a free worker.
    pub ready: u64,
    /// Queued for a later run-level retry, after a transient failure.
    pub retrying: u64,
    /// Queued for later without a failure: a `wait` step, or a parent
    /// waiting for its child run.
    pub waiting: u64,
    /// Held by a worker.
    pub running: u64,
    /// When the soonest retry is due.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// The answer of [`crate::Store::stats`], ordered by name, then time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub flows: Vec<FlowBucket>,
    pub connectors: Vec<ConnectorBucket>,
    /// Each flow's runs that have not ended, as of the call.
    pub queues: Vec<FlowQueue>,
}
