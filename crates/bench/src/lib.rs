//! Instruments for Patchbay's benchmark suite (`bench/run`, described in
//! `docs/benchmarks.md`): a fast loopback upstream, the baselines Patchbay is
//! compared with (a bare intake endpoint and a bare reverse proxy), and a
//! client that measures request latency in microseconds.
//!
//! The binaries live in `src/bin`; this library holds what they share.

#![forbid(unsafe_code)]

pub mod client;
pub mod messaging;
pub mod net;
pub mod stats;

/// Why an instrument could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An address or URL given on the command line could not be used.
    #[error("invalid {what} `{value}`: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// An HTTP exchange failed below the status line (connection reset,
    /// malformed answer, ...).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// A request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}
