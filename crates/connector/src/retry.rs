//! Retries of one call: exponential backoff with full jitter, `Retry-After`.
//!
//! Only transient failures are retried ([`CallError::is_transient`]), and a
//! method that is not idempotent (`POST`, `PATCH`) only when the call carries
//! an idempotency key: otherwise a retry after a lost response could apply
//! the side effect twice. Full jitter (a uniform wait between zero and the
//! exponential bound) spreads the retries of many callers hit by one outage.
//! A `Retry-After` from the upstream replaces the computed wait, capped by
//! the backoff maximum so one header cannot stall a run for hours.
//!
//! Each attempt runs the connector's pipeline: the circuit breaker admits it
//! (or the call fails fast with [`CallError::CircuitOpen`]), the throttle
//! waits for a rate-limit slot and any pause the upstream asked for (or the
//! call fails with [`CallError::RateLimited`]), the request is sent, and the
//! outcome is reported to both. Those two refusals are not retried here: the
//! run can be rescheduled instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use patchbay_config::RetryConfig;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tracing::Instrument as _;

use crate::breaker::Outcome;

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
use crate::error::CallError;
use crate::events::{CallRefused, CallRetried, RateLimitWaited, Refusal, UpstreamResponded};

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
    /// Time spent waiting for rate-limit slots and upstream pauses, over
    /// all attempts (backoff between attempts not included).
    pub waited: Duration,
}

/// A failed call and how many attempts were made.
#[derive(Debug)]
pub struct Undelivered {
    pub error: CallError,
    pub attempts: u32,
    /// Time spent waiting for rate-limit slots and upstream pauses, over
    /// all attempts (backoff between attempts not included).
    pub waited: Duration,
}

impl Connector {
    /// Sends a request, retrying transient failures as `policy` allows.
    pub async fn send(
        &self,
        request: &CallRequest,
        policy: RetryPolicy,
    ) -> Result<Delivered, Undelivered> {
        let replayable = is_idempotent(&request.method) || request.idempotency_key.is_some();
        self.send_replayable(request, policy, replayable).await
    }

    /// [`Connector::send`] for a caller that knows better than the method
    /// whether the request may be repeated (a GraphQL query is a `POST`
    /// without side effects).
    pub(crate) async fn send_replayable(
        &self,
        request: &CallRequest,
        policy: RetryPolicy,
        replayable: bool,
    ) -> Result<Delivered, Undelivered> {
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
        // Nanoseconds, shared with each attempt's future. Owned (an `Arc`),
        // not borrowed from this frame: a future borrowing its own locals
        // through the retry closure cannot be proven `Send` for every
        // lifetime, which callers spawning it on a runtime need.
        let waited = Arc::new(AtomicU64::new(0));
        let result = (|| {
            attempts += 1;
            self.attempt(request, Arc::clone(&waited))
        })
        .retry(backoff)
        .when(CallError::is_retried_in_call)
        .adjust(|error, next| {
            // `next` is the exponential bound, or None when attempts are spent.
            let bound = next?;
            Some(match error.retry_after() {
                Some(asked) => asked.min(policy.max),
                None => bound.mul_f64(fastrand::f64()),
            })
        })
        .notify(|error, wait| {
            CallRetried {
                connector: self.name(),
                error,
                wait,
            }
            .emit();
        })
        .await;
        let waited = Duration::from_nanos(waited.load(Ordering::Relaxed));
        match result {
            Ok(response) => Ok(Delivered {
                response,
                attempts,
                waited,
            }),
            Err(error) => Err(Undelivered {
                error,
                attempts,
                waited,
            }),
        }
    }

    /// One attempt in its own span (`upstream call`, a client span in
    /// traces, whose ids travel to the upstream in `traceparent`).
    async fn attempt(
        &self,
        request: &CallRequest,
        waited: Arc<AtomicU64>,
    ) -> Result<Response, CallError> {
        let span = tracing::info_span!(
            "upstream call",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            connector = %self.name(),
            http.request.method = %request.method,
            url.path = %request.path,
            http.response.status_code = tracing::field::Empty,
        );
        let result = self
            .attempt_in_span(request, waited)
            .instrument(span.clone())
            .await;
        let status = match &result {
            Ok(response) => Some(response.status),
            Err(error) => error.status(),
        };
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if result.is_err() {
            span.record("otel.status_code", "error");
        }
        result
    }

    /// One attempt: breaker, throttle, the call, and its outcome fed back.
    async fn attempt_in_span(
        &self,
        request: &CallRequest,
        waited: Arc<AtomicU64>,
    ) -> Result<Response, CallError> {
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.admit().map_err(|retry_in| {
                CallRefused {
                    connector: self.name(),
                    reason: Refusal::CircuitOpen,
                }
                .emit();
                CallError::CircuitOpen {
                    connector: self.name().to_string(),
                    retry_in,
                }
            })?),
            None => None,
        };
        let wait = self.throttle.wait(request.rate_key.as_deref()).await;
        let wait_time = match &wait {
            Ok(time) => *time,
            Err(refused) => refused.waited,
        };
        waited.fetch_add(
            u64::try_from(wait_time.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if self.throttle.is_limited() || !wait_time.is_zero() {
            RateLimitWaited {
                connector: self.name(),
                waited: wait_time,
            }
            .emit();
        }
        if let Err(refused) = wait {
            CallRefused {
                connector: self.name(),
                reason: Refusal::RateLimited,
            }
            .emit();
            return Err(CallError::RateLimited {
                connector: self.name().to_string(),
                method: request.method.clone(),
                path: request.path.clone(),
                waited: refused.waited,
                retry_in: refused.retry_in,
            });
        }
        let sent = tokio::time::Instant::now();
        let result = self.call(request).await;
        let ok_status = result.as_ref().map_or(0, |response| response.status);
        if let Some(status_class) = crate::events::status_class(&result, ok_status) {
            UpstreamResponded {
                connector: self.name(),
                status_class,
                duration: sent.elapsed(),
            }
            .emit();
        }
        self.throttle.observe(&result);
        if let Some(permit) = permit {
            permit.record(Outcome::of(&result));
        }
        result
    }
}

/// Methods that may be sent twice without changing the outcome (RFC 9110).
fn is_idempotent(method: &str) -> bool {
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
