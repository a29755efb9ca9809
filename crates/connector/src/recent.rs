//! What a connector's calls did lately: per-minute counts, errors and a
//! latency histogram over the last hour, the last error, and the quota the
//! upstream last reported.
//!
//! This feeds health checks and the dashboard's charts, which want "how is
//! this upstream doing now" without a metrics server. Memory is fixed: one
//! bucket per minute for [`WINDOW_MINUTES`] minutes, each a small histogram
//! instead of raw samples, so a busy connector costs what an idle one does.
//! Percentiles are read from the histogram, interpolated inside a bucket:
//! good to a bucket's width (under a fifth of the value above 1 ms), which
//! is what a chart needs.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::call::Response;
use crate::error::CallError;

/// Minutes of history kept.
pub const WINDOW_MINUTES: usize = 60;

/// Upper bounds of the latency buckets, in milliseconds; a last bucket
/// catches everything slower.
const BOUNDS_MS: [f64; 28] = [
    0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0,
    150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0, 60000.0,
];
const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Longest error message kept, in characters.
const ERROR_CHARS: usize = 300;

/// The recent history of one connector. Its locks are std mutexes held for
/// a few additions, never across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct RecentCalls {
    minutes: Mutex<VecDeque<Minute>>,
    last_error: Mutex<Option<LastError>>,
    quota: Mutex<Option<UpstreamQuota>>,
}

#[derive(Clone, Debug)]
struct Minute {
    /// Minutes since the Unix epoch.
    index: u64,
    calls: u64,
    errors: u64,
    latency: [u32; BUCKETS],
}

/// Calls of one minute.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MinuteStats {
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: u64,
    pub calls: u64,
    /// Calls that failed: transport errors, timeouts and error statuses.
    pub errors: u64,
    /// Median latency, in milliseconds; `None` without calls.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, in milliseconds; `None` without calls.
    pub p95_ms: Option<f64>,
}

/// Calls over a window, summed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecentSummary {
    /// Length of the window, in minutes.
    pub window_minutes: u64,
    pub calls: u64,
    pub errors: u64,
    /// `errors / calls`, 0 without calls.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// The last failed call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LastError {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The error, as the journal would show it (no credentials).
    pub message: String,
}

/// The quota the upstream reported in its last rate-limit headers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UpstreamQuota {
    pub remaining: u64,
    pub limit: Option<u64>,
    /// Seconds since the Unix epoch when it was reported.
    pub at: u64,
}

impl RecentCalls {
    /// Takes over `earlier`'s history: what the connector this one replaces
    /// (a configuration reload) saw of the same upstream.
    pub(crate) fn adopt(&self, earlier: &RecentCalls) {
        let minutes = lock(&earlier.minutes).clone();
        let last_error = lock(&earlier.last_error).clone();
        let quota = lock(&earlier.quota).clone();
        *lock(&self.minutes) = minutes;
        *lock(&self.last_error) = last_error;
        *lock(&self.quota) = quota;
    }

    /// Counts one finished call that took `elapsed`.
    pub(crate) fn record(&self, elapsed: Duration, result: &Result<Response, CallError>) {
        self.record_at(SystemTime::now(), elapsed, result);
    }

    fn record_at(&self, now: SystemTime, elapsed: Duration, result: &Result<Response, CallError>) {
        let index = minute_of(now);
        {
            let mut minutes = lock(&self.minutes);
            if minutes.back().is_none_or(|last| last.index < index) {
                minutes.push_back(Minute {
                    index,
                    calls: 0,
                    errors: 0,
                    latency: [0; BUCKETS],
                });
            }
            while minutes
                .front()
                .is_some_and(|first| first.index + WINDOW_MINUTES as u64 <= index)
            {
                minutes.pop_front();
            }
            // A clock stepping back lands its calls in the newest minute.
            let minute = minutes.back_mut().expect("a bucket was just ensured");
            minute.calls += 1;
            minute.errors += u64::from(result.is_err());
            minute.latency[bucket_of(elapsed)] += 1;
        }
        let at = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        match result {
            Ok(response) => {
                if let Some(quota) = quota_of(response, at) {
                    *lock(&self.quota) = Some(quota);
                }
            }
            Err(error) => {
                let message: String = error.to_string().chars().take(ERROR_CHARS).collect();
                *lock(&self.last_error) = Some(LastError { at, message });
            }
        }
    }

