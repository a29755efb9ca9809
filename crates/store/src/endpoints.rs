//! Webhook endpoints: where `deliver` steps send, and whether each one is
//! healthy, failing (since when) or disabled.
//!
//! An endpoint that has failed every delivery for its `disable_after`
//! period is disabled: deliveries to it stop at once (their runs end dead,
//! to be replayed) until an operator enables it again. A single success
//! ends a failing spell. The record is one row per endpoint; each attempt
//! itself is a journal entry of its run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One delivery attempt's outcome, to add to its endpoint's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The endpoint's name (its connector).
    pub endpoint: String,
    pub at: DateTime<Utc>,
    /// Whether the endpoint accepted it (a 2xx in time).
    pub delivered: bool,
    /// The status it answered, if it answered.
    pub status: Option<u16>,
    /// Why it was not delivered, masked of secrets.
    pub error: Option<String>,
    /// How long an endpoint may fail every attempt before it is disabled.
    pub disable_after: Duration,
}

/// An endpoint's record.
// The management API shows records as stored: these doc comments are its
// reference too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    /// The endpoint's name: the connector its deliveries go through.
    pub name: String,
    /// Since when every attempt has failed; absent while it accepts
    /// deliveries.
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was disabled; absent while enabled. Deliveries to a
    /// disabled endpoint fail at once, without a request.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When the last attempt was made.
    pub last_attempt_at: DateTime<Utc>,
    /// The status of the last attempt's answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed; absent when it succeeded.
    pub last_error: Option<String>,
    /// Deliveries accepted, in all.
    pub delivered: u64,
    /// Attempts that failed, in all.
    pub failed: u64,
}

impl Endpoint {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}
