//! The connector's errors, and the classification every decision about a
//! failure is taken on.
//!
//! - [`CallError`]: one call that produced no usable response. Its
//!   [`CallClass`] is what retries, the circuit breaker, the throttle, the
//!   metrics and the executor decide on, never the message text; the
//!   classifiers below (`class`, `is_transient`, `retry_after`, `status`)
//!   are exhaustive matches, so a new variant must be placed in each.
//! - [`FetchError`]: a page or a GraphQL operation without a usable result:
//!   the [`CallError`] left after retries, or an answer that cannot be used.
//!   [`PageError`] adds which page it was.
//! - [`BuildError`] and [`PaginateConfigError`]: configuration that cannot
//!   be used, found when a connector is built or a step compiled.
//!
//! Messages are built from parts already redacted (the URL as written, the
//! masked excerpt of a body), so `Display` and `Debug` may be logged and
//! journalled as they are. Reasons that belong to another part stay with
//! it: [`AddressRefusal`] with the address filter, `TokenStoreError` with the
//! [`TokenStore`](crate::TokenStore) trait its implementers return it from.

use std::time::Duration;

use crate::address_filter::AddressRefusal;
use crate::graphql::{self, GraphqlError};

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
    /// The upstream was reached and began to answer, but the answer broke
    /// off (a body cut short, a broken chunk) or is not HTTP at all.
    BrokenResponse,
    /// 2xx whose body is not acceptable: not JSON, empty, or too large.
    InvalidResponse,
    /// The request could not be built (bad header value, bad URL).
    InvalidRequest,
    /// Not sent: the wait for a rate-limit slot, or for the end of a pause
    /// the upstream asked for, would exceed the connector's `max_wait`.
    RateLimited,
    /// Not sent: the connector's circuit breaker is open.
    CircuitOpen,
    /// Not sent: no credential could be obtained (an OAuth 2.0 token
    /// endpoint refused or could not be reached).
    Auth,
    /// Not sent: the upstream (or its token endpoint, or a redirect target)
    /// is an inward address the connector does not allow.
    AddressRefused,
    /// The upstream answered with a redirect the connector does not follow.
    RedirectRefused,
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
            CallClass::BrokenResponse => "broken_response",
            CallClass::InvalidResponse => "invalid_response",
            CallClass::InvalidRequest => "invalid_request",
            CallClass::RateLimited => "rate_limited",
            CallClass::CircuitOpen => "circuit_open",
            CallClass::Auth => "auth",
            CallClass::AddressRefused => "address_refused",
            CallClass::RedirectRefused => "redirect_refused",
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
    /// The upstream was reached, but its answer broke off or is not HTTP.
    /// Not "cannot reach": the request may well have been received and
    /// acted on.
    #[error(
        "{connector}: {method} {path}: broken response{}: {reason}",
        after_status(*.status)
    )]
    BrokenResponse {
        connector: String,
        method: String,
        path: String,
        /// The status line's code, when one arrived before the break.
        status: Option<u16>,
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
    /// Never sent: its turn under the rate limit (or the end of the
    /// upstream's pause) lies beyond the connector's `max_wait`.
    // The message states what happened, never when to try again: it is
    // kept with a run that may have given up long since. `retry_in`
    // schedules the retry.
    #[error(
        "{connector}: {method} {path} not sent: rate limited (waited {}ms)",
        .waited.as_millis()
    )]
    RateLimited {
        connector: String,
        method: String,
        path: String,
        /// How long the call waited before giving up.
        waited: Duration,
        /// When a slot is expected, if known.
        retry_in: Option<Duration>,
    },
    /// Never sent: the upstream has been failing and the connector's circuit
    /// breaker is open. Returned at once, without retries.
    // As for `RateLimited`: no "retry in" in a message a dead run keeps.
    #[error(
        "{connector}: circuit breaker{} open, call not sent",
        .key.as_ref().map(|key| format!(" `{key}`")).unwrap_or_default()
    )]
    CircuitOpen {
        connector: String,
        /// The key of a keyed breaker.
        key: Option<String>,
        /// When the breaker lets a probe call through.
        retry_in: Duration,
    },
    /// Never sent: the credential for the call could not be obtained.
    /// `reason` quotes the token endpoint's error but never a secret.
    #[error("{connector}: cannot authenticate {method} {path}: {reason}")]
    Auth {
        connector: String,
        method: String,
        path: String,
        reason: String,
        /// Whether the token endpoint may answer later (unreachable, 5xx).
        transient: bool,
    },
    /// Never sent: the host resolves to (or is) an inward address — loopback,
    /// private, link-local, metadata... — and the connector does not opt in
    /// with `dangerous_allow_private`. Refused before any packet reaches it.
    #[error(
        "{connector}: {method} {path} not sent: {refusal}; to allow it, set \
         `dangerous_allow_private: [{}]` (or `true`) on connector `{connector}`",
        .refusal.allowing_cidr()
    )]
    AddressRefused {
        connector: String,
        method: String,
        path: String,
        /// Boxed: it is rare, and every `Result` carrying a `CallError` pays
        /// for the largest variant.
        refusal: Box<AddressRefusal>,
    },
    /// The upstream answered with a redirect that was not followed. Only the
    /// target's origin is named: its path and query may hold anything.
    #[error("{connector}: {method} {path} answered {status}, a redirect to {origin}: {reason}")]
    RedirectRefused {
        connector: String,
        method: String,
        path: String,
        status: u16,
        /// `scheme://host:port` of the `Location`, or what was wrong with it.
        origin: String,
        reason: RedirectRefusal,
    },
}

