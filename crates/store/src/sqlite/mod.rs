//! The SQLite store: one database file in WAL mode, the embedded default.
//!
//! Two connection pools share the file. Every write goes through the
//! **writer** pool, which holds a single connection: writes are serialised in
//! the process instead of racing for SQLite's one write lock, so they never
//! spin on `SQLITE_BUSY`, and a batch of runs costs one commit (one fsync).
//! Reads go through the **reader** pool; in WAL mode readers see the last
//! committed state and neither block nor are blocked by the writer. Reader
//! connections are `query_only`, so a read path can never write by mistake.
//!
//! Durability: `synchronous=FULL` makes every commit fsync the WAL, so a run
//! acknowledged to a caller survives a power cut, not just a process crash.
//! Multi-statement write transactions start with `BEGIN IMMEDIATE` so that a
//! second process on the same file (the CLI, say) queues on the busy timeout
//! instead of failing when a read lock would have to be upgraded.
//!
//! Storage conventions, kept so the PostgreSQL schema can mirror this one:
//! ids are UUIDv7 in their lowercase hyphenated text form (text order is time
//! order), times are unix milliseconds, JSON documents are text.
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
//! The queries live in submodules by concern: [`queue`] (enqueue, claim,
//! leases, reschedule, replay, cancel, finish, purge), [`journal`] (steps and flow state),
//! [`credentials`], [`query`] (read-only views), [`stats`] (bucketed
//! activity for the dashboard), [`audit`] (the audit log) and [`codec`]
//! (column conversions and row decoding).

mod audit;
mod batch;
mod codec;
mod credentials;
mod depth;
mod journal;
mod query;
mod queue;
mod secrets;
mod stats;
mod versions;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{
    AuditEntry, AuditFilter, CancelOutcome, Clock, EnqueueOutcome, JournalEntry, NewRun, Run,
    RunFilter, RunId, RunOutcome, Stats, StatsWindow, StatusCount, Store, StoreError, StoreFault,
    SystemClock,
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
}

