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
    /// No flow by this name; `closest` is the flow it most likely meant.
    #[error("unknown flow `{flow}`{}", closest_suffix(.closest))]
    UnknownFlow {
        flow: String,
        closest: Option<String>,
    },
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
            EngineError::UnknownFlow { .. }
            | EngineError::InvalidConfig(_)
            | EngineError::ReloadUnsupported
            | EngineError::EvaluatorStart(_) => false,
        }
    }
}

fn closest_suffix(closest: &Option<String>) -> String {
    closest
        .as_deref()
        .map(|name| format!(" — did you mean `{name}`?"))
        .unwrap_or_default()
}

impl EngineError {
    /// An unknown flow, with the name of `plan` closest to it.
    pub fn unknown_flow(flow: &str, plan: &crate::Plan) -> EngineError {
        EngineError::UnknownFlow {
            flow: flow.to_string(),
            closest: patchbay_config::suggest_closest(flow, plan.flows.keys().map(String::as_str))
                .map(str::to_string),
        }
    }
}