    /// One entry per minute of the last `window` minutes that had calls,
    /// oldest first.
    pub(crate) fn minutes(&self, window: usize) -> Vec<MinuteStats> {
        self.minutes_at(SystemTime::now(), window)
    }

    fn minutes_at(&self, now: SystemTime, window: usize) -> Vec<MinuteStats> {
        let first = (minute_of(now) + 1).saturating_sub(window.min(WINDOW_MINUTES) as u64);
        lock(&self.minutes)
            .iter()
            .filter(|minute| minute.index >= first)
            .map(|minute| MinuteStats {
                minute: minute.index * 60,
                calls: minute.calls,
                errors: minute.errors,
                p50_ms: quantile(&minute.latency, 0.5),
                p95_ms: quantile(&minute.latency, 0.95),
            })
            .collect()
    }

    /// The last `window` minutes summed.
    pub(crate) fn summary(&self, window: usize) -> RecentSummary {
        self.summary_at(SystemTime::now(), window)
    }

    fn summary_at(&self, now: SystemTime, window: usize) -> RecentSummary {
        let first = (minute_of(now) + 1).saturating_sub(window.min(WINDOW_MINUTES) as u64);
        let mut calls = 0;
        let mut errors = 0;
        let mut latency = [0u32; BUCKETS];
        for minute in lock(&self.minutes).iter().filter(|m| m.index >= first) {
            calls += minute.calls;
            errors += minute.errors;
            for (sum, count) in latency.iter_mut().zip(minute.latency) {
                *sum = sum.saturating_add(count);
            }
        }
        RecentSummary {
            window_minutes: window.min(WINDOW_MINUTES) as u64,
            calls,
            errors,
            error_rate: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
            p50_ms: quantile(&latency, 0.5),
            p95_ms: quantile(&latency, 0.95),
        }
    }

    pub(crate) fn last_error(&self) -> Option<LastError> {
        lock(&self.last_error).clone()
    }

    pub(crate) fn upstream_quota(&self) -> Option<UpstreamQuota> {
        lock(&self.quota).clone()
    }
}

fn minute_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 60
}

fn bucket_of(elapsed: Duration) -> usize {
    let ms = elapsed.as_secs_f64() * 1000.0;
    BOUNDS_MS.partition_point(|bound| *bound < ms)
}