/// The [`Store`] on a SQLite file. Cloning is cheap and shares the pools.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection: the only path for writes.
    writer: SqlitePool,
    /// Several `query_only` connections for reads.
    reader: SqlitePool,
    /// Journal entries and run endings, committed in groups on `writer`.
    batcher: batch::Batcher,
    /// The file's identity and the writer's health, watched in the
    /// background.
    health: Arc<watch::Health>,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `opts.path` and applies
    /// pending migrations.
    pub async fn open(opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let open_error = |source: sqlx::Error| StoreError::Open {
            path: opts.path.display().to_string(),
            source,
        };

        if let Some(parent) = opts.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        owner_only(&opts.path).map_err(|e| open_error(sqlx::Error::Io(e)))?;

        let base = SqliteConnectOptions::new()
            .filename(&opts.path)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(opts.busy_timeout);

        // WAL is a property of the file, set once by the writer; readers only
        // open what the writer created and migrated.
        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let reader_options = base.pragma("query_only", "ON");

        // A local file cannot go stale like a network socket: pinging before
        // every acquire would only add a round trip to each write. Idle and
        // lifetime limits are off so the writer's prepared statements stay warm.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(writer_options)
            .await
            .map_err(open_error)?;

        MIGRATOR.run(&writer).await?;

        let reader = SqlitePoolOptions::new()
            .max_connections(opts.readers.max(1))
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(reader_options)
            .await
            .map_err(open_error)?;

        let health = watch::start(&opts.path)
            .await
            .map_err(|e| open_error(sqlx::Error::Io(e)))?;
        tracing::debug!(path = %opts.path.display(), readers = opts.readers.max(1), "store opened");
        let batcher = batch::Batcher::start(writer.clone(), opts.clock.clone());
        Ok(SqliteStore {
            writer,
            reader,
            batcher,
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
        settings(&self.writer).await
    }

    /// Closes both pools, waiting for connections in use to be returned. The
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
    Ok(ConnectionSettings {
        journal_mode: journal_mode.to_ascii_lowercase(),
        synchronous,
        foreign_keys: foreign_keys != 0,
        busy_timeout_ms,
        query_only: query_only != 0,
    })
}

/// Replaces the writer connection after a write transaction failed.
///
/// When a commit fails (disk full, I/O error), SQLite has already rolled the
/// transaction back, the driver's own rollback then fails, and the driver
/// keeps counting the connection as inside a transaction: every later
/// `BEGIN` on it would fail, and the store would refuse all writes until a
/// restart. A fresh connection starts clean; the pool opens it on the next
/// write with the same settings.
pub(super) async fn renew_writer(writer: &SqlitePool) {
    match writer.acquire().await {
        Ok(connection) => {
            let _ = connection.close().await;
            tracing::warn!("a write failed; the store's writer connection was replaced");
        }
        Err(e) => tracing::warn!(error = %e, "cannot replace the store's writer connection"),
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn enqueue(&self, runs: &[NewRun]) -> Result<Vec<EnqueueOutcome>, StoreError> {
        let result = queue::enqueue(&self.writer, runs, self.now()).await;
        match &result {
            Ok(_) => self.health.record_write(true),
            Err(StoreError::Query(_)) => {
                self.health.record_write(false);
                renew_writer(&self.writer).await;
            }
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
        queue::claim(&self.writer, owner, limit, lease, self.now()).await
    }

    async fn renew_leases(
        &self,
        owner: &str,
        runs: &[RunId],
        lease: Duration,
    ) -> Result<u64, StoreError> {
        queue::renew_leases(&self.writer, owner, runs, lease, self.now()).await
    }

    async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        queue::release(&self.writer, owner, self.now()).await
    }

    async fn record_step(
        &self,
        owner: &str,
        entry: &JournalEntry,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.batcher.record_step(owner, entry, state).await
    }

    async fn journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        journal::journal(&self.reader, run).await
    }

    async fn finish(
        &self,
        owner: &str,
        run: RunId,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        self.batcher.finish(owner, run, outcome).await
    }

    async fn reschedule(
        &self,
        owner: &str,
        run: RunId,
        at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        queue::reschedule(&self.writer, owner, run, at, error, self.now()).await
    }

    async fn suspend(
        &self,
        owner: &str,
        run: RunId,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        queue::suspend(&self.writer, owner, run, until, self.now()).await
    }

    async fn wake(&self, run: RunId) -> Result<bool, StoreError> {
        queue::wake(&self.writer, run, self.now()).await
    }

    async fn replay(&self, runs: &[RunId], from_start: bool) -> Result<Vec<RunId>, StoreError> {
        let result = queue::replay(&self.writer, runs, from_start, self.now()).await;
        if let Err(StoreError::Query(_)) = &result {
            renew_writer(&self.writer).await;
        }
        result
    }

    async fn purge_finished(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        queue::purge_finished(&self.writer, before, limit).await
    }

    async fn cancel(&self, run: RunId) -> Result<CancelOutcome, StoreError> {
        let result = queue::cancel(&self.writer, run, self.now()).await;
        if let Err(StoreError::Query(_)) = &result {
            renew_writer(&self.writer).await;
        }
        result
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

    async fn stats(&self, window: &StatsWindow) -> Result<Stats, StoreError> {
        stats::stats(&self.reader, window).await
    }

    async fn credential(&self, name: &str) -> Result<Option<String>, StoreError> {
        credentials::credential(&self.reader, name).await
    }

    async fn save_config_version(
        &self,
        version: &str,
        sources: &serde_json::Value,
    ) -> Result<(), StoreError> {
        versions::save(&self.writer, version, sources, self.now()).await
    }

    async fn config_version(&self, version: &str) -> Result<Option<serde_json::Value>, StoreError> {
        versions::load(&self.reader, version).await
    }

    async fn save_credential(&self, name: &str, value: &str) -> Result<(), StoreError> {
        credentials::save_credential(&self.writer, name, value, self.now()).await
    }

    async fn put_sealed_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        secrets::put_sealed_secret(&self.writer, name, sealed, self.now()).await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        secrets::delete_secret(&self.writer, name).await
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

    async fn delete_sealed(&self) -> Result<u64, StoreError> {
        secrets::delete_sealed(&self.writer).await
    }

    async fn count_credentials(&self) -> Result<u64, StoreError> {
        credentials::count_credentials(&self.reader).await
    }

    fn fault(&self) -> Option<StoreFault> {
        self.health.fault()
    }

    async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.batcher.record_audit(entries).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        audit::list_audit(&self.reader, filter).await
    }

    async fn purge_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        audit::purge_audit(&self.writer, before, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
