//! Plain data types exchanged with the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run's identifier: a UUIDv7, so ids sort by creation time.
pub type RunId = uuid::Uuid;

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Status))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Committed, waiting for a worker (or for `next_attempt_at`).
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// Every step completed.
    Succeeded,
    /// A step failed and the run's retries are spent (or its error cannot
    /// be cured by retrying): the run is a dead letter, kept with its error
    /// and journal until it is replayed.
    Dead,
    /// A `filter` step ended the run early.
    Skipped,
    /// Stopped by an operator. A queued run never starts; a running one
    /// stops at its next step boundary, since its worker's next journal
    /// write is refused.
    Cancelled,
}

impl RunStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Dead,
        RunStatus::Skipped,
        RunStatus::Cancelled,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Dead => "dead",
            RunStatus::Skipped => "skipped",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a name produced by [`RunStatus::as_str`].
    pub fn parse(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// True once the run will not change any more.
    pub fn is_final(self) -> bool {
        match self {
            RunStatus::Queued | RunStatus::Running => false,
            RunStatus::Succeeded | RunStatus::Dead | RunStatus::Skipped | RunStatus::Cancelled => {
                true
            }
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad` honours width and alignment, for tables.
        f.pad(self.as_str())
    }
}

/// A run to be committed by [`crate::Store::enqueue`].
#[derive(Clone, Debug)]
pub struct NewRun {
    pub id: RunId,
    pub flow: String,
    /// What started it: `webhook`, `schedule`, `manual`.
    pub trigger: String,
    /// The event: `.` and `$event` in the flow's expressions.
    pub input: Value,
    /// Request headers of a webhook (`$headers`), an object; `{}` otherwise.
    pub headers: Value,
    /// Version of the configuration the run must execute with.
    pub config_version: String,
    /// Runs sharing a dedupe key are the same event: only the first is kept.
    pub dedupe_key: Option<String>,
    /// The run that started this one with a `run_flow` step, and waits for it.
    pub parent: Option<RunId>,
    /// Committed already claimed by this owner, for a node that executes the
    /// run at once: it skips the queue and the claim that would follow.
    /// `None`: committed queued, for any node to claim.
    pub lease: Option<IntakeLease>,
}

/// The lease a run is committed with when the node that accepted it has a
/// free worker: as if claimed in the same transaction (`running`, one
/// attempt, leased until the commit's time plus `duration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeLease {
    pub owner: String,
    pub duration: std::time::Duration,
    /// Whether a worker starts the run at once. A run that waits for one
    /// (in the node's memory) is committed with no claim counted against
    /// it: a crash before it starts is not its doing
    /// (`engine.max_claims_without_progress`).
    pub starts_now: bool,
}

impl NewRun {
    /// The run as [`crate::Store::enqueue`] stores it when it was committed
    /// at `now` with its [`NewRun::lease`]: what a claim would have
    /// returned. `None` for a run committed without a lease. Consumes the
    /// run, so that the event is moved, not copied, on the way to a worker.
    pub fn into_leased(self, now: DateTime<Utc>) -> Option<Run> {
        let lease = self.lease?;
        let stalled_claims = u32::from(lease.starts_now);
        // Stored times are whole milliseconds.
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let expires = now
            .checked_add_signed(
                chrono::TimeDelta::from_std(lease.duration).unwrap_or(chrono::TimeDelta::MAX),
            )
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some(Run {
            id: self.id,
            flow: self.flow,
            status: RunStatus::Running,
            trigger: self.trigger,
            input: self.input,
            headers: self.headers,
            output: None,
            error: None,
            attempts: 1,
            retries: 0,
            config_version: self.config_version,
            dedupe_key: self.dedupe_key,
            lease_owner: Some(lease.owner),
            lease_expires_at: Some(expires),
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            finished_at: None,
            stalled_claims,
            parent: self.parent,
        })
    }
}

/// One claim of a run, as the lease-checked writes name it: the run and
/// the claim's number, its `attempts` as the claim left it. The number is
/// the claim's fencing token: every claim raises it and nothing lowers it,
/// so a worker that stalled past its lease (and was replaced, even by a
/// worker of the same node) holds a stale number and every write it makes
/// fails with [`crate::StoreError::LeaseLost`]. A journal entry carries its
/// claim's number as its `attempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub run: RunId,
    pub attempt: u32,
}

impl Claim {
    /// The claim a worker holds on `run`, as the claim returned it.
    pub fn of(run: &Run) -> Claim {
        Claim {
            run: run.id,
            attempt: run.attempts,
        }
    }
}

/// The result of enqueuing one [`NewRun`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The run was committed under this id.
    Created(RunId),
    /// A run with the same dedupe key already existed; this is its id.
    Duplicate(RunId),
}

impl EnqueueOutcome {
    /// The id of the run that stands for the event, new or existing.
    pub fn run_id(self) -> RunId {
        match self {
            EnqueueOutcome::Created(id) | EnqueueOutcome::Duplicate(id) => id,
        }
    }
}

/// One execution of a flow for one event.
//
// The management API shows a run as it is stored (its headers masked), so
// the doc comments of the type and its fields are also the API's reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RunView))]
pub struct Run {
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub id: RunId,
    /// The flow it executes.
    pub flow: String,
    pub status: RunStatus,
    /// What started it: `webhook`, `schedule` or `manual`.
    pub trigger: String,
    /// The event (`.` in the flow's expressions).
    pub input: Value,
    /// The webhook request's headers (lowercase names); credentials in them
    /// (`authorization`, cookies, API keys, tokens) show as `****`.
    // Stored whole, for `$headers`; they are masked where they are shown.
    pub headers: Value,
    /// The last step's result, once succeeded.
    pub output: Option<Value>,
    /// Why it failed (the last failure while it is retried).
    pub error: Option<String>,
    /// How many times a worker took it up.
    pub attempts: u32,
    /// How many times it was rescheduled after a failed step.
    // Reset by a replay.
    pub retries: u32,
    /// The configuration version it executes with.
    pub config_version: String,
    pub dedupe_key: Option<String>,
    /// The node executing it, while running.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When it is due (for a queued run).
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Claims since the run last reached the end of a step, this one
    /// included: a run whose execution stops the node counts one more at
    /// every restart.
    pub stalled_claims: u32,
    /// The run that started this one with a `run_flow` step, and waits for
    /// it (`null` for a run started by a trigger).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<uuid::Uuid>))]
    pub parent: Option<RunId>,
}

/// Runs of one flow in one status that failed with the same error
/// ([`crate::Store::error_groups`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorGroup {
    pub flow: String,
    /// The error, word for word.
    pub error: String,
    /// How many runs have it.
    pub count: u64,
    /// The newest of them.
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub latest_run: RunId,
    /// When the newest of them last changed (failed).
    pub latest_at: DateTime<Utc>,
}