/// The `q` quantile of a histogram, interpolated linearly inside the
/// bucket it falls in.
fn quantile(histogram: &[u32; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().map(|c| u64::from(*c)).sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (index, count) in histogram.iter().enumerate() {
        let count = u64::from(*count);
        if count > 0 && (below + count) as f64 >= rank {
            let low = if index == 0 {
                0.0
            } else {
                BOUNDS_MS[index - 1]
            };
            // The open last bucket is reported at its lower bound.
            let Some(high) = BOUNDS_MS.get(index) else {
                return Some(low);
            };
            let fraction = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return Some(low + (high - low) * fraction);
        }
        below += count;
    }
    BOUNDS_MS.last().copied()
}

/// The quota an answer reports, from `X-RateLimit-*` or the IETF
/// `RateLimit` field (`limit=…, remaining=…`).
fn quota_of(response: &Response, at: u64) -> Option<UpstreamQuota> {
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(serde_json::Value::as_str)
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    if let Some(remaining) = header("x-ratelimit-remaining").and_then(number) {
        let limit = header("x-ratelimit-limit").and_then(number);
        return Some(UpstreamQuota {
            remaining,
            limit,
            at,
        });
    }
    let field = header("ratelimit")?;
    let param = |name: &str| {
        field.split([',', ';']).find_map(|part| {
            let (key, value) = part.split_once('=')?;
            (key.trim() == name).then(|| number(value)).flatten()
        })
    };
    Some(UpstreamQuota {
        remaining: param("remaining")?,
        limit: param("limit"),
        at,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data are counters: a panic mid-update loses at most one call.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_response(headers: serde_json::Value) -> Result<Response, CallError> {
        Ok(Response {
            status: 200,
            headers,
            body: serde_json::Value::Null,
        })
    }

    fn failed() -> Result<Response, CallError> {
        Err(CallError::Status {
            connector: "crm".into(),
            method: "GET".into(),
            path: "/contacts".into(),
            status: 503,
            body: String::new(),
            retry_after: None,
        })
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn counts_per_minute_and_forgets_after_the_window() {
        let recent = RecentCalls::default();
        let start = 1_000 * 60;
        for i in 0..10 {
            recent.record_at(
                at(start + i),
                Duration::from_millis(4),
                &ok_response(json!({})),
            );
        }
        recent.record_at(at(start + 61), Duration::from_millis(4), &failed());
        let minutes = recent.minutes_at(at(start + 61), 60);
        assert_eq!(minutes.len(), 2);
        assert_eq!((minutes[0].calls, minutes[0].errors), (10, 0));
        assert_eq!((minutes[1].calls, minutes[1].errors), (1, 1));
        assert_eq!(minutes[0].minute, start);

        let summary = recent.summary_at(at(start + 61), 60);
        assert_eq!((summary.calls, summary.errors), (11, 1));
        assert!((summary.error_rate - 1.0 / 11.0).abs() < 1e-9);
        // Only the newest minute in a one-minute window.
        assert_eq!(recent.summary_at(at(start + 61), 1).calls, 1);
        // An hour later both minutes have left the window.
        let later = at(start + 61 + 3600);
        assert!(recent.minutes_at(later, 60).is_empty());
        recent.record_at(later, Duration::from_millis(1), &ok_response(json!({})));
        assert_eq!(lock(&recent.minutes).len(), 1, "old buckets are dropped");
    }

    #[test]
    fn percentiles_fall_in_the_right_bucket() {
        let recent = RecentCalls::default();
        for _ in 0..90 {
            recent.record_at(at(60), Duration::from_millis(3), &ok_response(json!({})));
        }
        for _ in 0..10 {
            recent.record_at(at(60), Duration::from_millis(400), &ok_response(json!({})));
        }
        let summary = recent.summary_at(at(60), 60);
        let p50 = summary.p50_ms.unwrap();
        let p95 = summary.p95_ms.unwrap();
        assert!((2.0..=3.0).contains(&p50), "p50 {p50}");
        assert!((300.0..=500.0).contains(&p95), "p95 {p95}");
        assert_eq!(RecentCalls::default().summary_at(at(60), 60).p95_ms, None);
    }

    #[test]
    fn keeps_the_last_error_and_the_upstream_quota() {
        let recent = RecentCalls::default();
        recent.record_at(at(120), Duration::from_millis(1), &failed());
        let error = recent.last_error().unwrap();
        assert_eq!(error.at, 120);
        assert!(error.message.contains("503"), "{}", error.message);

        recent.record_at(
            at(121),
            Duration::from_millis(1),
            &ok_response(json!({"x-ratelimit-remaining": "7", "x-ratelimit-limit": "10"})),
        );
        assert_eq!(
            recent.upstream_quota(),
            Some(UpstreamQuota {
                remaining: 7,
                limit: Some(10),
                at: 121
            })
        );
        recent.record_at(
            at(122),
            Duration::from_millis(1),
            &ok_response(json!({"ratelimit": "limit=100, remaining=42, reset=5"})),
        );
        assert_eq!(recent.upstream_quota().unwrap().remaining, 42);
    }

    use serde_json::json;
}
