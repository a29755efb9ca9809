//! [`StoreAt`]: where a project keeps its store, the SQLite file or a
//! PostgreSQL database (`store.postgres`), and opening it. The master key
//! file sits in the SQLite file's folder in either case.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use patchbay_config::{Env, Project, interpolate};
use patchbay_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};

/// Where a project's store is.
#[derive(Clone, Debug)]
pub struct StoreAt {
    /// The SQLite file (used unless `postgres` is set); the master key
    /// file is kept beside it.
    pub path: PathBuf,
    /// The database, when the project keeps its store in PostgreSQL.
    pub postgres: Option<PgOptions>,
}

impl StoreAt {
    /// Where `project` keeps its store, its PostgreSQL URL resolved with
    /// `env`.
    pub fn of(project: &Project, env: &dyn Env) -> anyhow::Result<StoreAt> {
        let postgres = match &project.config.store.postgres {
            None => None,
            Some(config) => {
                let url = interpolate(&config.url, env)
                    .map_err(|e| anyhow::anyhow!("`store.postgres.url`: {e}"))?;
                // What `check` reports at the URL's line; nothing to open.
                let postgres_url = url::Url::parse(&url)
                    .is_ok_and(|parsed| matches!(parsed.scheme(), "postgres" | "postgresql"));
                if !postgres_url {
                    anyhow::bail!("`store.postgres.url` is not a PostgreSQL URL");
                }
                // Also what `check` reports at their lines: a pool that
                // could not be opened would hide the report behind a
                // connection error.
                if config.max_connections == Some(0) {
                    anyhow::bail!("`store.postgres.max_connections` must be at least 1");
                }
                if config
                    .acquire_timeout
                    .is_some_and(|timeout| timeout.0.is_zero())
                {
                    anyhow::bail!("`store.postgres.acquire_timeout` must be longer than 0s");
                }
                let mut options = PgOptions::new(url);
                options.schema = config.schema.clone();
                if let Some(max) = config.max_connections {
                    options.max_connections = max;
                }
                if let Some(timeout) = config.acquire_timeout {
                    options.acquire_timeout = timeout.0;
                }
                Some(options)
            }
        };
        Ok(StoreAt {
            path: project.store_path(),
            postgres,
        })
    }

    /// Whether there may be anything stored yet: a SQLite file that does
    /// not exist holds nothing (and opening it would create it).
    pub fn may_hold_data(&self) -> bool {
        self.postgres.is_some() || self.path.exists()
    }

    /// The store, for messages: the file, or the database without its
    /// password.
    pub fn shown(&self) -> String {
        match &self.postgres {
            None => self.path.display().to_string(),
            Some(options) => shown_url(&options.url),
        }
    }

    /// Opens the store (creating the SQLite file, or the tables, on first
    /// use).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let store: Arc<dyn Store> = match &self.postgres {
            None => Arc::new(
                SqliteStore::open(SqliteOptions::new(&self.path))
                    .await
                    .with_context(|| format!("cannot open the store at {}", self.shown()))?,
            ),
            Some(options) => Arc::new(
                PgStore::open(options.clone())
                    .await
                    .with_context(|| format!("cannot open the store at {}", self.shown()))?,
            ),
        };
        Ok(store)
    }
}

/// `url` without its password.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("****"));
            }
            parsed.to_string()
        }
        Err(_) => "(the configured PostgreSQL database)".to_string(),
    }
}
