//! The engine's notable events. Each is a typed struct whose `emit()` writes
//! its log line and updates its metrics, so the two cannot drift.
//!
//! Labels stay bounded: flow names, step ids and connector names come from
//! the configuration; statuses, triggers and step kinds from fixed lists.
//! Run ids, inputs and URLs are never labels (they are log fields, and span
//! fields for traces).

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use patchbay_store::{QueueDepth, RunStatus};

/// Runs committed by intake (duplicates not counted), by flow and trigger.
pub const RUNS_ACCEPTED_TOTAL: &str = "patchbay_runs_accepted_total";
/// Events answered with an existing run because of their dedupe key.
pub const RUNS_DEDUPLICATED_TOTAL: &str = "patchbay_runs_deduplicated_total";
/// Executions begun by a worker: first claims, resumptions and retries.
pub const RUNS_STARTED_TOTAL: &str = "patchbay_runs_started_total";
/// Runs committed leased to the node that accepted them, because one of its
/// workers was free, and started there without a claim; by flow.
pub const RUNS_HANDED_OVER_TOTAL: &str = "patchbay_runs_handed_over_total";
/// Runs that reached a final status, by flow and status.
pub const RUNS_FINISHED_TOTAL: &str = "patchbay_runs_finished_total";
/// Runs put back in the queue after a transient failure, by flow.
pub const RUNS_RESCHEDULED_TOTAL: &str = "patchbay_runs_rescheduled_total";
/// Runs declared dead because their claims kept stopping the node, by flow.
pub const POISON_RUNS_TOTAL: &str = "patchbay_poison_runs_total";
/// Execution time of a run's final attempt, by flow and status.
pub const RUN_DURATION_SECONDS: &str = "patchbay_run_duration_seconds";
/// Execution time of a step (all its items and fallbacks), by flow, step,
/// kind and status.
pub const STEP_DURATION_SECONDS: &str = "patchbay_step_duration_seconds";
/// Runs committed per intake transaction (group commit).
pub const INTAKE_BATCH_RUNS: &str = "patchbay_intake_batch_runs";
/// Time to commit one intake batch.
pub const INTAKE_COMMIT_DURATION_SECONDS: &str = "patchbay_intake_commit_duration_seconds";
/// Intake batches the store refused (their callers got an error).
pub const INTAKE_BATCHES_FAILED_TOTAL: &str = "patchbay_intake_batches_failed_total";
/// Runs in the queue by `state`: `ready`, `delayed`, `running`.
pub const QUEUE_RUNS: &str = "patchbay_queue_runs";
/// How long the oldest ready run has waited past its due time.
pub const QUEUE_OLDEST_AGE_SECONDS: &str = "patchbay_queue_oldest_age_seconds";

/// An intake transaction committed `runs` runs.
pub(crate) struct IntakeBatchCommitted<'a> {
    /// `(flow, trigger)` of each run created (duplicates left out).
    pub created: &'a [(&'a str, &'a str)],
    /// Flows of the events answered as duplicates.
    pub duplicates: &'a [&'a str],
    pub runs: usize,
    pub duration: Duration,
}

impl IntakeBatchCommitted<'_> {
    pub(crate) fn emit(&self) {
        tracing::trace!(size = self.runs, "intake batch committed");
        histogram!(INTAKE_BATCH_RUNS).record(self.runs as f64);
        histogram!(INTAKE_COMMIT_DURATION_SECONDS).record(self.duration.as_secs_f64());
        for (flow, trigger) in self.created {
            counter!(RUNS_ACCEPTED_TOTAL, "flow" => flow.to_string(), "trigger" => trigger.to_string())
                .increment(1);
        }
        for flow in self.duplicates {
            counter!(RUNS_DEDUPLICATED_TOTAL, "flow" => flow.to_string()).increment(1);
        }
    }
}

/// An intake transaction failed; none of its runs were committed.
pub(crate) struct IntakeBatchFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
    pub runs: usize,
}

