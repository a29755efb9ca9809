//! The SQLite store: one database file in WAL mode, the embedded default.
//!
//! Every write goes through the **writer** ([`writer`]), a thread that owns
//! the one write connection: writes are serialised in the process instead
//! of racing for SQLite's one write lock, so they never spin on
//! `SQLITE_BUSY`, and whatever writes are waiting share one commit (one
//! fsync). Reads go through the **reader** pool (sqlx); in WAL mode readers
//! see the last committed state and neither block nor are blocked by the
//! writer. Reader connections are `query_only`, so a read path can never
//! write by mistake. Migrations run on a connection of their own before
//! either opens.
//!
//! Durability: `synchronous=FULL` makes every commit fsync the WAL, so a run
//! acknowledged to a caller survives a power cut, not just a process crash.
//! Multi-statement write transactions start with `BEGIN IMMEDIATE` so that a
//! second process on the same file (the CLI, say) queues on the busy timeout
//! instead of failing when a read lock would have to be upgraded.
//!
//! Storage conventions, kept so the PostgreSQL schema can mirror this one:
//! run ids are UUIDv7 stored as their 16 bytes (byte order is time order;
//! PostgreSQL's `uuid` type compares the same way), other ids as text, times
//! are unix milliseconds, JSON documents are text.
//!
//! "Now" is read from the options' [`Clock`], once per call, and handed to
//! the query functions as `now`: they never read a clock themselves, so a
//! test on tokio's paused clock decides what every recorded time is. Group
//! committed writes are stamped when they are asked for, not when their
//! batch commits.
//!
//! Files: the database, its WAL and shared-memory files hold credentials
//! (sealed) and whatever events carry, so they are created readable by
//! their owner only (0600; SQLite gives the WAL and SHM files the database
//! file's mode), and an existing database with wider access is narrowed at
//! open. [`watch`] notices the file being deleted or replaced under the
//! running node.
//!
//! The queries live in submodules by concern (writes are plain functions
//! over the writer's connection, reads are async over the reader pool): [`queue`] (enqueue, claim,
//! leases, reschedule, replay, cancel, finish, purge), [`journal`] (steps and flow state),
//! [`credentials`], [`query`] (read-only views), [`stats`] (bucketed
//! activity for the dashboard), [`audit`] (the audit log), [`cluster`]
//! (node reports, leases) and [`codec`] (column conversions and row
//! decoding).

mod audit;
mod checkpoint;
mod cluster;
mod codec;
mod credentials;
mod depth;
mod drift;
mod endpoints;
mod journal;
mod query;
mod queue;
mod secrets;
mod stats;
mod versions;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use codec::after;
use journal::EncodedEntry;
use queue::{EncodedRun, Ending, id_list};
use writer::Writer;

use crate::{
    AuditEntry, AuditFilter, CancelOutcome, Claim, Clock, DeliveryAttempt, Drift, DriftObservation,
    Endpoint, EnqueueOutcome, ErrorGroup, InputEdit, JournalEntry, NewRun, NodeReport, NodeSeen,
    Run, RunFilter, RunId, RunOutcome, RunStatus, Stats, StatsWindow, StatusCount, Store,
    StoreError, StoreFault, SystemClock,
};

/// Migrations compiled into the binary, applied by [`SqliteStore::open`].
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Where and how to open a SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// The database file; it and its parent folder are created if missing.
    pub path: PathBuf,
    /// Connections serving reads (at least 1).
    pub readers: u32,
    /// How long a statement waits for a lock held by another process on the
    /// same file before failing.
    pub busy_timeout: Duration,
    /// Where the store reads the current time: claims, leases, due times
    /// and every recorded time. [`SystemClock`] unless a test sets another.
    pub clock: Arc<dyn Clock>,
}

impl SqliteOptions {
    /// Default reader connections: reads are short, so a few cover the
    /// management API and dashboard next to the workers.
    pub const DEFAULT_READERS: u32 = 4;
    /// Default busy timeout.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Options for the file at `path` with default settings.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            readers: SqliteOptions::DEFAULT_READERS,
            busy_timeout: SqliteOptions::DEFAULT_BUSY_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }

    /// These options with `clock` as the store's clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> SqliteOptions {
        self.clock = clock;
        self
    }
}

/// SQLite settings in effect on a connection, as reported by SQLite itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`, e.g. `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 0 off, 1 normal, 2 full, 3 extra.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: i64,
    /// `PRAGMA query_only`.
    pub query_only: bool,
    /// `PRAGMA temp_store`: 0 default, 1 file, 2 memory.
    pub temp_store: i64,
}

