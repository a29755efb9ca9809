//! The PostgreSQL store: several nodes on one database, which is the only
//! coordinator they share.
//!
//! Storage conventions mirror the SQLite store's, so both answer alike:
//! run ids are UUIDv7 (`uuid`, which orders as time does), times are unix
//! milliseconds (`BIGINT`), JSON documents are text, kept byte for byte as
//! the engine wrote them. "Now" is read from the options' [`Clock`] once
//! per call and handed to the queries as `now`, as in SQLite.
//!
//! Every method is one transaction on a pooled connection, except journal
//! writes (a step's entry, a run's last entry and end), which the
//! [`group_commit`] task applies with those of concurrent runs in one
//! statement. Migrations are
//! embedded and applied at open; sqlx holds a PostgreSQL advisory lock
//! while it applies them, so nodes starting together do not race. A
//! `schema` in the options keeps every table in that schema (created if
//! missing): the tests give each store a schema of its own in one
//! database.
//!
//! The queries live in submodules by concern: [`queue`] (enqueue, claims
//! and leases, finishing, rescheduling, replay, cancel, purge), [`journal`]
//! (steps and flow state, one write at a time) and [`group_commit`] (many
//! at a time), [`query`] (read-only views of runs and the
//! queue), [`stats`] (bucketed activity), [`operations`] (credentials,
//! secrets, configuration versions), [`audit`], [`drift`] and [`cluster`]
//! (node reports, leases); [`codec`] converts columns and decodes rows.

mod audit;
mod cluster;
mod codec;
mod drift;
mod endpoints;
mod group_commit;
mod journal;
mod operations;
mod query;
mod queue;
mod ready;
mod stats;
#[cfg(test)]
mod test_support;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{
    AuditEntry, AuditFilter, CancelOutcome, Claim, Clock, DeliveryAttempt, Drift, DriftObservation,
    Endpoint, EnqueueOutcome, ErrorGroup, InputEdit, JournalEntry, NewRun, NodeReport, NodeSeen,
    QueueDepth, Run, RunFilter, RunId, RunOutcome, RunStatus, SecretInfo, Stats, StatsWindow,
    StatusCount, Store, StoreError, StoreFault, SystemClock,
};

/// Migrations compiled into the binary, applied by [`PgStore::open`].
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Where and how to open a [`PgStore`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Keep the tables in this schema (created if missing) instead of the
    /// connection's default.
    pub schema: Option<String>,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a call waits for a connection before it fails. sqlx's pool
    /// keeps reconnecting to a server that refuses connections until then,
    /// so it is also how long a call takes to fail while the database is
    /// down.
    pub acquire_timeout: Duration,
    /// Where the store reads the current time; [`SystemClock`] unless a
    /// test sets another.
    pub clock: Arc<dyn Clock>,
}

impl PgOptions {
    /// Default pool size: enough for the workers' writes, the intake and
    /// the management API's reads on one node.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