/// An input a replay replaced ([`crate::Store::replay_with_input`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputEdit {
    /// When the run was replayed with another input.
    pub edited_at: DateTime<Utc>,
    /// The input it had until then.
    pub previous: Value,
}

/// How a run ended, given to [`crate::Store::finish`].
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// A final status (`succeeded`, `dead` or `skipped`).
    pub status: RunStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
}

/// Result of one step attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Its `when` was false: it did not run, and its result is `null`.
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    pub fn parse(name: &str) -> Option<StepStatus> {
        match name {
            "succeeded" => Some(StepStatus::Succeeded),
            "failed" => Some(StepStatus::Failed),
            "skipped" => Some(StepStatus::Skipped),
            _ => None,
        }
    }
}

/// One step attempt, or one item's attempt inside a `for_each` step.
// The management API shows entries as stored, like runs: these doc
// comments are the API's reference too.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JournalEntryView))]
pub struct JournalEntry {
    /// The run it belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub run_id: RunId,
    /// Position of the step in the flow, from 0.
    pub step_index: u32,
    /// The step's id (its configured `id`, or `step-N`).
    pub step_id: String,
    /// Index of the item inside a `for_each`; `null` for a plain step and
    /// for the entry that collects a `for_each` step's results.
    pub item: Option<u32>,
    /// The run attempt it belongs to, from 1.
    pub attempt: u32,
    pub status: StepStatus,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The outbound request (method, URL, attempts, status), credentials
    /// masked, when the step made one.
    pub request: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// What kind of failure `error` is (`expression`, `budget`,
    /// `server_error`, `timeout`...): operators, the dashboard and tests
    /// branch on it, never on the error's wording.
    pub error_class: Option<String>,
    /// False once a replay from the start set the entry aside: it stays in
    /// the record, but its output is not reused.
    // Ignored when recording: a new entry is always current.
    pub current: bool,
}

/// Which runs [`crate::Store::list_runs`] returns.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub flow: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs older than this one (for paging).
    pub before: Option<RunId>,
    /// Only runs created at or after this time (to the millisecond).
    pub since: Option<DateTime<Utc>>,
    /// Only runs created before this time (to the millisecond).
    pub until: Option<DateTime<Utc>>,
    /// Only runs whose error contains this text (ASCII letters compared
    /// without regard to case).
    pub error_contains: Option<String>,
    /// At most this many; 0 means the default of 50.
    pub limit: u32,
}

/// The result of [`crate::Store::cancel`].
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    /// The run was queued or running and is now cancelled; as stored.
    Cancelled(Box<Run>),
    /// The run had already ended with this status; nothing changed.
    Finished(RunStatus),
    /// No run has this id.
    NotFound,
}

/// Number of runs of one flow in one status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub flow: String,
    pub status: RunStatus,
    pub count: u64,
}
