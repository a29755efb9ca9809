//! Waiting callers of `sync` webhooks, keyed by run id.
//!
//! A `sync` webhook registers here before its run is committed; the executor
//! hands the `respond` step's result (or the run's failure) to it. Only the
//! node that received the request can answer it: a run resumed elsewhere after
//! a crash simply finds no one waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use patchbay_store::{RunId, RunStatus};
use serde_json::Value;
use tokio::sync::oneshot;

/// What a waiting `sync` webhook gets.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncReply {
    /// The `respond` step's answer.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// The run ended without responding (skipped by a filter, or failed).
    Ended {
        status: RunStatus,
        error: Option<String>,
    },
}

#[derive(Clone, Default)]
pub(crate) struct Responders {
    // A std mutex: held only to insert or remove, never across an await.
    waiting: Arc<Mutex<HashMap<RunId, oneshot::Sender<SyncReply>>>>,
}

impl Responders {
    pub fn register(&self, run: RunId) -> oneshot::Receiver<SyncReply> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(run, sender);
        receiver
    }

    pub fn forget(&self, run: RunId) {
        self.lock().remove(&run);
    }

    /// Delivers to the waiter, if any; later replies for the same run are
    /// dropped, so the first (the `respond` step) wins.
    pub fn deliver(&self, run: RunId, reply: SyncReply) {
        if let Some(sender) = self.lock().remove(&run) {
            let _ = sender.send(reply);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, oneshot::Sender<SyncReply>>> {
        // A poisoned map only means a panic elsewhere mid-insert; the map
        // itself is still consistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