impl IntakeBatchFailed<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(error = %self.error, batch = self.runs, "intake batch not committed");
        counter!(INTAKE_BATCHES_FAILED_TOTAL).increment(1);
    }
}

/// A worker began executing a run (inside the run's span).
pub(crate) struct RunStarted<'a> {
    pub flow: &'a str,
    pub attempt: u32,
}

impl RunStarted<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(attempt = self.attempt, "run started");
        counter!(RUNS_STARTED_TOTAL, "flow" => self.flow.to_string()).increment(1);
    }
}

/// A run committed leased to this node went to one of its workers, at once
/// or through the backlog.
pub(crate) struct RunHandedOver<'a> {
    pub flow: &'a str,
}

impl RunHandedOver<'_> {
    pub fn emit(&self) {
        counter!(RUNS_HANDED_OVER_TOTAL, "flow" => self.flow.to_string()).increment(1);
    }
}

/// A run reached a final status (inside the run's span).
pub(crate) struct RunFinished<'a> {
    pub flow: &'a str,
    pub status: RunStatus,
    pub error: Option<&'a str>,
    pub duration: Duration,
}

impl RunFinished<'_> {
    pub(crate) fn emit(&self) {
        let duration_ms = self.duration.as_millis() as u64;
        match self.error {
            Some(error) => {
                tracing::warn!(status = %self.status, error = %error, duration_ms, "run finished")
            }
            None => tracing::info!(status = %self.status, duration_ms, "run finished"),
        }
        let status = self.status.as_str();
        counter!(RUNS_FINISHED_TOTAL, "flow" => self.flow.to_string(), "status" => status)
            .increment(1);
        histogram!(RUN_DURATION_SECONDS, "flow" => self.flow.to_string(), "status" => status)
            .record(self.duration.as_secs_f64());
    }
}

/// A run failed transiently and was put back in the queue.
pub(crate) struct RunRescheduled<'a> {
    pub flow: &'a str,
    pub error: &'a str,
    pub retry: u32,
    pub of: usize,
    pub delay: Duration,
}

impl RunRescheduled<'_> {
    pub(crate) fn emit(&self) {
        tracing::info!(
            error = %self.error,
            retry = self.retry,
            of = self.of,
            delay_ms = self.delay.as_millis() as u64,
            "run rescheduled"
        );
        counter!(RUNS_RESCHEDULED_TOTAL, "flow" => self.flow.to_string()).increment(1);
    }
}

/// A run that kept stopping the node was declared dead instead of resumed.
pub(crate) struct PoisonRunStopped<'a> {
    pub flow: &'a str,
    /// Claims that ended without reaching the end of a step.
    pub claims: u32,
}

impl PoisonRunStopped<'_> {
    pub(crate) fn emit(&self) {
        tracing::error!(
            claims = self.claims,
            "run stopped the node repeatedly; declared dead instead of resumed"
        );
        counter!(POISON_RUNS_TOTAL, "flow" => self.flow.to_string()).increment(1);
    }
}

/// How a step ended, for its metrics.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StepOutcome {
    Succeeded,
    Failed,
    /// A `filter` that was false, or a step whose `when` was.
    Skipped,
}

impl StepOutcome {
    fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Succeeded => "succeeded",
            StepOutcome::Failed => "failed",
            StepOutcome::Skipped => "skipped",
        }
    }
}

/// A step finished (inside the step's span).
pub(crate) struct StepFinished<'a> {
    pub flow: &'a str,
    pub step: &'a str,
    pub kind: &'static str,
    pub outcome: StepOutcome,
    pub duration: Duration,
}

impl StepFinished<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(
            outcome = self.outcome.as_str(),
            duration_ms = self.duration.as_millis() as u64,
            "step finished"
        );
        histogram!(
            STEP_DURATION_SECONDS,
            "flow" => self.flow.to_string(),
            "step" => self.step.to_string(),
            "kind" => self.kind,
            "status" => self.outcome.as_str()
        )
        .record(self.duration.as_secs_f64());
    }
}

