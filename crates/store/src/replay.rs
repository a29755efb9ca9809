//! [`replay_dead`]: queue every dead run (of one flow) again, a batch at a
//! time, for the engine and for the CLI working on a store file directly.
//!
//! Each batch is one [`Store::replay`] transaction, so a large dead-letter
//! queue does not hold the writer for long. Batches page by run id, newest
//! first, after the last run of the previous batch: the runs just replayed
//! are no longer dead, and paging by id also steps past a run that a
//! concurrent replay took.

use crate::{RunFilter, RunId, RunStatus, Store, StoreError};

/// Dead runs replayed per store transaction.
pub const REPLAY_BATCH: u32 = 500;

/// What [`replay_dead`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadReplayed {
    /// How many dead runs it found.
    pub found: usize,
    /// Those it queued again: all it found, unless another replay took some
    /// of them first.
    pub replayed: Vec<RunId>,
}

/// Queues every dead run of `flow` (or of any flow) again, due now, with
/// its retries reset. A replay resumes at the failed step; `from_start`
/// runs every step again.
pub async fn replay_dead(
    store: &dyn Store,
    flow: Option<&str>,
    from_start: bool,
) -> Result<DeadReplayed, StoreError> {
    replay_dead_with(store, flow, None, from_start, &mut |_| {}).await
}

/// [`replay_dead`] of the dead runs whose error contains `error` (ASCII
/// letters compared without regard to case, as [`RunFilter`] does) when
/// given, calling `batch_done` with the number of runs of each batch once
/// it is replayed (for a progress bar).
pub async fn replay_dead_with(
    store: &dyn Store,
    flow: Option<&str>,
    error: Option<&str>,
    from_start: bool,
    batch_done: &mut (dyn FnMut(usize) + Send),
) -> Result<DeadReplayed, StoreError> {
    let mut done = DeadReplayed::default();
    let mut before = None;
    loop {
        let dead = store
            .list_runs(&RunFilter {
                flow: flow.map(str::to_owned),
                status: Some(RunStatus::Dead),
                error_contains: error.map(str::to_owned),
                before,
                limit: REPLAY_BATCH,
                ..RunFilter::default()
            })
            .await?;
        let Some(last) = dead.last() else { break };
        before = Some(last.id);
        let ids: Vec<RunId> = dead.iter().map(|run| run.id).collect();
        done.found += ids.len();
        done.replayed.extend(store.replay(&ids, from_start).await?);
        batch_done(ids.len());
        if dead.len() < REPLAY_BATCH as usize {
            break;
        }
    }
    Ok(done)
}
