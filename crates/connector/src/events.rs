//! The connector's notable events. Each is a typed struct whose `emit()`
//! writes its log line and updates its metrics, so the two cannot drift.
//!
//! Metrics are recorded through the `metrics` facade: without an installed
//! recorder (a library user, a unit test) they cost next to nothing. Labels
//! stay bounded: connector names come from the configuration, status classes
//! and reasons from fixed lists; never a URL, path or run id.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::breaker::BreakerState;
use crate::error::CallError;

/// Calls sent to an upstream, by connector and `status_class`.
pub const REQUESTS_TOTAL: &str = "patchbay_connector_requests_total";
/// Time from sending a request to reading its whole answer.
pub const REQUEST_DURATION_SECONDS: &str = "patchbay_connector_request_duration_seconds";
/// Attempts repeated after a transient failure.
pub const RETRIES_TOTAL: &str = "patchbay_connector_retries_total";
/// Time an attempt waited for a rate-limit slot or an upstream pause.
pub const RATE_LIMIT_WAIT_SECONDS: &str = "patchbay_connector_rate_limit_wait_seconds";
/// Calls not sent at all, by `reason` (`rate_limited`, `circuit_open`).
pub const CALLS_REFUSED_TOTAL: &str = "patchbay_connector_calls_refused_total";
/// Pauses an upstream asked for (429 with `Retry-After`, quota used up).
pub const PAUSES_TOTAL: &str = "patchbay_connector_pauses_total";
/// 1 for the breaker's current `state`, 0 for the others.
pub const BREAKER_STATE: &str = "patchbay_connector_breaker_state";
/// Answers carrying a `Deprecation` or `Sunset` header, by connector and
/// `kind` (`deprecation`, `sunset`).
pub const DEPRECATION_NOTICES_TOTAL: &str = "patchbay_connector_deprecation_notices_total";

/// The states a breaker gauge is kept for.
const BREAKER_STATES: [BreakerState; 4] = [
    BreakerState::Disabled,
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

/// The `status_class` label of a call's outcome: `2xx` to `5xx` when the
/// upstream answered, `error` when it could not be reached or timed out,
/// `None` when nothing was sent (the request or its credential could not be
/// made).
pub(crate) fn status_class<T>(
    result: &Result<T, CallError>,
    ok_status: u16,
) -> Option<&'static str> {
    let status = match result {
        Ok(_) => ok_status,
        Err(error) => match error {
            CallError::Status { status, .. }
            | CallError::InvalidResponse { status, .. }
            | CallError::RedirectRefused { status, .. } => *status,
            CallError::BrokenResponse {
                status: Some(status),
                ..
            } => *status,
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::BrokenResponse { status: None, .. } => return Some("error"),
            CallError::InvalidRequest { .. }
            | CallError::RateLimited { .. }
            | CallError::CircuitOpen { .. }
            | CallError::Auth { .. }
            | CallError::AddressRefused { .. } => return None,
        },
    };
    Some(match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    })
}

/// An upstream answered a request (or failed to: `status_class` `error`).
pub(crate) struct UpstreamResponded<'a> {
    pub connector: &'a str,
    pub status_class: &'static str,
    pub duration: Duration,
}

impl UpstreamResponded<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(
            connector = %self.connector,
            status_class = self.status_class,
            duration_ms = self.duration.as_millis() as u64,
            "upstream answered"
        );
        counter!(REQUESTS_TOTAL, "connector" => self.connector.to_string(), "status_class" => self.status_class)
            .increment(1);
        histogram!(REQUEST_DURATION_SECONDS, "connector" => self.connector.to_string())
            .record(self.duration.as_secs_f64());
    }
}

/// A failed attempt is about to be repeated after `wait`.
pub(crate) struct CallRetried<'a> {
    pub connector: &'a str,
    pub error: &'a CallError,
    pub wait: Duration,
}

impl CallRetried<'_> {
    pub(crate) fn emit(&self) {
        tracing::info!(
            connector = %self.connector,
            error = %self.error,
            wait_ms = self.wait.as_millis() as u64,
            "call retried"
        );
        counter!(RETRIES_TOTAL, "connector" => self.connector.to_string()).increment(1);
    }
}

/// An attempt waited for its rate-limit slot (or the end of an upstream
/// pause); recorded for every attempt of a connector with a limit or a
/// pause, zero waits included, so the histogram shows how often calls wait.
pub(crate) struct RateLimitWaited<'a> {
    pub connector: &'a str,
    pub waited: Duration,
}

impl RateLimitWaited<'_> {
    pub(crate) fn emit(&self) {
        if !self.waited.is_zero() {
            tracing::debug!(
                connector = %self.connector,
                waited_ms = self.waited.as_millis() as u64,
                "call waited for the rate limit"
            );
        }
        histogram!(RATE_LIMIT_WAIT_SECONDS, "connector" => self.connector.to_string())
            .record(self.waited.as_secs_f64());
    }
}

/// Why a call was not sent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    RateLimited,
    CircuitOpen,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::CircuitOpen => "circuit_open",
        }
    }
}

