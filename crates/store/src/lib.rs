//! Patchbay's durable store: the run queue, the step journal and per-flow state.
//!
//! The engine talks to storage only through the [`Store`] trait, so the SQLite
//! implementation ([`SqliteStore`], the embedded default) and the PostgreSQL
//! one ([`PgStore`], several nodes on one database) can be swapped without
//! the engine noticing. Both pass one integration suite (`tests/it`, run
//! against PostgreSQL with `PATCHBAY_TEST_STORE=postgres`); `rows` decodes
//! what both read back. All SQL lives in this crate.
//!
//! Concepts:
//! - a **run** is one execution of a flow for one event; it moves
//!   `queued → running → succeeded | dead | skipped`, and a failed run
//!   is rescheduled (`running → queued`, due later) until its retries are
//!   spent, then `dead` (a dead letter, which can be replayed); an operator
//!   can cancel a queued or running run (`cancelled`);
//! - a worker **claims** queued runs with a **lease** (owner + expiry); a run
//!   whose lease expired (its node died) is claimable again;
//! - the **journal** holds one entry per step attempt (and per item of a
//!   `for_each`), so a resumed run reuses completed steps' outputs;
//! - **credentials** issued by upstreams at run time (rotated refresh
//!   tokens) are kept by name, sealed like secrets ([`Secrets::credential`]),
//!   so a restart does not lose them;
//! - **secrets** set by operators are kept sealed with a master key
//!   ([`Secrets`]);
//! - **flow state** is a JSON document per flow, written by `set_state`
//!   atomically with the journal entry of the step that wrote it;
//! - the **nodes** sharing the store report themselves on a heartbeat, and
//!   a named **lease** gives one of them a duty, such as the leader's
//!   housekeeping ([`NodeSeen`], [`LEADER_LEASE`]);
//! - the **audit log** records the management API's mutating requests and
//!   refused tokens ([`AuditEntry`]);
//! - every instant the store records or compares comes from its [`Clock`]
//!   (wall time in production, tokio's clock in tests).

#![forbid(unsafe_code)]

mod audit;
mod clock;
mod cluster;
mod depth;
mod drift;
mod endpoints;
mod error;
mod health;
mod listing;
mod model;
mod postgres;
mod replay;
mod rows;
mod secrets;
mod sqlite;
mod stats;

pub use audit::{
    ANONYMOUS, AuditEntry, AuditFilter, AuditId, MAX_AUDIT_TARGET_CHARS, audit_target,
};
pub use clock::{Clock, SystemClock, TokioClock};
pub use cluster::{BreakerOpening, LEADER_LEASE, NodeReport, NodeSeen, PublishedConfig, RateSlot};
pub use depth::QueueDepth;
pub use drift::{Drift, DriftKind, DriftObservation, MAX_DRIFT_EXAMPLE_CHARS};
pub use endpoints::{DeliveryAttempt, Endpoint};
pub use error::StoreError;
pub use health::StoreFault;
pub use model::{
    CancelOutcome, Claim, EnqueueOutcome, ErrorGroup, InputEdit, IntakeLease, JournalEntry, NewRun,
    Run, RunFilter, RunId, RunOutcome, RunStatus, StatusCount, StepStatus,
};
pub use postgres::{PgOptions, PgStore};
pub use replay::{DeadReplayed, REPLAY_BATCH, replay_dead, replay_dead_with};
pub use secrets::{
    MASTER_KEY_ENV, MAX_SECRET_BYTES, MasterKey, SecretInfo, Secrets, valid_secret_name,
};
pub use sqlite::{ConnectionSettings, SqliteOptions, SqliteStore};
pub use stats::{ConnectorBucket, FlowBucket, FlowQueue, Stats, StatsWindow, StepTotal};

use std::time::Duration;

