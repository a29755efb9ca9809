//! The queue sampler: reads the queue's depth every few seconds for the
//! `patchbay_queue_*` gauges.
//!
//! A periodic query rather than counters kept by intake and workers: the
//! queue is shared by every node on one store, and only the store knows its
//! whole depth (runs of other nodes, expired leases, rescheduled runs coming
//! due). The query is cheap (index ranges on the reader pool).

use std::sync::Arc;
use std::time::Duration;

use patchbay_store::{Clock, Store};
use tokio_util::sync::CancellationToken;

use crate::events::{QueueSampleFailed, QueueSampled};

/// How often the queue is sampled.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) struct QueueSampler {
    pub store: Arc<dyn Store>,
    pub interval: Duration,
    pub shutdown: CancellationToken,
    /// How long the oldest ready run has waited is measured on the clock
    /// that made it due.
    pub clock: Arc<dyn Clock>,
}

impl QueueSampler {
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            match self.store.queue_depth().await {
                Ok(depth) => QueueSampled {
                    depth,
                    now: self.clock.now(),
                }
                .emit(),
                Err(e) => QueueSampleFailed { error: &e }.emit(),
            }
        }
    }
}
