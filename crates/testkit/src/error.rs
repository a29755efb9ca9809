//! The crate's error type.
//!
//! Mocks fail only where the host gets in the way (a port that cannot be bound,
//! an HTTP client that cannot be built) or when a caller hands over an unusable
//! target; everything an upstream does wrong on purpose is an HTTP reply, not an
//! error.

use std::net::SocketAddr;

/// Errors raised while starting mock upstreams or sending traffic to a target.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The listening socket could not be bound or inspected.
    #[error("cannot bind a loopback listener to {addr}: {source}")]
    Bind {
        /// Address that was asked for.
        addr: SocketAddr,
        /// Underlying socket error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client used to send traffic could not be built.
    #[error("cannot build HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A target URL given by the caller is not a usable `http(s)` URL.
    #[error("invalid target URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A private PostgreSQL server could not be set up, started or stopped.
    #[error("private PostgreSQL server: {what}: {detail}")]
    PgServer {
        /// What was being done (`initdb`, `start`, `stop`).
        what: &'static str,
        /// The command's own words, or why it could not run.
        detail: String,
    },
}
