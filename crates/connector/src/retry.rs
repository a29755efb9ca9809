//! The retry policy: how many attempts a call gets, which requests may be
//! repeated, and how long to wait before the next attempt. The loop that
//! applies it is the first stage of the send pipeline ([`crate::send`]);
//! which failures are retried at all is the error's
//! ([`CallError::is_retried_in_call`]).
//!
//! Only transient failures are retried, and a method that is not idempotent
//! (`POST`, `PATCH`) only when the call carries an idempotency key:
//! otherwise a retry after a lost response could apply the side effect
//! twice. Full jitter (a uniform wait between zero and the exponential
//! bound) spreads the retries of many callers hit by one outage. A
//! `Retry-After` from the upstream replaces the computed wait, capped by the
//! backoff maximum so one header cannot stall a run for hours.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use patchbay_config::RetryConfig;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::CallError;

/// How a call is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub attempts: u32,
    pub min: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::from(&RetryConfig::default())
    }
}

impl From<&RetryConfig> for RetryPolicy {
    fn from(config: &RetryConfig) -> Self {
        RetryPolicy {
            attempts: config.attempts.max(1),
            min: config.backoff.min.0,
            max: config.backoff.max.0.max(config.backoff.min.0),
        }
    }
}

impl RetryPolicy {
    /// The exponential schedule of bounds between `min` and `max`, one per
    /// retry left; none when the request may not be repeated.
    pub(crate) fn backoff(&self, replayable: bool) -> ExponentialBackoff {
        let retries = if replayable {
            self.attempts.saturating_sub(1)
        } else {
            0
        };
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_max_times(retries as usize)
            .build()
    }

    /// The wait before the next attempt after `error`: the upstream's
    /// `Retry-After` up to `max`, or else a uniform draw below the
    /// exponential `bound` (full jitter).
    pub(crate) fn wait(&self, error: &CallError, bound: Duration) -> Duration {
        match error.retry_after() {
            Some(asked) => asked.min(self.max),
            None => bound.mul_f64(fastrand::f64()),
        }
    }
}

/// Methods that may be sent twice without changing the outcome (RFC 9110).
pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// How long the upstream asked us to wait: `Retry-After` as seconds or an
/// HTTP date (a date in the past means now), or else the reset of a quota
/// its rate-limit headers say is used up.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_header(headers).or_else(|| {
        crate::ratelimit::quota_reset(
            |name| headers.get(name).and_then(|v| v.to_str().ok()),
            SystemTime::now(),
        )
    })
}

fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn parses_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&headers("2")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&headers(&later)).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after(&headers("soon")), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn falls_back_to_an_exhausted_quota() {
        let mut map = HeaderMap::new();
        map.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        map.insert("x-ratelimit-reset", HeaderValue::from_static("4"));
        assert_eq!(parse_retry_after(&map), Some(Duration::from_secs(4)));
        map.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(parse_retry_after(&map), Some(Duration::from_secs(1)));
    }

    #[test]
    fn only_safe_methods_are_idempotent() {
        for method in ["GET", "PUT", "DELETE", "HEAD"] {
            assert!(is_idempotent(method));
        }
        for method in ["POST", "PATCH"] {
            assert!(!is_idempotent(method));
        }
    }
}
