//! `max_in_flight`: how many of a connector's calls may be on the wire at
//! once. An attempt takes a slot after its rate-limit slot and holds it
//! until its outcome is in; beyond the limit it waits for a call to end.
//!
//! On one node the slots are a `tokio` semaphore, so attempts wait in
//! arrival order. With [`SharedSlots`] attached (nodes sharing a store) the
//! limit is the cluster's: an attempt holding one of its node's permits
//! also takes a slot in the store, and while every slot is held elsewhere
//! it asks again after a short pause (5 ms, doubling up to 50 ms, jittered)
//! rather than listening for releases: a freed slot is seen a little late,
//! never twice. A slot is held at most the connector's timeout plus
//! [`HOLD_MARGIN`], so a node that dies mid-call gives its slots back by
//! itself. Should the store be unreachable, the node keeps to its own
//! permits, warning once, as the shared rate limit does: calls go on at no
//! more than the limit per node rather than stopping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{SharedSlots, SlotTicket};

/// How much longer than the connector's timeout a shared slot is held: the
/// attempt's outcome is in by then unless its node stopped.
pub(crate) const HOLD_MARGIN: Duration = Duration::from_secs(10);
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// A connector's `max_in_flight` slots.
pub(crate) struct InFlight {
    connector: String,
    limit: u32,
    local: Semaphore,
    hold: Duration,
    shared: OnceLock<Arc<dyn SharedSlots>>,
    /// Whether the shared slots' failure was reported already.
    shared_failed: AtomicBool,
}

/// The slot an attempt holds while on the wire; dropping it gives it back.
pub(crate) struct InFlightSlot<'a> {
    _local: Option<SemaphorePermit<'a>>,
    shared: Option<(Arc<dyn SharedSlots>, SlotTicket)>,
}

impl Drop for InFlightSlot<'_> {
    fn drop(&mut self) {
        let Some((shared, ticket)) = self.shared.take() else {
            return;
        };
        // Dropped where nothing can be awaited: the release goes on a task.
        // Without a runtime (the node is shutting down) the hold runs out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = shared.release(&ticket).await {
                    tracing::debug!(
                        connector = %ticket.name,
                        error = %e,
                        "cannot give a shared call slot back; it comes back when its hold ends"
                    );
                }
            });
        }
    }
}

impl InFlight {
    /// `None` without a limit.
    pub(crate) fn build(connector: &str, limit: Option<u32>, timeout: Duration) -> Option<Self> {
        let limit = limit?.max(1);
        Some(InFlight {
            connector: connector.to_string(),
            limit,
            local: Semaphore::new(limit as usize),
            hold: timeout.saturating_add(HOLD_MARGIN),
            shared: OnceLock::new(),
            shared_failed: AtomicBool::new(false),
        })
    }

    /// Takes the slots from `slots`, shared with the other nodes, from now
    /// on.
    pub(crate) fn share(&self, slots: Arc<dyn SharedSlots>) {
        let _ = self.shared.set(slots);
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(&self) -> InFlightSlot<'_> {
        // Never closed, so acquiring only ever waits.
        let local = self.local.acquire().await.ok();
        let shared = match self.shared.get() {
            Some(shared) => self.take_shared(shared).await,
            None => None,
        };
        InFlightSlot {
            _local: local,
            shared,
        }
    }

    async fn take_shared(
        &self,
        shared: &Arc<dyn SharedSlots>,
    ) -> Option<(Arc<dyn SharedSlots>, SlotTicket)> {
        let mut pause = FIRST_PAUSE;
        loop {
            match shared.take(&self.connector, self.limit, self.hold).await {
                Ok(taken) => {
                    if self.shared_failed.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            connector = %self.connector,
                            "the cluster's max_in_flight slots are read again"
                        );
                    }
                    if let Some(ticket) = taken {
                        return Some((Arc::clone(shared), ticket));
                    }
                    tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64())).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(e) => {
                    if !self.shared_failed.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            connector = %self.connector,
                            error = %e,
                            "the cluster's max_in_flight slots cannot be read; this node keeps \
                             to its own until they can"
                        );
                    }
                    return None;
                }
            }
        }
    }
}