/// The [`Store`] on a SQLite file. Cloning is cheap and shares the
/// connections.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The only path for writes, committed in groups.
    writer: Writer,
    /// Several `query_only` connections for reads.
    reader: SqlitePool,
    /// The file's identity and the writer's health, watched in the
    /// background.
    health: Arc<watch::Health>,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `opts.path` and applies
    /// pending migrations.
    pub async fn open(opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = opts.path.display().to_string();
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.clone(),
            source,
        };

        if let Some(parent) = opts.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| open_error(e.into()))?;
        }
        owner_only(&opts.path).map_err(|e| open_error(e.into()))?;

        let base = SqliteConnectOptions::new()
            .filename(&opts.path)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(opts.busy_timeout);

        // WAL is a property of the file, set once when it is created and
        // migrated; the writer and the readers only open what exists.
        let mut migrating = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .map_err(|e| open_error(e.into()))?;
        MIGRATOR.run(&mut migrating).await?;
        migrating.close().await.map_err(|e| open_error(e.into()))?;

        let writer =
            Writer::open(&opts.path, opts.busy_timeout).map_err(|e| open_error(e.into()))?;

        let reader_options = base.pragma("query_only", "ON");
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.readers.max(1))
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(reader_options)
            .await
            .map_err(|e| open_error(e.into()))?;

        let health = watch::start(&opts.path)
            .await
            .map_err(|e| open_error(e.into()))?;
        tracing::debug!(path = %opts.path.display(), readers = opts.readers.max(1), "store opened");
        Ok(SqliteStore {
            writer,
            reader,
            health,
            clock: opts.clock,
        })
    }

    /// The current time on the store's clock, as stored.
    fn now(&self) -> i64 {
        codec::millis(self.clock.now())
    }

    /// The SQLite settings in effect on the writer connection (for
    /// diagnostics: durability depends on them).
    pub async fn connection_settings(&self) -> Result<ConnectionSettings, StoreError> {
        self.writer
            .write(|connection| {
                let text = |pragma: &str| -> rusqlite::Result<String> {
                    connection.query_row(pragma, [], |row| row.get(0))
                };
                let int = |pragma: &str| -> rusqlite::Result<i64> {
                    connection.query_row(pragma, [], |row| row.get(0))
                };
                Ok(ConnectionSettings {
                    journal_mode: text("PRAGMA journal_mode")?.to_ascii_lowercase(),
                    synchronous: int("PRAGMA synchronous")?,
                    foreign_keys: int("PRAGMA foreign_keys")? != 0,
                    busy_timeout_ms: int("PRAGMA busy_timeout")?,
                    query_only: int("PRAGMA query_only")? != 0,
                    temp_store: int("PRAGMA temp_store")?,
                })
            })
            .await
    }

    /// How many write transactions the store has committed since it opened.
    /// Beside the number of writes asked for, it tells how well concurrent
    /// writes share their commits (and fsyncs).
    pub fn write_commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Closes the readers, waiting for connections in use to be returned,
    /// then the writer once the writes already asked for are done. The
    /// last connection to close checkpoints the WAL into the main file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Creates the database file readable by its owner only, or narrows the
