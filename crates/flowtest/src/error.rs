//! Why a flow test could not be run at all (as opposed to failing).

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FlowTestError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The project does not load or build; the report says why.
    #[error("the project does not build:\n{0}")]
    Project(patchbay_config::Report),
    #[error("cannot start a fixture server: {0}")]
    Fixture(String),
    #[error("store: {0}")]
    Store(#[from] patchbay_store::StoreError),
    #[error("engine: {0}")]
    Engine(#[from] patchbay_engine::EngineError),
    #[error("cannot create a temporary folder: {0}")]
    TempDir(#[source] std::io::Error),
}