/// The queue was sampled.
pub(crate) struct QueueSampled {
    pub depth: QueueDepth,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl QueueSampled {
    pub(crate) fn emit(&self) {
        let depth = &self.depth;
        let age = depth
            .oldest_ready_since
            .and_then(|since| (self.now - since).to_std().ok())
            .unwrap_or_default();
        tracing::trace!(
            ready = depth.ready,
            delayed = depth.delayed,
            running = depth.running,
            oldest_age_ms = age.as_millis() as u64,
            "queue sampled"
        );
        gauge!(QUEUE_RUNS, "state" => "ready").set(depth.ready as f64);
        gauge!(QUEUE_RUNS, "state" => "delayed").set(depth.delayed as f64);
        gauge!(QUEUE_RUNS, "state" => "running").set(depth.running as f64);
        gauge!(QUEUE_OLDEST_AGE_SECONDS).set(age.as_secs_f64());
    }
}

/// The queue could not be sampled.
pub(crate) struct QueueSampleFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl QueueSampleFailed<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(error = %self.error, "cannot sample the queue");
    }
}

/// Audit entries of refused requests dropped because their queue was full
/// (a flood of bad tokens).
pub const AUDIT_ENTRIES_DROPPED_TOTAL: &str = "patchbay_audit_entries_dropped_total";
/// Audit entries the store refused to write.
pub const AUDIT_WRITE_FAILURES_TOTAL: &str = "patchbay_audit_write_failures_total";

/// Entries of refused requests were dropped since the last report.
pub(crate) struct AuditEntriesDropped {
    pub count: u64,
}

impl AuditEntriesDropped {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            dropped = self.count,
            "audit entries of refused requests dropped: their queue was full"
        );
        counter!(AUDIT_ENTRIES_DROPPED_TOTAL).increment(self.count);
    }
}

/// Audit entries could not be written.
pub(crate) struct AuditWriteFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
    pub entries: usize,
}

impl AuditWriteFailed<'_> {
    pub(crate) fn emit(&self) {
        tracing::error!(error = %self.error, entries = self.entries, "cannot write to the audit log");
        counter!(AUDIT_WRITE_FAILURES_TOTAL).increment(self.entries as u64);
    }
}

/// Replies that differed from their connector's contract, by connector and
/// operation (every reply counted, each kind of difference once per reply).
pub const CONTRACT_DRIFT_TOTAL: &str = "patchbay_contract_drift_total";
/// Drift records the store refused to write (kept for the next try).
pub const DRIFT_WRITE_FAILURES_TOTAL: &str = "patchbay_drift_write_failures_total";

/// A reply differed from its contract.
pub(crate) struct ContractDriftSeen<'a> {
    pub kind: &'a patchbay_store::DriftKind,
}

impl ContractDriftSeen<'_> {
    pub(crate) fn emit(&self) {
        counter!(
            CONTRACT_DRIFT_TOTAL,
            "connector" => self.kind.connector.clone(),
            "operation" => self.kind.operation.clone()
        )
        .increment(1);
    }
}

/// A kind of drift was recorded for the first time.
pub(crate) struct NewContractDrift<'a> {
    pub drift: &'a patchbay_store::DriftObservation,
}

impl NewContractDrift<'_> {
    pub(crate) fn emit(&self) {
        let kind = &self.drift.kind;
        tracing::warn!(
            connector = %kind.connector,
            operation = %kind.operation,
            response = %kind.response,
            pointer = %kind.pointer,
            expected = %kind.expected,
            seen = %self.drift.seen,
            "reply differs from the connector's contract"
        );
    }
}

/// Drift records could not be written.
pub(crate) struct DriftWriteFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
    pub kinds: usize,
}

impl DriftWriteFailed<'_> {
    pub(crate) fn emit(&self) {
        tracing::error!(error = %self.error, kinds = self.kinds, "cannot write contract drift records");
        counter!(DRIFT_WRITE_FAILURES_TOTAL).increment(self.kinds as u64);
    }
}
