//! Retention: deletes finished runs once they are older than
//! `store.retention`, and audit entries once they are older than
//! `store.audit_retention`, so the store's size, and the cost of its
//! indexes, follow the traffic of the retention window rather than all
//! history. Only the node holding the leader lease purges
//! ([`crate::cluster`]): on a store several nodes share, one node's deletes
//! are enough.

use std::sync::Arc;
use std::time::Duration;

use patchbay_store::{Clock, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Rows deleted per statement: small enough that intake never waits long
/// behind a purge on the single writer.
const BATCH: u32 = 500;

pub(crate) struct Janitor {
    pub store: Arc<dyn Store>,
    /// Only the leader purges: one node's deletes are enough, and several
    /// nodes' would only contend for the same rows.
    pub membership: crate::Membership,
    /// How long finished runs are kept; zero keeps them forever.
    pub retention: Duration,
    /// How long audit entries are kept; zero keeps them forever.
    pub audit_retention: Duration,
    pub shutdown: CancellationToken,
    /// Ages are measured on the clock that stamped the rows.
    pub clock: Arc<dyn Clock>,
}

/// What one purge deletes.
#[derive(Clone, Copy)]
enum Kind {
    Runs,
    AuditEntries,
}

impl Janitor {
    /// How often to look for expired rows: a tenth of the shortest
    /// retention, so rows outlive it by at most 10 %, between 1 s and
    /// 10 min.
    fn interval(&self) -> Duration {
        let shortest = [self.retention, self.audit_retention]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
            .unwrap_or(Duration::from_secs(6000));
        (shortest / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }

    pub async fn run(self) {
        let interval = self.interval();
        loop {
            if !self.membership.until_leader(&self.shutdown).await {
                return;
            }
            self.purge(Kind::Runs, self.retention).await;
            self.purge(Kind::AuditEntries, self.audit_retention).await;
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn purge_batch(
        &self,
        kind: Kind,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        match kind {
            Kind::Runs => self.store.purge_finished(cutoff, BATCH).await,
            Kind::AuditEntries => self.store.purge_audit(cutoff, BATCH).await,
        }
    }

    async fn purge(&self, kind: Kind, retention: Duration) {
        if retention.is_zero() {
            return;
        }
        let Ok(age) = chrono::Duration::from_std(retention) else {
            return;
        };
        let cutoff = self.clock.now() - age;
        let mut purged = 0;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            match self.purge_batch(kind, cutoff).await {
                Ok(count) => {
                    purged += count;
                    if count < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    match kind {
                        Kind::Runs => {
                            warn!(error = %e, "cannot delete expired runs; will try again")
                        }
                        Kind::AuditEntries => {
                            warn!(error = %e, "cannot delete expired audit entries; will try again")
                        }
                    }
                    break;
                }
            }
        }
        if purged > 0 {
            match kind {
                Kind::Runs => info!(purged, retention = ?retention, "expired runs deleted"),
                Kind::AuditEntries => {
                    info!(purged, retention = ?retention, "expired audit entries deleted")
                }
            }
        }
    }
}
