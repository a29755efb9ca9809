//! What an operator does to runs that already exist: cancel them and
//! replay dead letters.
//!
//! Both are single store transactions; the engine adds the selection of dead
//! letters by flow, and tells a `sync` webhook caller still waiting on a run
//! that it was cancelled.

use patchbay_store::{CancelOutcome, RunId, RunStatus};
use tracing::info;

use crate::{Engine, EngineError, SyncReply};

/// Which dead runs [`Engine::replay`] queues again: those named in `runs`
/// (or every one when `None`), of the flow `flow` (or of any flow), whose
/// error contains `error` (ASCII letters compared without regard to case;
/// any error when `None`). Runs that are not dead are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaySelection {
    pub runs: Option<Vec<RunId>>,
    pub flow: Option<String>,
    pub error: Option<String>,
}

impl Engine {
    /// Cancels a queued or running run. A running run stops at its next
    /// step boundary: its worker's next journal write is refused.
    pub async fn cancel(&self, run: RunId) -> Result<CancelOutcome, EngineError> {
        let outcome = self.store().cancel(run).await?;
        if let CancelOutcome::Cancelled(_) = &outcome {
            info!(run_id = %run, "run cancelled");
            self.inner.responders.deliver(
                run,
                SyncReply::Ended {
                    status: RunStatus::Cancelled,
                    error: None,
                },
            );
        }
        Ok(outcome)
    }

    /// Queues a dead run again from the start with `input` as its event, in
    /// place of the one it had (a corrected payload); that one stays on
    /// record ([`patchbay_store::Store::input_edits`]). Every step runs
    /// again, since the recorded results came from the old input; calls
    /// keep their idempotency keys. Returns whether the run was dead.
    pub async fn replay_with_input(
        &self,
        run: RunId,
        input: &serde_json::Value,
    ) -> Result<bool, EngineError> {
        let replayed = self.store().replay_with_input(run, input).await?;
        if replayed {
            info!(run_id = %run, "dead run replayed with an edited input");
        }
        Ok(replayed)
    }

    /// Queues dead runs again, due now; returns those replayed. A replay
    /// resumes at the failed step; `from_start` runs every step again.
    pub async fn replay(
        &self,
        which: ReplaySelection,
        from_start: bool,
    ) -> Result<Vec<RunId>, EngineError> {
        let ReplaySelection { runs, flow, error } = which;
        if let Some(runs) = runs {
            let runs = if flow.is_none() && error.is_none() {
                runs
            } else {
                let mut chosen = Vec::with_capacity(runs.len());
                for id in runs {
                    if self.store().run(id).await?.is_some_and(|run| {
                        flow.as_ref().is_none_or(|f| run.flow == *f)
                            && error.as_ref().is_none_or(|e| {
                                run.error.as_deref().is_some_and(|text| {
                                    text.to_ascii_lowercase().contains(&e.to_ascii_lowercase())
                                })
                            })
                    }) {
                        chosen.push(id);
                    }
                }
                chosen
            };
            let replayed = self.store().replay(&runs, from_start).await?;
            if !replayed.is_empty() {
                info!(runs = replayed.len(), from_start, "dead runs replayed");
            }
            return Ok(replayed);
        }
        let replayed = patchbay_store::replay_dead_with(
            self.store().as_ref(),
            flow.as_deref(),
            error.as_deref(),
            from_start,
            &mut |_| {},
        )
        .await?
        .replayed;
        if !replayed.is_empty() {
            info!(
                runs = replayed.len(),
                flow = flow.as_deref().unwrap_or("*"),
                from_start,
                "dead runs replayed"
            );
        }
        Ok(replayed)
    }
}
