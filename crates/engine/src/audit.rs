//! The audit log's writer: how the management API's audit entries reach
//! the store, and what happens when they cannot.
//!
//! Two kinds of entry, two guarantees:
//! - an **action** (a request that may change the node: any method but
//!   `GET` and `HEAD`, from a caller whose token allows it) is recorded
//!   ahead of the action and again with the status answered, each time
//!   waiting for the commit ([`AuditLog::record`]). If the entry ahead
//!   cannot be written, the action is refused, so no accepted action is
//!   ever missing from the log; if the node stops between action and
//!   answer, its entry stays without a status. Both writes go through the
//!   store's group commit, so under load they share a commit with the
//!   journal writes instead of each taking the single writer for a
//!   transaction of its own. Management actions are rare next to webhooks,
//!   which are not audited: the request path of events is untouched.
//! - a **refusal** (a request refused for its token: none, unknown, or a
//!   scope too low) changed nothing, and anyone can send them by the
//!   thousand. They are queued ([`AuditLog::record_refusal`]) and written
//!   in batches by a task of their own, off the request's path; when the
//!   queue is full they are dropped and counted
//!   (`patchbay_audit_entries_dropped_total`, and a warning with the
//!   count), so a flood of bad tokens can neither slow the node nor fill
//!   its disk faster than the batches commit. Refusals still queued when
//!   the node stops are written before the writer ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use patchbay_store::{AuditEntry, Clock, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{AuditEntriesDropped, AuditWriteFailed};

/// Refusals waiting to be written; beyond this they are dropped.
const REFUSAL_QUEUE: usize = 4096;

/// Most refusals written in one transaction.
const REFUSAL_BATCH: usize = 256;

/// Where the server records audit entries. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    refusals: mpsc::Sender<AuditEntry>,
    /// Refusals dropped since the writer last reported.
    dropped: Arc<AtomicU64>,
    /// Stamps entries: the engine's clock, so the audit log's times and
    /// its retention agree with the rest of the store.
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// The log, and the task that writes refusals until `shutdown`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> (AuditLog, impl Future<Output = ()> + Send + 'static) {
        let (refusals, receiver) = mpsc::channel(REFUSAL_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = write_refusals(store.clone(), receiver, dropped.clone(), shutdown);
        (
            AuditLog {
                store,
                refusals,
                dropped,
                clock,
            },
            writer,
        )
    }

    /// The time to stamp an entry with, on the engine's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Records an action's entry, durably, before returning: ahead of the
    /// action (no status) and once answered (the same id, with its status).
    pub async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let result = self.store.record_audit(std::slice::from_ref(entry)).await;
        if let Err(e) = &result {
            AuditWriteFailed {
                error: e,
                entries: 1,
            }
            .emit();
        }
        result
    }

    /// Queues the entry of a request refused for its token; it is dropped
    /// (and counted) when the queue is full.
    pub fn record_refusal(&self, entry: AuditEntry) {
        if self.refusals.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_refusals(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<AuditEntry>,
    dropped: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(REFUSAL_BATCH);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, REFUSAL_BATCH) => received,
            () = shutdown.cancelled() => {
                // What is already queued is still written.
                while let Ok(entry) = receiver.try_recv() {
                    batch.push(entry);
                }
                write(&*store, &mut batch).await;
                report_dropped(&dropped);
                return;
            }
        };
        if received == 0 {
            return;
        }
        write(&*store, &mut batch).await;
        report_dropped(&dropped);
    }
}

async fn write(store: &dyn Store, batch: &mut Vec<AuditEntry>) {
    for chunk in batch.chunks(REFUSAL_BATCH) {
        if let Err(e) = store.record_audit(chunk).await {
            AuditWriteFailed {
                error: &e,
                entries: chunk.len(),
            }
            .emit();
        }
    }
    batch.clear();
}

fn report_dropped(dropped: &AtomicU64) {
    let count = dropped.swap(0, Ordering::Relaxed);
    if count > 0 {
        AuditEntriesDropped { count }.emit();
    }
}

#[cfg(test)]
mod tests {
    use patchbay_store::{ANONYMOUS, AuditFilter, AuditId};

    use super::*;

    fn refusal() -> AuditEntry {
        AuditEntry {
            id: AuditId::now_v7(),
            at: chrono::Utc::now(),
            actor: ANONYMOUS.into(),
            method: "GET".into(),
            route: "/api/v1/runs".into(),
            target: None,
            status: Some(401),
            peer: None,
        }
    }

    #[tokio::test]
    async fn a_flood_of_refusals_is_shed_beyond_the_queue_and_the_rest_written() {
        let kept = crate::test_support::TestStore::open().await;
        let store = Arc::clone(&kept.store);
        let shutdown = CancellationToken::new();
        let (log, writer) = AuditLog::start(
            store.clone(),
            shutdown.clone(),
            Arc::new(patchbay_store::SystemClock),
        );
        // The writer is not running yet: the queue fills, then sheds.
        let sent = REFUSAL_QUEUE + 100;
        for _ in 0..sent {
            log.record_refusal(refusal());
        }
        assert_eq!(log.dropped.load(Ordering::Relaxed), 100);
        shutdown.cancel();
        writer.await;
        assert_eq!(log.dropped.load(Ordering::Relaxed), 0, "reported");
        let mut stored = 0;
        let mut before = None;
        loop {
            let page = store
                .list_audit(&AuditFilter {
                    before,
                    limit: 1000,
                })
                .await
                .unwrap();
            stored += page.len();
            match page.last() {
                Some(last) => before = Some(last.id),
                None => break,
            }
        }
        assert_eq!(
            stored, REFUSAL_QUEUE,
            "queued refusals are written on shutdown"
        );
    }
}