/// A call was refused before it reached the upstream.
pub(crate) struct CallRefused<'a> {
    pub connector: &'a str,
    pub reason: Refusal,
}

impl CallRefused<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(
            connector = %self.connector,
            reason = self.reason.as_str(),
            "call refused before sending"
        );
        counter!(CALLS_REFUSED_TOTAL, "connector" => self.connector.to_string(), "reason" => self.reason.as_str())
            .increment(1);
    }
}

/// The upstream asked for calls to pause until its quota resets.
pub(crate) struct UpstreamPauseRequested<'a> {
    pub connector: &'a str,
    pub reason: &'static str,
    pub pause: Duration,
    pub asked: Duration,
    /// False when this only repeats a pause already in force: counted,
    /// not logged again.
    pub news: bool,
}

impl UpstreamPauseRequested<'_> {
    pub(crate) fn emit(&self) {
        if self.news {
            tracing::warn!(
                connector = %self.connector,
                reason = self.reason,
                pause_ms = self.pause.as_millis() as u64,
                asked_ms = self.asked.as_millis() as u64,
                "upstream asked to slow down: calls paused"
            );
        }
        counter!(PAUSES_TOTAL, "connector" => self.connector.to_string()).increment(1);
    }
}

/// A connector's breaker was built (`from: None`) or changed state.
pub(crate) struct BreakerStateChanged<'a> {
    pub connector: &'a str,
    /// A keyed breaker's key; such breakers are logged, and counted in
    /// the health report, but have no gauge (keys are unbounded).
    pub key: Option<&'a str>,
    pub from: Option<BreakerState>,
    pub to: BreakerState,
    /// Failure percentage and calls in the window at the transition.
    pub failure_rate: f64,
    pub calls: u32,
    pub open_for: Duration,
}

impl BreakerStateChanged<'_> {
    pub(crate) fn emit(&self) {
        if let Some(from) = self.from {
            let failure_rate = format!("{:.1}%", self.failure_rate);
            match self.to {
                BreakerState::Open => tracing::warn!(
                    connector = %self.connector,
                    key = self.key,
                    from = %from,
                    to = %self.to,
                    failure_rate,
                    calls = self.calls,
                    open_for_ms = self.open_for.as_millis() as u64,
                    "circuit breaker opened: calls fail fast"
                ),
                _ => tracing::info!(
                    connector = %self.connector,
                    key = self.key,
                    from = %from,
                    to = %self.to,
                    failure_rate,
                    calls = self.calls,
                    "circuit breaker changed state"
                ),
            }
        }
        if self.key.is_some() {
            return;
        }
        for state in BREAKER_STATES {
            let value = if state == self.to { 1.0 } else { 0.0 };
            gauge!(BREAKER_STATE, "connector" => self.connector.to_string(), "state" => state.as_str())
                .set(value);
        }
    }
}

/// An answer said its endpoint is deprecated or will be sunset.
pub(crate) struct DeprecationNoticed<'a> {
    pub connector: &'a str,
    pub notice: &'a crate::DeprecationNotice,
    /// Whether the connector had not logged this notice yet.
    pub new: bool,
}

impl DeprecationNoticed<'_> {
    pub(crate) fn emit(&self) {
        if self.new {
            tracing::warn!(
                connector = %self.connector,
                endpoint = %self.notice.endpoint,
                deprecation = self.notice.deprecated.as_deref().unwrap_or("-"),
                sunset = self.notice.sunset.as_deref().unwrap_or("-"),
                link = self.notice.link.as_deref().unwrap_or("-"),
                "upstream endpoint is deprecated"
            );
        }
        for (kind, present) in [
            ("deprecation", self.notice.deprecated.is_some()),
            ("sunset", self.notice.sunset.is_some()),
        ] {
            if present {
                counter!(DEPRECATION_NOTICES_TOTAL, "connector" => self.connector.to_string(), "kind" => kind)
                    .increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Result<(), CallError> {
        Err(CallError::Status {
            connector: "crm".into(),
            method: "GET".into(),
            path: "/x".into(),
            status,
            body: String::new(),
            retry_after: None,
        })
    }

    #[test]
    fn status_classes_are_a_fixed_list() {
        assert_eq!(status_class(&Ok::<(), CallError>(()), 204), Some("2xx"));
        assert_eq!(status_class(&status(404), 0), Some("4xx"));
        assert_eq!(status_class(&status(503), 0), Some("5xx"));
        assert_eq!(status_class(&status(302), 0), Some("3xx"));
        let timeout: Result<(), CallError> = Err(CallError::Timeout {
            connector: "crm".into(),
            method: "GET".into(),
            path: "/x".into(),
            after: Duration::from_secs(1),
        });
        assert_eq!(status_class(&timeout, 0), Some("error"));
        // Never sent: not a request.
        let refused: Result<(), CallError> = Err(CallError::CircuitOpen {
            connector: "crm".into(),
            key: None,
            retry_in: Duration::from_secs(1),
        });
        assert_eq!(status_class(&refused, 0), None);
    }
}
