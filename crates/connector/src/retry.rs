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

use crate::breaker::{BreakerState, Outcome};
use serde::Serialize;

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
use crate::error::CallError;
use crate::events::{CallRefused, CallRetried, RateLimitWaited, Refusal, UpstreamResponded};
use crate::recent::{LastError, MinuteStats, RecentSummary, UpstreamQuota};

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

/// Minutes of history behind [`ConnectorHealth::recent`].
const HEALTH_WINDOW_MINUTES: usize = 5;

/// How a connector's upstream is doing, for health checks and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorHealth {
    pub breaker: BreakerState,
    /// Percentage of failed calls in the breaker's window (0 without one).
    pub failure_rate: f64,
    /// Calls counted in the breaker's window.
    pub calls_in_window: u32,
    /// While the breaker is open: how long until it lets a probe through.
    pub breaker_retry_in: Option<Duration>,
    /// When the pause the upstream asked for ends, while one is in force.
    pub paused_until: Option<std::time::Instant>,
    /// Calls of the last five minutes.
    pub recent: RecentSummary,
    pub last_error: Option<LastError>,
    pub rate_limit: RateLimitHeadroom,
}

/// How much of its rate budget a connector has left.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitHeadroom {
    /// The configured limit in calls per second (per key when keyed), if
    /// one is set.
    pub limit_per_second: Option<f64>,
    /// Share of the configured limit left unused over the last minute, from
    /// 0 (saturated) to 1 (idle); `None` without a configured limit. For a
    /// keyed limit this is measured against one key's budget, so it is a
    /// floor.
    pub headroom: Option<f64>,
    /// What the upstream last said of its own quota.
    pub upstream: Option<UpstreamQuota>,
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

    /// The circuit breaker's state, any pause the upstream asked for, and
    /// how calls went lately.
    pub fn health(&self) -> ConnectorHealth {
        let breaker = self.breaker.as_ref().map(|b| b.snapshot());
        let limit_per_second = self.throttle.per_second();
        let last_minute = self.recent.summary(1);
        ConnectorHealth {
            breaker: breaker.map_or(BreakerState::Disabled, |b| b.state),
            failure_rate: breaker.map_or(0.0, |b| b.failure_rate),
            calls_in_window: breaker.map_or(0, |b| b.calls),
            breaker_retry_in: breaker.and_then(|b| b.retry_in),
            paused_until: self
                .throttle
                .paused_until()
                .map(tokio::time::Instant::into_std),
            recent: self.recent.summary(HEALTH_WINDOW_MINUTES),
            last_error: self.recent.last_error(),
            rate_limit: RateLimitHeadroom {
                limit_per_second,
                headroom: limit_per_second.map(|per_second| {
                    (1.0 - last_minute.calls as f64 / (per_second * 60.0)).clamp(0.0, 1.0)
                }),
                upstream: self.recent.upstream_quota(),
            },
        }
    }

    /// Calls per minute over the last `window` minutes (at most
    /// [`WINDOW_MINUTES`](crate::WINDOW_MINUTES)), minutes without calls
    /// left out.
    pub fn recent_minutes(&self, window: usize) -> Vec<MinuteStats> {
        self.recent.minutes(window)
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
