//! The store's error type.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A migration failed.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A read failed (I/O, corrupt file, ...).
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A write failed (I/O, disk full, busy file, constraint, ...).
    #[error("store write failed: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The run is no longer held by this worker (its lease expired and
    /// another worker claimed it, or it finished).
    #[error("run {run} is no longer leased to this worker")]
    LeaseLost { run: uuid::Uuid },
    /// The run has recorded as many journal entries as a run may hold.
    #[error("run {run} has recorded {entries} journal entries, as many as a run may hold")]
    JournalFull { run: uuid::Uuid, entries: u64 },
    /// A run can only be finished with a final status (`succeeded`, `failed`
    /// or `skipped`).
    #[error("run {run} cannot finish as {status}: not a final status")]
    NotFinal {
        run: uuid::Uuid,
        status: crate::RunStatus,
    },
    /// Stored data could not be decoded (a corrupted row).
    #[error("corrupt store data in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The master key for secrets is missing or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A stored secret could not be sealed or opened.
    #[error("secret `{name}` cannot be opened: {reason}")]
    Sealed { name: String, reason: &'static str },
    /// A secret's name or value is not acceptable.
    #[error("{0}")]
    InvalidSecret(String),
    /// The store's write task has stopped (the store is shutting down).
    #[error("the store is closed")]
    Closed,
    /// The store cannot be trusted with new work (see [`crate::StoreFault`]).
    #[error("the store is unavailable: {0}")]
    Unavailable(crate::StoreFault),
}

impl StoreError {
    /// True when trying again later may succeed (busy database, I/O hiccup).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query(e) => matches!(
                e,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Database(_)
            ),
            StoreError::Sql(e) => matches!(e, rusqlite::Error::SqliteFailure(..)),
            // Another node, or this one restarted on a store in place, may
            // take the event.
            StoreError::Unavailable(_) => true,
            StoreError::Open { .. }
            | StoreError::Migrate(_)
            | StoreError::LeaseLost { .. }
            | StoreError::JournalFull { .. }
            | StoreError::NotFinal { .. }
            | StoreError::Corrupt { .. }
            | StoreError::MasterKey(_)
            | StoreError::Sealed { .. }
            | StoreError::InvalidSecret(_)
            | StoreError::Closed => false,
        }
    }
}
