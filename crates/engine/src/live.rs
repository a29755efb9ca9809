//! The configuration a node runs, and reloading it without stopping.
//!
//! A reload loads the project again (from wherever it came from: a folder, or
//! the demo's embedded files) into a [`Build`] (validated, compiled, its
//! connectors built), and only then swaps it in. Anything that fails leaves the
//! running configuration untouched and reports every problem, as `check`
//! would.
//!
//! Work in progress is not disturbed: each run takes the executor (plan and
//! connectors) current when it is claimed and keeps it to its end, so a run
//! never sees half of one configuration and half of another. New events and
//! newly claimed runs use the new one. A run of a flow that the new
//! configuration removed fails when it is next claimed, with a message that
//! says so. Schedules are restarted on the new plan; their firings carry
//! dedupe keys, so a restart never fires one twice.
//!
//! Connectors are rebuilt on every effective reload, which resets their
//! breakers, rate-limit budgets and recent statistics. A reload that changes
//! nothing (same files, same secrets) is a no-op.

use std::sync::Arc;

use patchbay_config::Report;
use patchbay_connector::Connectors;

use crate::build::Build;
use crate::plan::Plan;

/// A project freshly loaded and built for a reload.
pub struct LoadedProject {
    pub build: Build,
    /// Changes when a secret the project may use changes, so a reload that
    /// only rotates a secret still rebuilds the connectors.
    pub secrets_digest: String,
}

/// Where a node's configuration comes from, to load it again on demand.
#[async_trait::async_trait]
pub trait ProjectSource: Send + Sync + 'static {
    /// Loads and builds the project, as `check` does.
    async fn load(&self) -> Result<LoadedProject, Report>;
}

/// What a reload did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    /// The configuration version now running.
    pub version: String,
    /// The version that ran before.
    pub previous: String,
    /// False when the files and secrets were the same: nothing was swapped.
    pub changed: bool,
}

/// One configuration: the compiled plan and the connectors built from it.
pub(crate) struct Live {
    pub plan: Arc<Plan>,
    pub connectors: Connectors,
    pub secrets_digest: String,
    /// When it was loaded.
    pub loaded_at: chrono::DateTime<chrono::Utc>,
}