/// Why a redirect was not followed. Small and `Copy`: the error around it
/// names the connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    #[error("the connector follows no redirects (allow them with `redirects`)")]
    Off,
    #[error("another origin, and its host is not in the connector's `redirects.allow_hosts`")]
    OtherOrigin,
    #[error("a connector on https:// is never redirected to http://")]
    Downgrade,
    #[error("more than {max} redirects (the connector's `redirects.max`)")]
    TooMany { max: u32 },
    #[error("the `Location` header is missing or not a usable http(s) URL")]
    BadLocation,
}

fn after_status(status: Option<u16>) -> String {
    status
        .map(|status| format!(" after status {status}"))
        .unwrap_or_default()
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
            CallError::BrokenResponse { .. } => CallClass::BrokenResponse,
            CallError::InvalidResponse { .. } => CallClass::InvalidResponse,
            CallError::InvalidRequest { .. } => CallClass::InvalidRequest,
            CallError::RateLimited { .. } => CallClass::RateLimited,
            CallError::CircuitOpen { .. } => CallClass::CircuitOpen,
            CallError::Auth { .. } => CallClass::Auth,
            CallError::AddressRefused { .. } => CallClass::AddressRefused,
            CallError::RedirectRefused { .. } => CallClass::RedirectRefused,
        }
    }

    /// How long the upstream asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } => *retry_after,
            CallError::RateLimited { retry_in, .. } => *retry_in,
            CallError::CircuitOpen { retry_in, .. } => Some(*retry_in),
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::BrokenResponse { .. }
            | CallError::InvalidResponse { .. }
            | CallError::InvalidRequest { .. }
            | CallError::Auth { .. }
            | CallError::AddressRefused { .. }
            | CallError::RedirectRefused { .. } => None,
        }
    }

    /// The HTTP status, when the upstream answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. }
            | CallError::InvalidResponse { status, .. }
            | CallError::RedirectRefused { status, .. } => Some(*status),
            CallError::BrokenResponse { status, .. } => *status,
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::InvalidRequest { .. }
            | CallError::RateLimited { .. }
            | CallError::CircuitOpen { .. }
            | CallError::Auth { .. }
            | CallError::AddressRefused { .. } => None,
        }
    }

    /// True when the same call may succeed later: connect errors, broken
    /// responses, timeouts, 5xx, 408, 429, and calls held back by the rate limit or the circuit
    /// breaker.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::BrokenResponse { .. }
            | CallError::RateLimited { .. }
            | CallError::CircuitOpen { .. } => true,
            // Refusals are decided by configuration: the same call is
            // refused again until the configuration changes.
            CallError::InvalidResponse { .. }
            | CallError::InvalidRequest { .. }
            | CallError::AddressRefused { .. }
            | CallError::RedirectRefused { .. } => false,
            CallError::Auth { transient, .. } => *transient,
        }
    }

    /// True when the call itself retries this failure. Rate-limit and
    /// circuit-breaker refusals are transient but returned at once: waiting
    /// them out inside the call would hold a worker for nothing, while the
    /// run can be rescheduled after [`CallError::retry_after`].
    pub fn is_retried_in_call(&self) -> bool {
        match self.class() {
            CallClass::RateLimited | CallClass::CircuitOpen => false,
            CallClass::Success
            | CallClass::ClientError
            | CallClass::ServerError
            | CallClass::Timeout
            | CallClass::Connect
            | CallClass::BrokenResponse
            | CallClass::InvalidResponse
            | CallClass::InvalidRequest
            | CallClass::Auth
            | CallClass::AddressRefused
            | CallClass::RedirectRefused => self.is_transient(),
        }
    }
}

