//! Retries of one call: exponential backoff with full jitter, `Retry-After`.
//!
//! Only transient failures are retried ([`CallError::is_transient`]), and a
//! method that is not idempotent (`POST`, `PATCH`) only when the call carries
//! an idempotency key: otherwise a retry after a lost response could apply
//! the side effect twice. Full jitter (a uniform wait between zero and the
//! exponential bound) spreads the retries of many callers hit by one outage.
//! A `Retry-After` from the upstream replaces the computed wait, capped by
//! the backoff maximum so one header cannot stall a run for hours.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use patchbay_config::RetryConfig;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
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

/// A successful call and how many attempts it took.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub response: Response,
    pub attempts: u32,
}

/// A failed call and how many attempts were made.
#[derive(Debug)]
pub struct Undelivered {
    pub error: CallError,
    pub attempts: u32,
}

impl Connector {
    /// Sends a request, retrying transient failures as `policy` allows.
    pub async fn send(
        &self,
        request: &CallRequest,
        policy: RetryPolicy,
    ) -> Result<Delivered, Undelivered> {
        let replayable = is_idempotent(&request.method) || request.idempotency_key.is_some();
        let retries = if replayable {
            policy.attempts.saturating_sub(1)
        } else {
            0
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min)
            .with_max_delay(policy.max)
            .with_max_times(retries as usize)
            .build();
        let mut attempts = 0u32;
        let result = (|| {
            attempts += 1;
            self.call(request)
        })
        .retry(backoff)
        .when(CallError::is_transient)
        .adjust(|error, next| {
            // `next` is the exponential bound, or None when attempts are spent.
            let bound = next?;
            Some(match error.retry_after() {
                Some(asked) => asked.min(policy.max),
                None => bound.mul_f64(fastrand::f64()),
            })
        })
        .notify(|error, wait| {
            tracing::info!(
                connector = %self.name(),
                error = %error,
                wait_ms = wait.as_millis() as u64,
                "call retried"
            );
        })
        .await;
        match result {
            Ok(response) => Ok(Delivered { response, attempts }),
            Err(error) => Err(Undelivered { error, attempts }),
        }
    }
}

/// Methods that may be sent twice without changing the outcome (RFC 9110).
fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// `Retry-After` as seconds or an HTTP date; a date in the past means now.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
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
    fn only_safe_methods_are_idempotent() {
        for method in ["GET", "PUT", "DELETE", "HEAD"] {
            assert!(is_idempotent(method));
        }
        for method in ["POST", "PATCH"] {
            assert!(!is_idempotent(method));
        }
    }
}