/// access of an existing one and of its WAL and SHM files.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // Created here, before SQLite, which would create it 0644 (less the
        // umask); SQLite then gives the WAL and SHM files this file's mode.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            match std::fs::metadata(&file) {
                Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                    tracing::warn!(path = %file.display(), "the store file was readable by others; its mode is now 0600");
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads the settings of one connection of `pool`.
#[cfg(test)]
async fn settings(pool: &SqlitePool) -> Result<ConnectionSettings, StoreError> {
    // All pragmas on one connection: the per-connection ones could differ
    // between connections of a pool if options were ever set after connect.
    let mut conn = pool.acquire().await?;
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await?;
    let busy_timeout_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await?;
    let query_only: i64 = sqlx::query_scalar("PRAGMA query_only")
        .fetch_one(&mut *conn)
        .await?;
    let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
        .fetch_one(&mut *conn)
        .await?;
    Ok(ConnectionSettings {
        journal_mode: journal_mode.to_ascii_lowercase(),
        synchronous,
        foreign_keys: foreign_keys != 0,
        busy_timeout_ms,
        query_only: query_only != 0,
        temp_store,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn enqueue(&self, runs: &[NewRun]) -> Result<Vec<EnqueueOutcome>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<EncodedRun> = runs.iter().map(EncodedRun::encode).collect();
        let now = self.now();
        let result = self
            .writer
            .write(move |connection| queue::enqueue(connection, &runs, now))
            .await;
        match &result {
            Ok(_) => self.health.record_write(true),
            Err(StoreError::Sql(_)) => self.health.record_write(false),
            Err(_) => {}
        }
        result
    }

    async fn claim(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Run>, StoreError> {
        if self.health.is_replaced() {
            // Work done now would be written to a file no restart finds.
            return Ok(Vec::new());
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let owner = owner.to_string();
        let now = self.now();
        let lease_until = after(now, lease);
        self.writer
            .write(move |connection| queue::claim(connection, &owner, limit, lease_until, now))
            .await
    }

    async fn renew_leases(
        &self,
        owner: &str,
        runs: &[RunId],
        lease: Duration,
    ) -> Result<u64, StoreError> {
        if runs.is_empty() {
            return Ok(0);
        }
        let ids = id_list(runs)?;
        let owner = owner.to_string();
        let now = self.now();
        let lease_until = after(now, lease);
        self.writer
            .write(move |connection| {
                queue::renew_leases(connection, &owner, &ids, lease_until, now)
            })
            .await
    }

    async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_string();
        let now = self.now();
        self.writer
            .write(move |connection| queue::release(connection, &owner, now))
            .await
    }

    async fn record_step(
        &self,
        owner: &str,
        entry: &JournalEntry,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let entry = EncodedEntry::encode(owner, entry, state, self.now());
        self.writer
            .write(move |connection| journal::record_step(connection, &entry))
            .await
    }

    async fn journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        journal::journal(&self.reader, run).await
    }

    async fn finish(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        let ending = Ending::encode(owner, claim, outcome, self.now())?;
        self.writer
            .write(move |connection| queue::finish(connection, &ending))
            .await
    }

    async fn finish_with_step(
        &self,
        owner: &str,
        claim: Claim,
        outcome: &RunOutcome,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        let ending = Ending::encode(owner, claim, outcome, self.now())?;
        let mut entry = EncodedEntry::encode(owner, entry, None, self.now());
        // A run's output is its last step's: stored once.
        entry.share_output_with_run(ending.output());
        self.writer
            .write(move |connection| {
                journal::record_step(connection, &entry)?;
                queue::finish(connection, &ending)
            })
            .await
    }

    async fn reschedule(
        &self,
        owner: &str,
        claim: Claim,
        at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        let error = error.to_string();
        let at = codec::millis(at);
        let now = self.now();
        self.writer
            .write(move |connection| queue::reschedule(connection, &owner, claim, at, &error, now))
            .await
    }

    async fn suspend(
        &self,
        owner: &str,
        claim: Claim,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        let until = codec::millis(until);
        let now = self.now();
        self.writer
            .write(move |connection| queue::suspend(connection, &owner, claim, until, now))
            .await
    }

    async fn wake(&self, run: RunId) -> Result<bool, StoreError> {
        let now = self.now();
        self.writer
            .write(move |connection| queue::wake(connection, run, now))
            .await
    }

    async fn replay(&self, runs: &[RunId], from_start: bool) -> Result<Vec<RunId>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(runs)?;
        let now = self.now();
        self.writer
            .write(move |connection| queue::replay(connection, &ids, from_start, now))
            .await
    }

    async fn replay_with_input(
        &self,
        run: RunId,
        input: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let input = codec::json_text(input);
        let now = self.now();
        self.writer
            .write(move |connection| queue::replay_with_input(connection, run, &input, now))
            .await
    }

    async fn error_groups(
        &self,
        status: RunStatus,
        flow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ErrorGroup>, StoreError> {
        query::error_groups(&self.reader, status, flow, limit).await
    }

    async fn input_edits(&self, run: RunId) -> Result<Vec<InputEdit>, StoreError> {
        query::input_edits(&self.reader, run).await
    }

    async fn purge_finished(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.writer
            .write(move |connection| queue::purge_finished(connection, before, limit))
            .await
    }

    async fn cancel(&self, run: RunId) -> Result<CancelOutcome, StoreError> {
        let now = self.now();
        self.writer
            .write(move |connection| queue::cancel(connection, run, now))
            .await
    }

    async fn run(&self, run: RunId) -> Result<Option<Run>, StoreError> {
        query::run(&self.reader, run).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        query::list_runs(&self.reader, filter).await
    }

    async fn count_runs(&self) -> Result<Vec<StatusCount>, StoreError> {
        query::count_runs(&self.reader).await
    }

    async fn queue_depth(&self) -> Result<crate::QueueDepth, StoreError> {
        depth::queue_depth(&self.reader, self.now()).await
    }

    async fn step_totals(
        &self,
        flow: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::StepTotal>, StoreError> {
        stats::step_totals(&self.reader, flow, since).await
    }

    async fn stats(&self, window: &StatsWindow) -> Result<Stats, StoreError> {
        stats::stats(&self.reader, window, self.now()).await
    }

    async fn credential(&self, name: &str) -> Result<Option<String>, StoreError> {
        credentials::credential(&self.reader, name).await
    }

    async fn save_config_version(
        &self,
        version: &str,
        sources: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let version = version.to_string();
        let sources = sources.to_string();
        let now = self.now();
        self.writer
            .write(move |connection| versions::save(connection, &version, &sources, now))
            .await
    }

    async fn config_version(&self, version: &str) -> Result<Option<serde_json::Value>, StoreError> {
        versions::load(&self.reader, version).await
    }

    async fn save_credential(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        let value = value.to_string();
        let now = self.now();
        self.writer
            .write(move |connection| credentials::save_credential(connection, &name, &value, now))
            .await
    }

    async fn put_sealed_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let name = name.to_string();
        let sealed = sealed.to_vec();
        let now = self.now();
        self.writer
            .write(move |connection| secrets::put_sealed_secret(connection, &name, &sealed, now))
            .await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.writer
            .write(move |connection| secrets::delete_secret(connection, &name))
            .await
    }

    async fn secret_names(&self) -> Result<Vec<crate::SecretInfo>, StoreError> {
        secrets::secret_names(&self.reader).await
    }

    async fn sealed_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        secrets::sealed_secrets(&self.reader).await
    }

    async fn flow_state(&self, flow: &str) -> Result<serde_json::Value, StoreError> {
        journal::flow_state(&self.reader, flow).await
    }

    async fn put_flow_state(
        &self,
        flow: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let flow = flow.to_string();
        let state = state.to_string();
        let now = self.now();
        self.writer
            .write(move |connection| journal::put_flow_state(connection, &flow, &state, now))
            .await
    }

    async fn delete_sealed(&self) -> Result<u64, StoreError> {
        self.writer.write(secrets::delete_sealed).await
    }

    async fn count_credentials(&self) -> Result<u64, StoreError> {
        credentials::count_credentials(&self.reader).await
    }

    fn fault(&self) -> Option<StoreFault> {
        self.health.fault()
    }

    async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries: Vec<audit::Encoded> = entries.iter().map(audit::Encoded::encode).collect();
        self.writer
            .write(move |connection| audit::record(connection, &entries))
            .await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        audit::list_audit(&self.reader, filter).await
    }

    async fn purge_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.writer
            .write(move |connection| audit::purge_audit(connection, before, limit))
            .await
    }

    async fn record_drift(
        &self,
        observations: &[DriftObservation],
    ) -> Result<Vec<bool>, StoreError> {
        if observations.is_empty() {
            return Ok(Vec::new());
        }
        let observations = observations.to_vec();
        self.writer
            .write(move |connection| drift::record(connection, &observations))
            .await
    }

    async fn list_drift(&self) -> Result<Vec<Drift>, StoreError> {
        drift::list(&self.reader).await
    }

    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<Endpoint, StoreError> {
        let recorded = attempt.clone();
        self.writer
            .write(move |connection| endpoints::record(connection, &recorded))
            .await?;
        endpoints::one(&self.reader, &attempt.endpoint)
            .await?
            .ok_or_else(|| {
                crate::rows::corrupt("endpoints.name", "the record just written is gone")
            })
    }

    async fn endpoint(&self, name: &str) -> Result<Option<Endpoint>, StoreError> {
        endpoints::one(&self.reader, name).await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        endpoints::list(&self.reader).await
    }

    async fn enable_endpoint(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.writer
            .write(move |connection| endpoints::enable(connection, &name))
            .await
    }

    async fn heartbeat(&self, report: &NodeReport) -> Result<(), StoreError> {
        let report = report.clone();
        let now = self.now();
        self.writer
            .write(move |connection| cluster::heartbeat(connection, &report, now))
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeSeen>, StoreError> {
        cluster::nodes(&self.reader).await
    }

    async fn forget_nodes(
        &self,
        silent_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let before = codec::millis(silent_since);
        self.writer
            .write(move |connection| cluster::forget_nodes(connection, before))
            .await
    }

    async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let now = self.now();
        let until = after(now, ttl);
        self.writer
            .write(move |connection| cluster::hold_lease(connection, &name, &holder, until, now))
            .await
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .write(move |connection| cluster::drop_lease(connection, &name, &holder))
            .await
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        cluster::lease_holder(&self.reader, name, self.now()).await
    }

    async fn publish_config(&self, version: &str, node: &str) -> Result<(), StoreError> {
        let (version, node) = (version.to_string(), node.to_string());
        let now = self.now();
        self.writer
            .write(move |connection| cluster::publish_config(connection, &version, &node, now))
            .await
    }

    async fn published_config(&self) -> Result<Option<crate::PublishedConfig>, StoreError> {
        cluster::published_config(&self.reader).await
    }

    async fn open_breaker(
        &self,
        connector: &str,
        until: chrono::DateTime<chrono::Utc>,
        node: &str,
    ) -> Result<(), StoreError> {
        let (connector, node) = (connector.to_string(), node.to_string());
        let until = codec::millis(until);
        self.writer
            .write(move |connection| cluster::open_breaker(connection, &connector, until, &node))
            .await
    }

    async fn open_breakers(&self) -> Result<Vec<crate::BreakerOpening>, StoreError> {
        cluster::open_breakers(&self.reader, self.now()).await
    }

    async fn reserve_rate(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        horizon: Duration,
    ) -> Result<crate::RateSlot, StoreError> {
        let key = key.to_string();
        let pacing = crate::cluster::gcra_micros(interval, burst);
        let horizon = crate::cluster::duration_micros(horizon);
        let now = self.now().saturating_mul(1000);
        self.writer
            .write(move |connection| cluster::reserve_rate(connection, &key, pacing, now, horizon))
            .await
    }

    async fn forget_rates(
        &self,
        idle_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let before = idle_since.timestamp_micros();
        self.writer
            .write(move |connection| cluster::forget_rates(connection, before))
            .await
    }

    async fn take_slot(
        &self,
        name: &str,
        limit: u32,
        holder: &str,
        hold: Duration,
    ) -> Result<Option<u32>, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let hold = crate::cluster::duration_micros(hold);
        let now = self.now().saturating_mul(1000);
        self.writer
            .write(move |connection| {
                cluster::take_slot(connection, &name, limit, &holder, (now, hold))
            })
            .await
    }

    async fn release_slot(&self, name: &str, slot: u32, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .write(move |connection| cluster::release_slot(connection, &name, slot, &holder))
            .await
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A store file, created and migrated, and closed again.
    pub async fn migrated_store() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        SqliteStore::open(SqliteOptions::new(&path))
            .await
            .unwrap()
            .close()
            .await;
        (dir, path)
    }

    /// Whether a step of a plan walks a table, or an index of every run,
    /// from end to end: its cost would grow with the history kept. Walking
    /// a partial index of unfinished runs (`runs_ready`, `runs_lease`)
    /// grows only with the work in flight.
    pub fn scans_history(step: &str) -> bool {
        (step.starts_with("SCAN runs") || step.starts_with("SCAN j"))
            && !step.contains("runs_ready")
            && !step.contains("runs_lease")
    }

    /// The steps of SQLite's plan for `sql` on the store at `path`, with
    /// every parameter bound to 0.
    pub fn plan(path: &Path, sql: &str) -> Vec<String> {
        let connection = rusqlite::Connection::open(path).unwrap();
        let mut explain = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        for index in 1..=explain.parameter_count() {
            explain.raw_bind_parameter(index, 0).unwrap();
        }
        let mut rows = explain.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps
    }

    #[tokio::test]
    async fn reader_connections_are_query_only_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("s.db")))
            .await
            .unwrap();

        let writer = store.connection_settings().await.unwrap();
        assert!(!writer.query_only);

        let reader = settings(&store.reader).await.unwrap();
        assert_eq!(reader.journal_mode, "wal");
        assert_eq!(reader.synchronous, 2);
        assert!(reader.foreign_keys);
        assert!(reader.query_only);

        let write = sqlx::query("DELETE FROM flow_state")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "a reader connection accepted a write");
        store.close().await;
    }
}