/// Durable storage for runs, the step journal and flow state.
///
/// Every method is one transaction. Methods that change a claimed run take the
/// worker's `owner` id and its [`Claim`] (a journal entry carries the claim
/// as its `attempt`) and fail with [`StoreError::LeaseLost`] unless the run
/// is still running under that very claim: a stalled worker cannot
/// overwrite the work of the one that replaced it, even a worker of its own
/// node.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts runs in one transaction (group commit). A run whose
    /// `dedupe_key` already exists (stored, or earlier in the same slice) is
    /// not inserted; its outcome names the existing run instead. A run whose
    /// id already exists is likewise reported as a duplicate of itself, so
    /// retrying a batch is harmless. Outcomes are in the order of `runs`.
    async fn enqueue(&self, runs: &[NewRun]) -> Result<Vec<EnqueueOutcome>, StoreError>;

    /// Claims up to `limit` runs that are ready (queued and due, or running
    /// with an expired lease), marks them running, owned by `owner` until
    /// now + `lease`, and increments their `attempts`. Oldest first.
    async fn claim(&self, owner: &str, limit: u32, lease: Duration)
    -> Result<Vec<Run>, StoreError>;

    /// Extends the lease of those `runs` still held by `owner`; returns how
    /// many. Naming the runs (rather than renewing all of the owner's) lets a
    /// worker stop renewing a run it gave up on, so that run's lease expires
    /// and another worker resumes it.
    async fn renew_leases(
        &self,
        owner: &str,
        runs: &[RunId],
        lease: Duration,
    ) -> Result<u64, StoreError>;

    /// Gives back every running run held by `owner`: they become queued and due
    /// now, keeping their journal (used on graceful shutdown).
    async fn release(&self, owner: &str) -> Result<u64, StoreError>;

    /// Appends a journal entry for a run held by `owner` under the claim
    /// the entry names (its `attempt`). When `state` is given, the flow's state is replaced in the same transaction.
    async fn record_step(
        &self,
        owner: &str,
        entry: &JournalEntry,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;

    /// Every journal entry of a run, in the order they were recorded.
    async fn journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError>;

    /// Ends a run held by `owner` with its final status, output or error,
    /// and clears its lease. A status that is not final is refused with
    /// [`StoreError::NotFinal`].
    async fn finish(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError>;

    /// Appends the journal entry of a run's last step and ends the run, as
    /// [`Store::record_step`] then [`Store::finish`] would, in one
    /// transaction where the store can: the engine holds the last step's
    /// entry back for this, so a run's end costs one write, not two.
    async fn finish_with_step(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        self.record_step(owner, entry, None).await?;
        self.finish(owner, claim, outcome).await
    }

    /// Puts a failed run held by `owner` back in the queue, due at `at`,
    /// with the failure as its `error`, and counts the retry. Its journal is
    /// kept, so the next claim resumes at the failed step.
    async fn reschedule(
        &self,
        owner: &str,
        claim: Claim,
        at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Puts a run held by `owner` back in the queue, due at `until`, without
    /// counting a retry or recording an error: the run gives its worker back
    /// while it waits (a `wait` step, a child run), and the next claim
    /// resumes it from its journal. A waiting run costs its row, no task.
    async fn suspend(
        &self,
        owner: &str,
        claim: Claim,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// Makes a queued run due now, if it is due later (a parent waiting for
    /// its child); returns whether it was.
    async fn wake(&self, run: RunId) -> Result<bool, StoreError>;

    /// Queues dead runs again, due now, with their retries reset; returns
    /// those that were dead (others are left alone). A replay resumes at the
    /// failed step; `from_start` sets the journal aside so every step runs
    /// again (with the same idempotency keys as before).
    async fn replay(&self, runs: &[RunId], from_start: bool) -> Result<Vec<RunId>, StoreError>;
    /// Queues a dead run again from the start (as [`Store::replay`] with
    /// `from_start`) with `input` as its event in place of the one it had,
    /// which is kept: [`Store::input_edits`] lists every input replaced.
    /// Returns whether the run was dead; otherwise nothing changes.
    async fn replay_with_input(
        &self,
        run: RunId,
        input: &serde_json::Value,
    ) -> Result<bool, StoreError>;
    /// The runs in `status` (of `flow`, or of every flow) grouped by flow
    /// and error, the largest groups first, at most `limit` groups.
    async fn error_groups(
        &self,
        status: RunStatus,
        flow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ErrorGroup>, StoreError>;
    /// The inputs [`Store::replay_with_input`] replaced, oldest first.
    async fn input_edits(&self, run: RunId) -> Result<Vec<InputEdit>, StoreError>;
    /// Deletes up to `limit` runs that finished before `before`, oldest
    /// first, with their journal; returns how many. Queued and running runs
    /// are never deleted, however old.
    async fn purge_finished(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Cancels a queued or running run: it becomes `cancelled`, finished
    /// now, and loses its lease. Every lease-checked write of the worker
    /// executing it ([`Store::record_step`], [`Store::finish`],
    /// [`Store::reschedule`]) then fails with [`StoreError::LeaseLost`], so
    /// the run stops at its next step boundary and is never claimed again.
    async fn cancel(&self, run: RunId) -> Result<CancelOutcome, StoreError>;
    /// One run, if it exists.
    async fn run(&self, run: RunId) -> Result<Option<Run>, StoreError>;

    /// Runs matching a filter, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError>;

    /// Number of runs per flow and status.
    async fn count_runs(&self) -> Result<Vec<StatusCount>, StoreError>;

    /// How many runs are ready, delayed and running, and how long the
    /// oldest ready run has waited (for the queue metrics).
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError>;

    /// Activity per flow and per connector in the buckets of `window`
    /// (see [`Stats`]).
    async fn stats(&self, window: &StatsWindow) -> Result<Stats, StoreError>;
    /// Step attempts of `flow` that started at or after `since`, by step
    /// and outcome, ordered by step id.
    async fn step_totals(
        &self,
        flow: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<StepTotal>, StoreError>;

    /// A stored credential as stored (see [`Store::save_credential`]);
    /// [`Secrets::credential`] opens it.
    async fn credential(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores a credential an upstream issued at run time, such as a rotated
    /// OAuth2 refresh token, replacing the previous value of that name.
    /// Callers store it sealed ([`Secrets::save_credential`]).
    async fn save_credential(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Keeps the source files of configuration `version` (a JSON document
    /// of the caller's making), so runs created on it can finish on it after
    /// a reload or a restart; prunes versions no longer needed.
    async fn save_config_version(
        &self,
        version: &str,
        sources: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// The sources saved for `version`, if it is still kept.
    async fn config_version(&self, version: &str) -> Result<Option<serde_json::Value>, StoreError>;

    /// A flow's persistent state; `Value::Null` when it was never set.
    async fn flow_state(&self, flow: &str) -> Result<serde_json::Value, StoreError>;
    /// Replaces a flow's state outside any run: a flow test's initial state.
    async fn put_flow_state(&self, flow: &str, state: &serde_json::Value)
    -> Result<(), StoreError>;

    /// Stores a sealed secret (see [`Secrets`]), replacing one of that name.
    async fn put_sealed_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError>;
    /// Deletes a secret; false when there was none of that name.
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError>;
    /// Names of the stored secrets with their update times, by name.
    async fn secret_names(&self) -> Result<Vec<SecretInfo>, StoreError>;
    /// Every sealed secret, by name.
    async fn sealed_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// How many credentials are stored (sealed with the master key, like
    /// secrets).
    async fn count_credentials(&self) -> Result<u64, StoreError>;
    /// Deletes every secret and credential, for a store whose master key
    /// is lost: what they hold can no longer be opened. Returns how many.
    async fn delete_sealed(&self) -> Result<u64, StoreError>;

    /// Why the store cannot be trusted with new work, if it cannot (see
    /// [`StoreFault`]). One atomic load: cheap enough for every request.
    fn fault(&self) -> Option<StoreFault>;

    /// Records audit entries in one transaction, durably before it returns.
    /// An entry whose id is already stored is completed: only its `status`
    /// is replaced.
    async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// Audit entries, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// Deletes up to `limit` audit entries recorded before `before`, oldest
    /// first; returns how many.
    async fn purge_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Adds observations of contract drift to their kinds' records (see
    /// [`Drift`]); for each observation, whether its kind was new.
    async fn record_drift(
        &self,
        observations: &[DriftObservation],
    ) -> Result<Vec<bool>, StoreError>;
    /// Every contract drift record, by connector and operation.
    async fn list_drift(&self) -> Result<Vec<Drift>, StoreError>;

    /// Adds a delivery attempt to its endpoint's record (see [`Endpoint`]):
    /// a success ends a failing spell, a failure starts one or, once the
    /// spell has lasted `disable_after`, disables the endpoint. Returns the
    /// record as it now stands.
    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<Endpoint, StoreError>;
    /// One endpoint's record; `None` before its first attempt.
    async fn endpoint(&self, name: &str) -> Result<Option<Endpoint>, StoreError>;
    /// Every endpoint's record, by name.
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Enables a disabled endpoint and forgets its failing spell; `false`
    /// when no such endpoint has a record.
    async fn enable_endpoint(&self, name: &str) -> Result<bool, StoreError>;

    /// Records a node's report, stamped with the store's clock as its last
    /// heartbeat (the first report adds the node).
    async fn heartbeat(&self, report: &NodeReport) -> Result<(), StoreError>;
    /// Every node that ever reported and was not forgotten, by id.
    async fn nodes(&self) -> Result<Vec<NodeSeen>, StoreError>;
    /// Forgets the nodes whose last heartbeat is older than `silent_since`;
    /// returns how many.
    async fn forget_nodes(
        &self,
        silent_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError>;
    /// Takes lease `name` for `holder` until now + `ttl` when it is free,
    /// expired or already `holder`'s, in one statement; returns whether
    /// `holder` holds it now.
    async fn hold_lease(&self, name: &str, holder: &str, ttl: Duration)
    -> Result<bool, StoreError>;
    /// Gives lease `name` up if `holder` holds it, so another node can take
    /// it at once rather than when it expires.
    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// Who holds lease `name` now, if anyone (an expired lease has no
    /// holder).
    async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Records that `node` reloaded configuration `version`, stamped with
    /// the store's clock, replacing the previous publication: the other
    /// nodes sharing the store reload when they see it.
    async fn publish_config(&self, version: &str, node: &str) -> Result<(), StoreError>;
    /// The last configuration published, if any.
    async fn published_config(&self) -> Result<Option<PublishedConfig>, StoreError>;

    /// Records that `node`'s circuit breaker for `connector` opened until
    /// `until`; an opening already recorded until later stays.
    async fn open_breaker(
        &self,
        connector: &str,
        until: chrono::DateTime<chrono::Utc>,
        node: &str,
    ) -> Result<(), StoreError>;
    /// The breaker openings still in force, by connector.
    async fn open_breakers(&self) -> Result<Vec<BreakerOpening>, StoreError>;

    /// Whether several nodes may share this store, so that what must hold
    /// across nodes (rate limits) is kept in it rather than in each node.
    fn is_shared(&self) -> bool {
        false
    }
    /// Calls `wake` whenever another node makes runs ready (queued and due
    /// now), from a task of the store's, until the store closes; a store
    /// only one node uses does nothing. Waking is a hint: workers still
    /// poll, so a lost wake-up delays work by a poll, never loses it.
    fn on_ready(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }
    /// Reserves the next slot of the rate limit `key` (a GCRA: one slot per
    /// `interval`, up to `burst` back to back) on the store's clock, in one
    /// statement, unless it comes later than `horizon` from now.
    async fn reserve_rate(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        horizon: Duration,
    ) -> Result<RateSlot, StoreError>;
    /// Forgets the rate limits idle since before `idle_since` (their budget
    /// is full again: forgetting them changes nothing); returns how many.
    async fn forget_rates(
        &self,
        idle_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError>;
    /// Takes one of the `limit` slots of `name` for `holder`, held for
    /// `hold` from now on the store's clock, unless every slot is held (a
    /// hold past its time is free again); returns the slot's number. Two
    /// callers racing for the last free slot may both come back empty.
    async fn take_slot(
        &self,
        name: &str,
        limit: u32,
        holder: &str,
        hold: Duration,
    ) -> Result<Option<u32>, StoreError>;
    /// Gives `holder`'s `slot` of `name` back; nothing when the slot was
    /// taken by another holder since (the hold ran out).
    async fn release_slot(&self, name: &str, slot: u32, holder: &str) -> Result<(), StoreError>;
}
