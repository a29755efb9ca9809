//! Intake: turns accepted events into committed runs, with group commit.
//!
//! Every trigger hands its event to [`Intake::submit`], which resolves only
//! once the run is durable. Submissions go through a bounded channel to one
//! committer task; while it commits a batch, newer submissions queue up and
//! become the next batch. So under load each fsync covers many events, and at
//! low load a lone event is committed at once: no timer adds latency. The
//! bounded channel turns overload into backpressure on the callers.

use std::sync::Arc;
use std::time::Instant;

use patchbay_store::{EnqueueOutcome, NewRun, Store, StoreError, StoreFault};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::EngineError;
use crate::events::{IntakeBatchCommitted, IntakeBatchFailed};

struct Pending {
    run: NewRun,
    /// The outcome, and the run given back so that one committed with a
    /// lease can be executed without a copy having been kept.
    reply: oneshot::Sender<Result<(EnqueueOutcome, NewRun), Arc<StoreError>>>,
}

/// Handle to the committer task. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    sender: mpsc::Sender<Pending>,
    /// Asked before each event: a store whose file is gone cannot keep it.
    store: Arc<dyn Store>,
}

impl Intake {
    /// Starts the committer. `committed` is notified after every batch that
    /// queued a run, so idle workers claim the new runs at once (a run
    /// committed with a lease is already some worker's).
    pub fn start(store: Arc<dyn Store>, max_batch: usize, committed: Arc<Notify>) -> Intake {
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        tokio::spawn(commit_loop(store.clone(), receiver, max_batch, committed));
        Intake { sender, store }
    }

    /// Commits one run; returns once it is durable (or was a duplicate).
    pub async fn submit(&self, run: NewRun) -> Result<EnqueueOutcome, EngineError> {
        self.commit(run).await.map(|(outcome, _)| outcome)
    }

    /// [`Intake::submit`], giving the run back with the outcome.
    pub(crate) async fn commit(
        &self,
        run: NewRun,
    ) -> Result<(EnqueueOutcome, NewRun), EngineError> {
        // One atomic load; acknowledging into a deleted file would be a lie.
        if let Some(fault) = self.store.fault().filter(StoreFault::refuses_events) {
            return Err(EngineError::Store(StoreError::Unavailable(fault)));
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { run, reply })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(EngineError::NotCommitted(e)),
            Err(_) => Err(EngineError::ShuttingDown),
        }
    }
}

async fn commit_loop(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Pending>,
    max_batch: usize,
    committed: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    // Ends when every `Intake` handle is dropped and the queue is drained.
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        // Moved apart rather than cloned: event bodies can be large and this
        // is the intake hot path.
        let (runs, replies): (Vec<NewRun>, Vec<_>) =
            batch.drain(..).map(|p| (p.run, p.reply)).unzip();
        let started = Instant::now();
        match store.enqueue(&runs).await {
            Ok(outcomes) => {
                let duration = started.elapsed();
                let mut created = Vec::with_capacity(runs.len());
                let mut duplicates = Vec::new();
                for (run, outcome) in runs.iter().zip(&outcomes) {
                    match outcome {
                        EnqueueOutcome::Created(_) => {
                            created.push((run.flow.as_str(), run.trigger.as_str()))
                        }
                        EnqueueOutcome::Duplicate(_) => duplicates.push(run.flow.as_str()),
                    }
                }
                IntakeBatchCommitted {
                    created: &created,
                    duplicates: &duplicates,
                    runs: runs.len(),
                    duration,
                }
                .emit();
                let queued = runs.iter().zip(&outcomes).any(|(run, outcome)| {
                    run.lease.is_none() && matches!(outcome, EnqueueOutcome::Created(_))
                });
                for ((reply, outcome), run) in replies.into_iter().zip(outcomes).zip(runs) {
                    let _ = reply.send(Ok((outcome, run)));
                }
                if queued {
                    committed.notify_one();
                }
            }
            Err(e) => {
                IntakeBatchFailed {
                    error: &e,
                    runs: runs.len(),
                }
                .emit();
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