    /// Default wait for a connection: far above what a healthy pool of
    /// [`PgOptions::DEFAULT_MAX_CONNECTIONS`] makes a call wait, and short
    /// enough that a webhook sender gets its `503` while it still waits
    /// for an answer (many give up after 5 to 10 s).
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            schema: None,
            max_connections: PgOptions::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: PgOptions::DEFAULT_ACQUIRE_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The store on PostgreSQL. Clones share its pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    /// Where transactions that make runs ready announce them (see
    /// [`ready`]).
    channel: Arc<str>,
    /// Where journal entries and run ends go to be committed together.
    journal: group_commit::GroupCommit,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database of `opts.url` and applies pending
    /// migrations.
    pub async fn open(opts: PgOptions) -> Result<PgStore, StoreError> {
        let connect: PgConnectOptions =
            opts.url
                .parse()
                .map_err(|e: sqlx::Error| StoreError::Open {
                    path: shown_url(&opts.url),
                    source: e.into(),
                })?;
        let open_error = |e: sqlx::Error| StoreError::Open {
            path: shown_url(&opts.url),
            source: e.into(),
        };
        if let Some(schema) = &opts.schema {
            let mut pool_options = PgPoolOptions::new().max_connections(1);
            pool_options = pool_options.acquire_timeout(Duration::from_secs(10));
            let setup = pool_options
                .connect_with(connect.clone())
                .await
                .map_err(open_error)?;
            // An identifier cannot be a bind parameter; it is quoted.
            let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quoted(schema));
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&setup)
                .await
                .map_err(open_error)?;
            setup.close().await;
        }
        let connect = match &opts.schema {
            Some(schema) => connect.options([("search_path", schema.as_str())]),
            None => connect,
        };
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await?;
        tracing::debug!(url = %shown_url(&opts.url), "store opened");
        Ok(PgStore {
            journal: group_commit::GroupCommit::start(pool.clone()),
            pool,
            clock: opts.clock,
            channel: ready::channel(opts.schema.as_deref()),
        })
    }

    /// The current time on the store's clock, as stored.
    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` without its password, for messages.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an invalid PostgreSQL URL)".to_string(),
    }
}

/// An identifier quoted for SQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `now + lease`, in stored milliseconds.
fn after(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn enqueue(&self, runs: &[NewRun]) -> Result<Vec<EnqueueOutcome>, StoreError> {
        queue::enqueue(&self.pool, &self.channel, runs, self.now()).await
    }

    async fn claim(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Run>, StoreError> {
        let now = self.now();
        queue::claim(&self.pool, owner, limit, after(now, lease), now).await
    }

    async fn renew_leases(
        &self,
        owner: &str,
        runs: &[RunId],
        lease: Duration,
    ) -> Result<u64, StoreError> {
        let now = self.now();
        queue::renew_leases(&self.pool, owner, runs, after(now, lease), now).await
    }

    async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        queue::release(&self.pool, &self.channel, owner, self.now()).await
    }

    async fn record_step(
        &self,
        owner: &str,
        entry: &JournalEntry,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let write = journal::Write::append(owner, entry, state, self.now());
        self.journal.write(write).await
    }

    async fn journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        journal::journal(&self.pool, run).await
    }

    async fn finish(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        queue::finish(&self.pool, owner, claim, outcome, self.now()).await
    }

    async fn finish_with_step(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        queue::refuse_unfinal(claim.run, outcome)?;
        let write = journal::Write::finish(owner, claim, outcome, entry, self.now());
        self.journal.write(write).await
    }

    async fn reschedule(
        &self,
        owner: &str,
        claim: Claim,
        at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        queue::reschedule(
            &self.pool,
            owner,
            claim,
            at.timestamp_millis(),
            error,
            self.now(),
        )
        .await
    }

    async fn suspend(
        &self,
        owner: &str,
        claim: Claim,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        queue::suspend(
            &self.pool,
            owner,
            claim,
            until.timestamp_millis(),
            self.now(),
        )
        .await
    }

    async fn wake(&self, run: RunId) -> Result<bool, StoreError> {
        queue::wake(&self.pool, &self.channel, run, self.now()).await
    }

    async fn replay(&self, runs: &[RunId], from_start: bool) -> Result<Vec<RunId>, StoreError> {
        queue::replay(&self.pool, &self.channel, runs, from_start, self.now()).await
    }

    async fn replay_with_input(
        &self,
        run: RunId,
        input: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        queue::replay_with_input(&self.pool, &self.channel, run, input, self.now()).await
    }

    async fn error_groups(
        &self,
        status: RunStatus,
        flow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ErrorGroup>, StoreError> {
        query::error_groups(&self.pool, status, flow, limit).await
    }

    async fn input_edits(&self, run: RunId) -> Result<Vec<InputEdit>, StoreError> {
        query::input_edits(&self.pool, run).await
    }

    async fn purge_finished(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        queue::purge_finished(&self.pool, before.timestamp_millis(), limit).await
    }

    async fn cancel(&self, run: RunId) -> Result<CancelOutcome, StoreError> {
        queue::cancel(&self.pool, run, self.now()).await
    }

    async fn run(&self, run: RunId) -> Result<Option<Run>, StoreError> {
        query::run(&self.pool, run).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        query::list_runs(&self.pool, filter).await
    }

    async fn count_runs(&self) -> Result<Vec<StatusCount>, StoreError> {
        query::count_runs(&self.pool).await
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        query::queue_depth(&self.pool, self.now()).await
    }

    async fn step_totals(
        &self,
        flow: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::StepTotal>, StoreError> {
        stats::step_totals(&self.pool, flow, since).await
    }

    async fn stats(&self, window: &StatsWindow) -> Result<Stats, StoreError> {
        stats::stats(&self.pool, window, self.now()).await
    }

    async fn credential(&self, name: &str) -> Result<Option<String>, StoreError> {
        operations::credential(&self.pool, name).await
    }

    async fn save_credential(&self, name: &str, value: &str) -> Result<(), StoreError> {
        operations::save_credential(&self.pool, name, value, self.now()).await
    }

    async fn save_config_version(
        &self,
        version: &str,
        sources: &serde_json::Value,
    ) -> Result<(), StoreError> {
        operations::save_config_version(&self.pool, version, sources, self.now()).await
    }

    async fn config_version(&self, version: &str) -> Result<Option<serde_json::Value>, StoreError> {
        operations::config_version(&self.pool, version).await
    }

    async fn flow_state(&self, flow: &str) -> Result<serde_json::Value, StoreError> {
        journal::flow_state(&self.pool, flow).await
    }

    async fn put_flow_state(
        &self,
        flow: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        journal::put_flow_state(&self.pool, flow, state, self.now()).await
    }

    async fn put_sealed_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        operations::put_sealed_secret(&self.pool, name, sealed, self.now()).await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        operations::delete_secret(&self.pool, name).await
    }

    async fn secret_names(&self) -> Result<Vec<SecretInfo>, StoreError> {
        operations::secret_names(&self.pool).await
    }

    async fn sealed_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        operations::sealed_secrets(&self.pool).await
    }

    async fn count_credentials(&self) -> Result<u64, StoreError> {
        operations::count_credentials(&self.pool).await
    }

    async fn delete_sealed(&self) -> Result<u64, StoreError> {
        operations::delete_sealed(&self.pool).await
    }

    fn fault(&self) -> Option<StoreFault> {
        // A database that cannot be reached fails the calls themselves,
        // which report it; there is no file to watch.
        None
    }

    async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        audit::record_audit(&self.pool, entries).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        audit::list_audit(&self.pool, filter).await
    }

    async fn purge_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        audit::purge_audit(&self.pool, before.timestamp_millis(), limit).await
    }

    async fn record_drift(
        &self,
        observations: &[DriftObservation],
    ) -> Result<Vec<bool>, StoreError> {
        drift::record_drift(&self.pool, observations, self.now()).await
    }

    async fn list_drift(&self) -> Result<Vec<Drift>, StoreError> {
        drift::list_drift(&self.pool).await
    }

    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<Endpoint, StoreError> {
        endpoints::record(&self.pool, attempt).await
    }

    async fn endpoint(&self, name: &str) -> Result<Option<Endpoint>, StoreError> {
        endpoints::one(&self.pool, name).await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        endpoints::list(&self.pool).await
    }

    async fn enable_endpoint(&self, name: &str) -> Result<bool, StoreError> {
        endpoints::enable(&self.pool, name).await
    }

    async fn heartbeat(&self, report: &NodeReport) -> Result<(), StoreError> {
        cluster::heartbeat(&self.pool, report, self.now()).await
    }

    async fn nodes(&self) -> Result<Vec<NodeSeen>, StoreError> {
        cluster::nodes(&self.pool).await
    }

    async fn forget_nodes(
        &self,
        silent_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        cluster::forget_nodes(&self.pool, silent_since.timestamp_millis()).await
    }

    async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        cluster::hold_lease(&self.pool, name, holder, after(now, ttl), now).await
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        cluster::drop_lease(&self.pool, name, holder).await
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        cluster::lease_holder(&self.pool, name, self.now()).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn on_ready(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        tokio::spawn(ready::listen(self.pool.clone(), self.channel.clone(), wake));
    }

    async fn publish_config(&self, version: &str, node: &str) -> Result<(), StoreError> {
        cluster::publish_config(&self.pool, version, node, self.now()).await
    }

    async fn published_config(&self) -> Result<Option<crate::PublishedConfig>, StoreError> {
        cluster::published_config(&self.pool).await
    }

    async fn open_breaker(
        &self,
        connector: &str,
        until: chrono::DateTime<chrono::Utc>,
        node: &str,
    ) -> Result<(), StoreError> {
        cluster::open_breaker(&self.pool, connector, until.timestamp_millis(), node).await
    }

    async fn open_breakers(&self) -> Result<Vec<crate::BreakerOpening>, StoreError> {
        cluster::open_breakers(&self.pool, self.now()).await
    }

    async fn reserve_rate(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        horizon: Duration,
    ) -> Result<crate::RateSlot, StoreError> {
        let pacing = crate::cluster::gcra_micros(interval, burst);
        let horizon = crate::cluster::duration_micros(horizon);
        cluster::reserve_rate(&self.pool, key, pacing, horizon).await
    }

    async fn forget_rates(
        &self,
        idle_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        cluster::forget_rates(&self.pool, idle_since.timestamp_micros()).await
    }

    async fn take_slot(
        &self,
        name: &str,
        limit: u32,
        holder: &str,
        hold: Duration,
    ) -> Result<Option<u32>, StoreError> {
        let hold = crate::cluster::duration_micros(hold);
        cluster::take_slot(&self.pool, name, limit, holder, hold).await
    }

    async fn release_slot(&self, name: &str, slot: u32, holder: &str) -> Result<(), StoreError> {
        cluster::release_slot(&self.pool, name, slot, holder).await
    }
}
