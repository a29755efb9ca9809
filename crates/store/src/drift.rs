//! Contract drift: the ways an upstream's replies differ from the contract
//! its connector names, one record per kind of difference.
//!
//! A kind is (connector, operation, JSON pointer, what the contract
//! expected): a reply whose `contacts[0].email` is a number where the spec
//! says string and the next reply's `contacts[3].email` with the same fault
//! are one kind (array indices are written `-` in the pointer, so a fault
//! repeated over items stays one record). Each record keeps when the kind
//! was first and last seen, how often, and one example of the value seen,
//! redacted and cut short.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest example kept, in characters.
pub const MAX_DRIFT_EXAMPLE_CHARS: usize = 256;

/// Observations of one kind of drift, to add to its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftObservation {
    pub kind: DriftKind,
    /// What the reply held instead (`integer`, `missing`, `null`).
    pub seen: String,
    /// When it was first and last seen in this batch.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many times it was seen in this batch.
    pub count: u64,
    /// The value seen, redacted and cut to [`MAX_DRIFT_EXAMPLE_CHARS`].
    pub example: String,
}

/// What makes drift records one: where and what.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftKind {
    /// The connector whose contract the reply broke.
    pub connector: String,
    /// The operation, `METHOD /path` as the spec writes it.
    pub operation: String,
    /// The documented response the reply was held against (`200`, `2XX`,
    /// `default`).
    pub response: String,
    /// JSON pointer of the mismatch in the reply's body, array indices
    /// written `-` (`/contacts/-/email`); empty for the body itself.
    pub pointer: String,
    /// What the contract expects there (`type string`, `required property
    /// email`, `one of the enum values`).
    pub expected: String,
}

/// One kind of drift as recorded.
// The management API shows records as stored: these doc comments are its
// reference too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drift {
    #[serde(flatten)]
    pub kind: DriftKind,
    /// What the last reply with this fault held instead.
    pub seen: String,
    /// When the kind was first seen.
    pub first_seen: DateTime<Utc>,
    /// When it was last seen.
    pub last_seen: DateTime<Utc>,
    /// How many replies had it.
    pub count: u64,
    /// The first value seen there, redacted and cut short.
    pub example: String,
}
