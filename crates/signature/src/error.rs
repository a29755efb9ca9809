//! Why a request's signature was refused, and why a secret is unusable.
//!
//! Messages name headers and numbers only: never a secret, and never the
//! signature that would have been accepted, since they may be shown to the
//! sender of a forged request.

/// Why a request failed verification. Safe to show the request's sender.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header the scheme needs is absent.
    #[error("missing header `{0}`")]
    MissingHeader(String),
    /// A header is present but cannot be read.
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        header: String,
        reason: &'static str,
    },
    /// The signed timestamp is further in the past than the tolerance.
    #[error(
        "the timestamp in `{header}` is {age_secs} s old, outside the {tolerance_secs} s tolerance by {} s",
        age_secs.saturating_sub(*tolerance_secs)
    )]
    TimestampTooOld {
        header: String,
        age_secs: u64,
        tolerance_secs: u64,
    },
    /// The signed timestamp is further in the future than the tolerance.
    #[error(
        "the timestamp in `{header}` is {ahead_secs} s in the future, outside the {tolerance_secs} s tolerance by {} s",
        ahead_secs.saturating_sub(*tolerance_secs)
    )]
    TimestampInFuture {
        header: String,
        ahead_secs: u64,
        tolerance_secs: u64,
    },
    /// The request is well formed but none of its signatures matches any of
    /// the secrets.
    #[error("no signature matched")]
    NoMatch,
}

/// Why a configured secret cannot be used. `position` counts from 1 in the
/// list of secrets given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No secret was given at all.
    #[error("at least one secret is needed")]
    NoSecret,
    /// The secret is the empty string.
    #[error("secret {position} is empty")]
    Empty { position: usize },
    /// A Standard Webhooks secret that is not base64 after its prefix.
    #[error(
        "secret {position} is not a Standard Webhooks secret: expected `whsec_` followed by base64"
    )]
    NotBase64 { position: usize },
}
