//! The drift log: where calls report replies that differ from their
//! connector's contract, and how those reports reach the store.
//!
//! A drifting upstream usually drifts on every reply, so a write per reply
//! would put the store's single writer behind every call of a busy flow.
//! Reports are counted in memory by kind (connector, operation, response,
//! pointer, expectation; see [`patchbay_store::DriftKind`]) and written in
//! one batch per [`FLUSH_INTERVAL`] by a task of their own, and once more
//! when the node stops. The metric counts every report at once; the log
//! line is written when the store says a kind is new, so each kind is
//! logged once, whichever node saw it first. Kinds waiting are bounded
//! ([`MAX_PENDING_KINDS`]): beyond that new kinds are counted in the metric
//! only, so a reply with a thousand faults cannot grow memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_store::{DriftKind, DriftObservation, Store};
use tokio_util::sync::CancellationToken;

use crate::events::{ContractDriftSeen, DriftWriteFailed, NewContractDrift};

/// How often waiting reports are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Kinds kept waiting between two writes, at most.
const MAX_PENDING_KINDS: usize = 1024;

/// Where calls report drift. Cheap to clone.
#[derive(Clone, Default)]
pub struct DriftLog {
    /// Reports waiting to be written, by kind. A std mutex: held only to
    /// add a report or take the batch, never across an await.
    pending: Arc<Mutex<HashMap<DriftKind, DriftObservation>>>,
}

impl DriftLog {
    /// Counts one reply showing `kind`, where it held `seen` (an example of
    /// which, already redacted, is `example`).
    pub fn report(&self, kind: DriftKind, seen: String, example: String, at: DateTime<Utc>) {
        ContractDriftSeen { kind: &kind }.emit();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let full = pending.len() >= MAX_PENDING_KINDS;
        match pending.get_mut(&kind) {
            Some(waiting) => {
                waiting.count += 1;
                waiting.last_seen = waiting.last_seen.max(at);
                waiting.seen = seen;
            }
            None if full => {}
            None => {
                pending.insert(
                    kind.clone(),
                    DriftObservation {
                        kind,
                        seen,
                        first_seen: at,
                        last_seen: at,
                        count: 1,
                        example,
                    },
                );
            }
        }
    }

    /// Writes every waiting report; logs the kinds the store had never
    /// seen. Reports that cannot be written are put back for the next try.
    pub async fn flush(&self, store: &dyn Store, alerts: &crate::alerts::AlertSender) {
        let batch: Vec<DriftObservation> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .drain()
                .map(|(_, observation)| observation)
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        match store.record_drift(&batch).await {
            Ok(new) => {
                for (observation, is_new) in batch.iter().zip(new) {
                    if is_new {
                        NewContractDrift { drift: observation }.emit();
                        let kind = &observation.kind;
                        alerts.raise(crate::alerts::AlertEvent::Drift {
                            connector: kind.connector.clone(),
                            operation: kind.operation.clone(),
                            response: kind.response.clone(),
                            pointer: kind.pointer.clone(),
                            expected: kind.expected.clone(),
                            seen: observation.seen.clone(),
                        });
                    }
                }
            }
            Err(error) => {
                DriftWriteFailed {
                    error: &error,
                    kinds: batch.len(),
                }
                .emit();
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for observation in batch {
                    if pending.len() >= MAX_PENDING_KINDS {
                        break;
                    }
                    pending
                        .entry(observation.kind.clone())
                        .and_modify(|newer| {
                            newer.count += observation.count;
                            newer.first_seen = newer.first_seen.min(observation.first_seen);
                            newer.example = observation.example.clone();
                        })
                        .or_insert(observation);
                }
            }
        }
    }

    /// Writes reports every [`FLUSH_INTERVAL`] until `shutdown`, then once
    /// more. A kind of drift recorded for the first time is an alert event
    /// (for flows triggered by `event: {on: [drift]}`).
    pub async fn write_until(
        self,
        store: Arc<dyn Store>,
        alerts: crate::alerts::AlertSender,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(store.as_ref(), &alerts).await,
                () = shutdown.cancelled() => break,
            }
        }
        self.flush(store.as_ref(), &alerts).await;
    }
}
