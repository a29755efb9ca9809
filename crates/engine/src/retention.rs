//! Retention: deletes finished runs once they are older than
//! `store.retention`, so the store's size, and the cost of its indexes,
//! follow the traffic of the retention window rather than all history.

use std::sync::Arc;
use std::time::Duration;

use patchbay_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Runs deleted per statement: small enough that intake never waits long
/// behind a purge on the single writer.
const BATCH: u32 = 500;

pub(crate) struct Janitor {
    pub store: Arc<dyn Store>,
    pub retention: Duration,
    pub shutdown: CancellationToken,
}

impl Janitor {
    /// How often to look for expired runs: a tenth of the retention, so
    /// runs outlive it by at most 10 %, between 1 s and 10 min.
    fn interval(&self) -> Duration {
        (self.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }

    pub async fn run(self) {
        let interval = self.interval();
        loop {
            self.purge().await;
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn purge(&self) {
        let Ok(retention) = chrono::Duration::from_std(self.retention) else {
            return;
        };
        let cutoff = chrono::Utc::now() - retention;
        let mut purged = 0;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            match self.store.purge_finished(cutoff, BATCH).await {
                Ok(count) => {
                    purged += count;
                    if count < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot delete expired runs; will try again");
                    break;
                }
            }
        }
        if purged > 0 {
            info!(purged, retention = ?self.retention, "expired runs deleted");
        }
    }
}
