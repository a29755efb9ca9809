//! Connector errors and their classification.

use std::time::Duration;

/// What kind of outcome a call had. Retry policies and error handling decide
/// on this, never on error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// 2xx with a usable body.
    Success,
    /// 4xx: the request was refused; sending it again unchanged will not help
    /// (except 408 and 429, which are [`CallClass::is_transient`]).
    ClientError,
    /// 5xx: the upstream failed.
    ServerError,
    /// No complete answer within the connector's timeout.
    Timeout,
    /// The upstream could not be reached (refused, reset, DNS, TLS).
    Connect,
    /// 2xx whose body is not acceptable: not JSON, empty, or too large.
    InvalidResponse,
    /// The request could not be built (bad header value, bad URL).
    InvalidRequest,
}

impl CallClass {
    /// The name used in logs, journal entries and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CallClass::Success => "success",
            CallClass::ClientError => "client_error",
            CallClass::ServerError => "server_error",
            CallClass::Timeout => "timeout",
            CallClass::Connect => "connect_error",
            CallClass::InvalidResponse => "invalid_response",
            CallClass::InvalidRequest => "invalid_request",
        }
    }
}

/// A call that did not produce a usable response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{connector}: {method} {path} answered {status}{}", excerpt_suffix(.body))]
    Status {
        connector: String,
        method: String,
        path: String,
        status: u16,
        /// The start of the response body, for the journal.
        body: String,
        /// The upstream's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("{connector}: {method} {path} timed out after {}ms", .after.as_millis())]
    Timeout {
        connector: String,
        method: String,
        path: String,
        after: Duration,
    },
    #[error("{connector}: cannot reach upstream for {method} {path}: {reason}")]
    Connect {
        connector: String,
        method: String,
        path: String,
        reason: String,
    },
    #[error("{connector}: {method} {path} answered {status} with an unusable body: {reason}")]
    InvalidResponse {
        connector: String,
        method: String,
        path: String,
        status: u16,
        reason: String,
    },
    #[error("{connector}: cannot build request {method} {path}: {reason}")]
    InvalidRequest {
        connector: String,
        method: String,
        path: String,
        reason: String,
    },
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl CallError {
    /// The class of this failure.
    pub fn class(&self) -> CallClass {
        match self {
            CallError::Status { status, .. } if *status >= 500 => CallClass::ServerError,
            CallError::Status { .. } => CallClass::ClientError,
            CallError::Timeout { .. } => CallClass::Timeout,
            CallError::Connect { .. } => CallClass::Connect,
            CallError::InvalidResponse { .. } => CallClass::InvalidResponse,
            CallError::InvalidRequest { .. } => CallClass::InvalidRequest,
        }
    }

    /// How long the upstream asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } => *retry_after,
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::InvalidResponse { .. }
            | CallError::InvalidRequest { .. } => None,
        }
    }

    /// The HTTP status, when the upstream answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } | CallError::InvalidResponse { status, .. } => {
                Some(*status)
            }
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::InvalidRequest { .. } => None,
        }
    }

    /// True when the same call may succeed later: connect errors, timeouts,
    /// 5xx, 408 and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            CallError::Timeout { .. } | CallError::Connect { .. } => true,
            CallError::InvalidResponse { .. } | CallError::InvalidRequest { .. } => false,
        }
    }
}

/// A connector that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("connector `{connector}`: {reason}")]
    Config { connector: String, reason: String },
    #[error("cannot create the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}
