//! The engine's error type.

use patchbay_store::StoreError;

/// What can go wrong when starting the engine or handing it an event. A
/// project that cannot be built never gets this far: see [`crate::Build`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed; the request was not served.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The intake batch holding this event could not be committed; the
    /// event was not accepted. Shared by every event of the batch.
    #[error("the event was not committed: {0}")]
    NotCommitted(std::sync::Arc<StoreError>),
    /// No flow by this name.
    #[error("unknown flow `{0}`")]
    UnknownFlow(String),
    /// The engine is stopping and accepts no new events.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A reload found the configuration invalid; the running one stays.
    #[error("the configuration is invalid: {} problem(s)", .0.diagnostics.len())]
    InvalidConfig(patchbay_config::Report),
    /// This node was not started from a source it can load again.
    #[error("this node cannot reload its configuration")]
    ReloadUnsupported,
    /// The threads evaluating costly expressions could not be started.
    #[error("cannot start the expression evaluation threads: {0}")]
    EvaluatorStart(std::io::Error),
}

impl EngineError {
    /// True when the caller may try again later (the event was not accepted
    /// because of a passing condition).
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_transient(),
            EngineError::NotCommitted(_) => true,
            EngineError::ShuttingDown => true,
            EngineError::UnknownFlow(_)
            | EngineError::InvalidConfig(_)
            | EngineError::ReloadUnsupported
            | EngineError::EvaluatorStart(_) => false,
        }
    }
}