/// Why a page, or a GraphQL operation, has no usable result.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed, after the retries its policy allowed.
    #[error("{error}{}", after_attempts(*.attempts))]
    Call { error: CallError, attempts: u32 },
    /// The upstream answered, but the answer cannot be used: items that are
    /// not an array, a cursor that is not text, a link leaving the connector.
    #[error("{connector}: {method} {path}: {reason}")]
    Unusable {
        connector: String,
        method: String,
        path: String,
        reason: String,
        /// The answer's status; `None` when nothing was sent.
        status: Option<u16>,
        /// Requests sent for it, retries included (0 when none was).
        attempts: u32,
    },
    /// A GraphQL response carrying `errors`.
    #[error(
        "{connector}: POST {path} answered with GraphQL errors: {}",
        graphql::describe(.errors, .more)
    )]
    Graphql {
        connector: String,
        path: String,
        /// The first errors (at most [`graphql::MAX_ERRORS_KEPT`]).
        errors: Vec<GraphqlError>,
        /// How many more errors the response held.
        more: usize,
        /// The answer's status (GraphQL servers often say 200).
        status: u16,
        /// Requests sent for it, retries included.
        attempts: u32,
    },
}

fn after_attempts(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl FetchError {
    /// The outcome class, as for a single call: a GraphQL error or an
    /// unusable page is an `invalid_response`.
    pub fn class(&self) -> CallClass {
        match self {
            FetchError::Call { error, .. } => error.class(),
            FetchError::Unusable { .. } | FetchError::Graphql { .. } => CallClass::InvalidResponse,
        }
    }

    /// Requests sent for the failing request, retries included.
    pub fn attempts(&self) -> u32 {
        match self {
            FetchError::Call { attempts, .. }
            | FetchError::Unusable { attempts, .. }
            | FetchError::Graphql { attempts, .. } => *attempts,
        }
    }

    /// The HTTP status, when the upstream answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Call { error, .. } => error.status(),
            FetchError::Unusable { status, .. } => *status,
            FetchError::Graphql { status, .. } => Some(*status),
        }
    }
}

/// A page that could not be fetched or used.
#[derive(Debug, thiserror::Error)]
#[error("{error} (page {page})")]
pub struct PageError {
    /// Which page, from 1.
    pub page: u32,
    pub error: FetchError,
    /// Requests sent for every page up to this one, retries included.
    pub attempts: u32,
}

/// A connector that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("connector `{connector}`: {reason}")]
    Config { connector: String, reason: String },
    #[error("cannot create the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A `paginate` configuration that cannot be used, with the line and column
/// of the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PaginateConfigError {
    pub message: String,
    pub line: u64,
    pub column: u64,
}

/// The error and its causes in one line ("error sending request: connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
