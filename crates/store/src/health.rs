//! Whether the store can still keep what the node acknowledges.
//!
//! A node that acknowledges an event promises it is durable. Two things can
//! quietly break that promise under a running node: the database file is
//! deleted or replaced (the process keeps writing to a file that no longer
//! has a name, and everything is gone at the next start), or writes start
//! failing (a read-only or full disk). The store watches for both off the
//! request path and reports them as a [`StoreFault`]; intake, claims and
//! `/healthz` read it with one atomic load.

/// Why the store cannot be trusted with new work right now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreFault {
    /// The database file was removed or replaced while open. Permanent for
    /// this process: what it writes now is lost at the next start.
    #[error(
        "the database file {path} was removed or replaced while in use; \
         restart the node once the store is back in place"
    )]
    Replaced { path: String },
    /// The last commit failed (read-only or full disk, I/O error). Clears
    /// with the next commit that succeeds.
    #[error("the last write to the store failed; waiting for a write to succeed")]
    WriteFailed,
}

impl StoreFault {
    /// Whether new events must be refused. A failed write does not refuse
    /// them by itself: each commit is tried and fails on its own, and one
    /// that succeeds is what clears the fault.
    pub fn refuses_events(&self) -> bool {
        match self {
            StoreFault::Replaced { .. } => true,
            StoreFault::WriteFailed => false,
        }
    }
}
