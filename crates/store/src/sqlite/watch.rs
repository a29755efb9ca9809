//! Watches the database file's identity and the writer's health (see
//! [`crate::health`]).
//!
//! The identity is the file's device and inode, taken when the store opens
//! and compared every [`CHECK_INTERVAL`] by a background task: a deleted
//! folder, a file moved away or swapped for another all change or lose it.
//! The task holds only a weak reference, so it ends with the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::StoreFault;

/// How often the file's identity is checked.
pub(super) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

const HEALTHY: u8 = 0;
const WRITE_FAILED: u8 = 1;
const REPLACED: u8 = 2;

/// The store's health, shared by every clone of it.
#[derive(Debug)]
pub(super) struct Health {
    state: AtomicU8,
    path: PathBuf,
}

impl Health {
    pub(super) fn fault(&self) -> Option<StoreFault> {
        match self.state.load(Ordering::Relaxed) {
            HEALTHY => None,
            WRITE_FAILED => Some(StoreFault::WriteFailed),
            _ => Some(StoreFault::Replaced {
                path: self.path.display().to_string(),
            }),
        }
    }

    pub(super) fn is_replaced(&self) -> bool {
        self.state.load(Ordering::Relaxed) == REPLACED
    }

    /// Records a commit's result; logs the first failure after a success.
    pub(super) fn record_write(&self, ok: bool) {
        let (from, to) = if ok {
            (WRITE_FAILED, HEALTHY)
        } else {
            (HEALTHY, WRITE_FAILED)
        };
        // Only between these two: a replaced file stays replaced.
        if self
            .state
            .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if ok {
                tracing::info!(path = %self.path.display(), "store writes succeed again");
            } else {
                tracing::error!(path = %self.path.display(), "a write to the store failed; /healthz reports it until a write succeeds");
            }
        }
    }

    fn replaced(&self, reason: &str) {
        if self.state.swap(REPLACED, Ordering::Relaxed) != REPLACED {
            tracing::error!(
                path = %self.path.display(),
                reason,
                "the store's database file was removed or replaced; refusing new events until restarted"
            );
        }
    }
}

/// A file's identity: device and inode (existence only off Unix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity(u64, u64);

async fn identity(path: &Path) -> std::io::Result<Identity> {
    let metadata = tokio::fs::metadata(path).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Identity(metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        Ok(Identity(0, 0))
    }
}

/// Takes the identity of the file at `path` and starts watching it.
pub(super) async fn start(path: &Path) -> std::io::Result<Arc<Health>> {
    let original = identity(path).await?;
    let health = Arc::new(Health {
        state: AtomicU8::new(HEALTHY),
        path: path.to_path_buf(),
    });
    tokio::spawn(watch(path.to_path_buf(), original, Arc::downgrade(&health)));
    Ok(health)
}

async fn watch(path: PathBuf, original: Identity, health: Weak<Health>) {
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let found = identity(&path).await;
        let Some(health) = health.upgrade() else {
            return;
        };
        match found {
            Ok(identity) if identity == original => {}
            Ok(_) => return health.replaced("another file has its name"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return health.replaced("the file is gone");
            }
            Err(e) => return health.replaced(&e.to_string()),
        }
    }
}
