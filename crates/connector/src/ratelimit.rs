//! The throttle of one connector: its own rate limit, and the pauses the
//! upstream asks for.
//!
//! The configured limit is a GCRA (`governor`), keyed by the call's rate key
//! so that, say, each tenant gets its own budget. A call over the limit waits
//! for its slot rather than failing; only when the wait would exceed
//! `max_wait` does it fail as [`CallError::RateLimited`](crate::CallError),
//! so the run can be rescheduled instead of holding a worker.
//!
//! Callers of one key queue in arrival order (a fair async mutex) and only
//! the head of the queue asks the limiter. Without the queue every waiter
//! would wake at each free slot and race for it: busy, and unfair enough that
//! an early caller could lose to later ones until its `max_wait` ran out.
//!
//! The limiter reads tokio's clock ([`TokioClock`]), like the rest of the
//! throttle: its deadlines are tokio instants and its waits tokio sleeps, so
//! the slot the limiter names and the sleep that waits for it are measured
//! on one clock. Outside tests tokio's clock is the monotonic clock; a test
//! that pauses tokio's time drives the limiter with it.
//!
//! With a [`SharedRate`] attached (nodes sharing a store), the slot is taken
//! from the shared budget instead of the node's own limiter, so the limit
//! holds across the cluster. Should the shared budget be unreachable, the
//! node falls back to its own limiter, warning once: calls go on at no
//! more than the limit per node rather than stopping.
//!
//! Upstream pauses apply to the whole connector, configured limit or not: a
//! `429` with `Retry-After`, or a response saying the quota is used up
//! (`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, or the IETF
//! `RateLimit` fields) holds every later call until the reset. Calls already
//! on the wire cannot be recalled, but nothing new is sent.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::Clock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use patchbay_config::{RateLimitConfig, default_max_wait};
use serde_json::Value;
use tokio::time::Instant;

use crate::call::Response;
use crate::error::CallError;
use crate::events::UpstreamPauseRequested;
use crate::{SharedRate, SharedSlot};

/// Longest pause an upstream can impose in one answer; a larger value is
/// more likely a misread header than a real quota, and calls that arrive
/// after it simply learn the news again.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// Limiter keys kept before stale ones are swept out.
const SWEEP_ABOVE_KEYS: usize = 1024;

/// Why a call was not let through.
#[derive(Debug)]
pub(crate) struct Refused {
    /// How long it waited before giving up.
    pub waited: Duration,
    /// When a slot is expected, if known.
    pub retry_in: Option<Duration>,
}

pub(crate) struct Throttle {
    connector: String,
    max_wait: Duration,
    limit: Option<Limit>,
    /// End of the pause the upstream asked for.
    pause: Mutex<Option<Instant>>,
}

struct Limit {
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, TokioClock>,
    /// The cluster's budget, when the node shares one.
    shared: std::sync::OnceLock<Arc<dyn SharedRate>>,
    /// The limiter's key prefix in the shared budget: the connector's name.
    shared_prefix: String,
    burst: u32,
    /// Whether the shared budget's failure was reported already.
    shared_failed: std::sync::atomic::AtomicBool,
    /// One queue per key; an entry lives while someone waits on it.
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Time between two slots, the hint when the queue is too long.
    interval: Duration,
    admitted: AtomicU64,
}

impl Throttle {
    pub(crate) fn build(connector: &str, config: Option<&RateLimitConfig>) -> Result<Self, String> {
        let max_wait = config.map_or_else(default_max_wait, |c| c.max_wait).0;
        let limit = config
            .map(|config| Limit::build(connector, config))
            .transpose()?;
        Ok(Throttle {
            connector: connector.to_string(),
            max_wait,
            limit,
            pause: Mutex::new(None),
        })
    }

    /// Waits for the upstream's pause to end and for a slot of `key`;
    /// returns how long that took.
    pub(crate) async fn wait(&self, key: Option<&str>) -> Result<Duration, Refused> {
        let started = Instant::now();
        let deadline = started + self.max_wait;
        let refuse = |retry_in| Refused {
            waited: started.elapsed(),
            retry_in,
        };
        let Some(limit) = &self.limit else {
            self.sit_out_pause(deadline).await.map_err(refuse)?;
            return Ok(started.elapsed());
        };
        let key = key.unwrap_or_default().to_string();
        let queue = Queue::join(limit, &key);
        let Ok(Some(_turn)) = tokio::time::timeout_at(deadline, queue.lock()).await else {
            return Err(refuse(Some(limit.interval)));
        };
        loop {
            self.sit_out_pause(deadline).await.map_err(refuse)?;
            let horizon = deadline.saturating_duration_since(Instant::now());
            let wait = match limit.check(&key, horizon).await {
                Slot::Now => break,
                Slot::Reserved(wait) => {
                    // The slot is this call's: no asking again.
                    tokio::time::sleep(wait).await;
                    break;
                }
                Slot::NotBefore(wait) => wait,
            };
            if Instant::now() + wait > deadline {
                return Err(refuse(Some(wait)));
            }
            tokio::time::sleep(wait).await;
        }
        limit.sweep();
        Ok(started.elapsed())
    }

    /// Learns from an answer whether the upstream wants calls paused.
    pub(crate) fn observe(&self, result: &Result<Response, CallError>) {
        match result {
            Ok(response) => {
                let header = |name: &str| response.headers.get(name).and_then(Value::as_str);
                if let Some(wait) = quota_reset(header, SystemTime::now()) {
                    self.pause_for(wait, "quota used up");
                }
            }
            // `retry_after` holds `Retry-After` or, failing that, the quota
            // reset. Not 503: an outage is the breaker's business, and its
            // `Retry-After` already paces this call's own retries.
            Err(CallError::Status {
                status: status @ (403 | 429),
                retry_after: Some(wait),
                ..
            }) => self.pause_for(
                *wait,
                if *status == 429 {
                    "429 Too Many Requests"
                } else {
                    "403 with a retry hint"
                },
            ),
            // Every other failure leaves the pause as it is.
            Err(
                CallError::Status { .. }
                | CallError::Timeout { .. }
                | CallError::Connect { .. }
                | CallError::BrokenResponse { .. }
                | CallError::InvalidResponse { .. }
                | CallError::InvalidRequest { .. }
                | CallError::RateLimited { .. }
                | CallError::CircuitOpen { .. }
                | CallError::Auth { .. }
                | CallError::AddressRefused { .. }
                | CallError::RedirectRefused { .. },
            ) => {}
        }
    }

    /// Takes slots from `rate`, shared with the other nodes, from now on.
    pub(crate) fn share(&self, rate: Arc<dyn SharedRate>) {
        if let Some(limit) = &self.limit {
            let _ = limit.shared.set(rate);
        }
    }

    /// The configured rate, in calls per second (per key when keyed).
    pub(crate) fn per_second(&self) -> Option<f64> {
        self.limit
            .as_ref()
            .map(|limit| 1.0 / limit.interval.as_secs_f64().max(f64::MIN_POSITIVE))
    }

    /// Whether a rate limit is configured (upstream pauses apply anyway).
    pub(crate) fn is_limited(&self) -> bool {
        self.limit.is_some()
    }

    /// When the pause the upstream asked for ends, if one is in force.
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        (*lock(&self.pause)).filter(|until| *until > Instant::now())
    }

    fn pause_for(&self, wait: Duration, reason: &'static str) {
        if wait.is_zero() {
            return;
        }
        let capped = wait.min(MAX_PAUSE);
        let now = Instant::now();
        let until = now + capped;
        let mut pause = lock(&self.pause);
        let current = pause.filter(|current| *current > now);
        if current.is_some_and(|current| current >= until) {
            return;
        }
        *pause = Some(until);
        drop(pause);
        // Many answers in a row repeat the same news; say it once per pause
        // or when it moves by a second or more.
        let news = current.is_none_or(|current| until - current >= Duration::from_secs(1));
        UpstreamPauseRequested {
            connector: &self.connector,
            reason,
            pause: capped,
            asked: wait,
            news,
        }
        .emit();
    }

    /// Sleeps through the upstream's pause, or says how long it still has
    /// to run when it outlasts `deadline`.
    async fn sit_out_pause(&self, deadline: Instant) -> Result<(), Option<Duration>> {
        // A loop: the pause may be extended while we sleep.
        while let Some(until) = self.paused_until() {
            if until > deadline {
                return Err(Some(until - Instant::now()));
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("interval", &self.limit.as_ref().map(|l| l.interval))
            .field("max_wait", &self.max_wait)
            .field("paused_until", &self.paused_until())
            .finish_non_exhaustive()
    }
}

impl Limit {
    /// Takes a slot of `key`, or says when to ask again.
    async fn check(&self, key: &str, horizon: Duration) -> Slot {
        if let Some(shared) = self.shared.get() {
            let shared_key = format!("{}/{key}", self.shared_prefix);
            match shared
                .reserve(&shared_key, self.interval, self.burst, horizon)
                .await
            {
                Ok(slot) => {
                    if self.shared_failed.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            connector = %self.shared_prefix,
                            "the cluster's rate limit is read again"
                        );
                    }
                    return match slot {
                        SharedSlot::Reserved(wait) if wait.is_zero() => Slot::Now,
                        SharedSlot::Reserved(wait) => Slot::Reserved(wait),
                        SharedSlot::Refused(wait) => Slot::NotBefore(wait),
                    };
                }
                Err(e) => {
                    if !self.shared_failed.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            connector = %self.shared_prefix,
                            error = %e,
                            "the cluster's rate limit cannot be read; this node paces itself \
                             alone until it can"
                        );
                    }
                }
            }
        }
        match self.limiter.check_key(&key.to_string()) {
            Ok(()) => Slot::Now,
            Err(not_until) => Slot::NotBefore(not_until.wait_time_from(self.limiter.clock().now())),
        }
    }

    fn build(connector: &str, config: &RateLimitConfig) -> Result<Limit, String> {
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(problem);
        }
        let requests = NonZeroU32::new(config.requests)
            .ok_or_else(|| "rate_limit.requests must be at least 1".to_string())?;
        let burst = NonZeroU32::new(config.burst)
            .ok_or_else(|| "rate_limit.burst must be at least 1".to_string())?;
        let interval = config.per.0 / requests.get();
        let quota = Quota::with_period(interval)
            .ok_or_else(|| {
                format!(
                    "rate_limit: {} requests per {:?} is too fast to pace",
                    requests, config.per.0
                )
            })?
            .allow_burst(burst);
        Ok(Limit {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), TokioClock),
            shared: std::sync::OnceLock::new(),
            shared_prefix: connector.to_string(),
            burst: burst.get(),
            shared_failed: std::sync::atomic::AtomicBool::new(false),
            queues: Mutex::new(HashMap::new()),
            interval,
            admitted: AtomicU64::new(0),
        })
    }

    /// Forgets keys whose budget is full again, so one-off keys do not
    /// accumulate.
    fn sweep(&self) {
        let admitted = self.admitted.fetch_add(1, Ordering::Relaxed);
        if admitted % 256 == 255 && self.limiter.len() > SWEEP_ABOVE_KEYS {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// A call's turn, as a limiter gave it.
enum Slot {
    /// Go now.
    Now,
    /// Reserved: go after this long.
    Reserved(Duration),
    /// Not before this long from now; ask again then.
    NotBefore(Duration),
}

/// `governor`'s clock on tokio's time (see the module doc).
#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// A place in the queue of one key; leaving removes the queue when it was
/// the last one in it.
struct Queue<'a> {
    limit: &'a Limit,
    key: &'a str,
    queue: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl<'a> Queue<'a> {
    fn join(limit: &'a Limit, key: &'a str) -> Self {
        let queue = Arc::clone(lock(&limit.queues).entry(key.to_string()).or_default());
        Queue {
            limit,
            key,
            queue: Some(queue),
        }
    }

    /// Waits for the turn; `None` only after `drop` began, which cannot
    /// happen while this borrow lives.
    async fn lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.queue.as_ref()?.lock().await)
    }
}

impl Drop for Queue<'_> {
    fn drop(&mut self) {
        let mut queues = lock(&self.limit.queues);
        // Released under the map lock: a newcomer clones under it too, so
        // the count cannot change between the check and the removal.
        drop(self.queue.take());
        if queues
            .get(self.key)
            .is_some_and(|queue| Arc::strong_count(queue) == 1)
        {
            queues.remove(self.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded values are plain data that a panic cannot leave half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long until the upstream's quota resets, when its headers say the
/// quota is used up. Understood:
///
/// - `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (and the same
///   without `X-`), the reset in seconds from now or as a Unix time (values
///   above 10^9 are seconds since the epoch, above 10^12 milliseconds);
/// - IETF `RateLimit: "default";r=0;t=5` (structured fields), with
///   `RateLimit-Policy: "default";q=100;w=60` supplying the window when `t`
///   is missing;
/// - the older `RateLimit: limit=100, remaining=0, reset=5` dictionary.
///
/// Several exhausted quotas: the latest reset wins.
pub(crate) fn quota_reset<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    now: SystemTime,
) -> Option<Duration> {
    let mut resets = Vec::new();
    for (remaining, reset) in [
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    ] {
        let exhausted = header(remaining).is_some_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().parse::<f64>().is_ok_and(|n| n <= 0.0))
        });
        if exhausted {
            resets.extend(
                header(reset)
                    .into_iter()
                    .flat_map(|value| value.split(','))
                    .filter_map(|value| reset_delay(value, now)),
            );
        }
    }
    if let Some(value) = header("ratelimit") {
        resets.extend(structured_resets(value, header("ratelimit-policy")));
    }
    resets.into_iter().max()
}

/// A reset value: seconds from now, or a Unix time in seconds or
/// milliseconds.
fn reset_delay(value: &str, now: SystemTime) -> Option<Duration> {
    let number: f64 = value.trim().parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let seconds = if number > 1e12 {
        number / 1000.0 - since_epoch
    } else if number > 1e9 {
        number - since_epoch
    } else {
        number
    };
    Some(Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(MAX_PAUSE))
}

/// Resets of exhausted quotas in a `RateLimit` field, in either draft form.
fn structured_resets(value: &str, policy: Option<&str>) -> Vec<Duration> {
    let items = split_outside_quotes(value, ',');
    let is_dictionary = items.iter().any(|item| {
        let first = item.split(';').next().unwrap_or_default();
        first.contains('=') && !first.trim_start().starts_with('"')
    });
    if is_dictionary {
        let field = |name: &str| {
            items.iter().find_map(|item| {
                let (key, value) = item.split_once('=')?;
                (key.trim().eq_ignore_ascii_case(name)).then(|| value.trim())
            })
        };
        let exhausted = field("remaining")
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n <= 0.0);
        return match (exhausted, field("reset")) {
            (true, Some(reset)) => reset
                .parse::<f64>()
                .ok()
                .and_then(seconds)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
    }
    let windows: HashMap<String, f64> = policy
        .map(|policy| {
            split_outside_quotes(policy, ',')
                .iter()
                .filter_map(|item| {
                    let (name, params) = sf_item(item);
                    Some((name, params.get("w").copied()?))
                })
                .collect()
        })
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let (name, params) = sf_item(item);
            if params.get("r").is_none_or(|r| *r > 0.0) {
                return None;
            }
            let reset = params.get("t").or_else(|| windows.get(&name))?;
            seconds(*reset)
        })
        .collect()
}

/// A structured-field item: its (unquoted) name and numeric parameters.
fn sf_item(item: &str) -> (String, HashMap<String, f64>) {
    let mut parts = split_outside_quotes(item, ';').into_iter();
    let name = parts
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"')
        .to_string();
    let params = parts
        .filter_map(|param| {
            let (key, value) = param.split_once('=')?;
            Some((key.trim().to_ascii_lowercase(), value.trim().parse().ok()?))
        })
        .collect();
    (name, params)
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0)
        .then(|| Duration::try_from_secs_f64(value).unwrap_or(MAX_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(headers: &[(&str, &str)]) -> Option<Duration> {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        quota_reset(
            |name| {
                headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| *v)
            },
            now,
        )
    }

    #[test]
    fn x_ratelimit_headers_in_seconds_or_epoch() {
        let secs = Duration::from_secs;
        assert_eq!(
            reset(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "7")]),
            Some(secs(7))
        );
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000012")
            ]),
            Some(secs(12))
        );
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000003000")
            ]),
            Some(secs(3))
        );
        // An epoch in the past means now.
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1600000000")
            ]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            reset(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1.5")]),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn quota_left_or_incomplete_headers_mean_no_pause() {
        assert_eq!(
            reset(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "7")]),
            None
        );
        assert_eq!(reset(&[("x-ratelimit-remaining", "0")]), None);
        assert_eq!(reset(&[("x-ratelimit-reset", "7")]), None);
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "none"),
                ("x-ratelimit-reset", "7")
            ]),
            None
        );
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "soon")
            ]),
            None
        );
        assert_eq!(
            reset(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "-4")]),
            None
        );
        assert_eq!(reset(&[]), None);
    }

    #[test]
    fn draft_triple_without_prefix() {
        assert_eq!(
            reset(&[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "9")
            ]),
            Some(Duration::from_secs(9))
        );
    }

    #[test]
    fn structured_ratelimit_field() {
        let secs = Duration::from_secs;
        assert_eq!(
            reset(&[("ratelimit", "\"default\";r=0;t=5")]),
            Some(secs(5))
        );
        assert_eq!(reset(&[("ratelimit", "\"default\";r=4;t=5")]), None);
        assert_eq!(
            reset(&[("ratelimit", "\"burst\";r=0;t=2, \"daily\";r=0;t=600")]),
            Some(secs(600))
        );
        assert_eq!(
            reset(&[("ratelimit", "\"burst\";r=0;t=2, \"daily\";r=50;t=600")]),
            Some(secs(2))
        );
        // A quoted name may hold separators.
        assert_eq!(reset(&[("ratelimit", "\"a,b;c\";r=0;t=3")]), Some(secs(3)));
        // No `t`: the policy's window.
        assert_eq!(
            reset(&[
                ("ratelimit", "\"default\";r=0"),
                ("ratelimit-policy", "\"default\";q=100;w=60")
            ]),
            Some(secs(60))
        );
        assert_eq!(reset(&[("ratelimit", "\"default\";r=0")]), None);
    }

    #[test]
    fn dictionary_ratelimit_field() {
        assert_eq!(
            reset(&[("ratelimit", "limit=100, remaining=0, reset=4")]),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            reset(&[("ratelimit", "limit=100, remaining=10, reset=4")]),
            None
        );
    }

    #[test]
    fn the_latest_reset_wins() {
        assert_eq!(
            reset(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "3"),
                ("ratelimit", "\"default\";r=0;t=8")
            ]),
            Some(Duration::from_secs(8))
        );
    }

    #[test]
    fn invalid_limits_do_not_build() {
        let config = |requests, burst, per: Duration| RateLimitConfig {
            requests,
            per: per.into(),
            burst,
            max_wait: default_max_wait(),
            key: None,
        };
        assert!(Throttle::build("crm", Some(&config(0, 1, Duration::from_secs(1)))).is_err());
        assert!(Throttle::build("crm", Some(&config(5, 0, Duration::from_secs(1)))).is_err());
        assert!(Throttle::build("crm", Some(&config(5, 1, Duration::ZERO))).is_err());
        assert!(Throttle::build("crm", Some(&config(5, 2, Duration::from_secs(1)))).is_ok());
    }

    #[tokio::test]
    async fn keyed_waits_are_separate_and_bounded() {
        let config = RateLimitConfig {
            requests: 1,
            per: Duration::from_secs(1).into(),
            burst: 1,
            max_wait: Duration::from_millis(1500).into(),
            key: None,
        };
        let throttle = Throttle::build("crm", Some(&config)).unwrap();
        let quick = Duration::from_millis(50);
        assert!(throttle.wait(Some("a")).await.unwrap() < quick);
        assert!(throttle.wait(Some("b")).await.unwrap() < quick);
        throttle.pause_for(Duration::from_secs(5), "test");
        let refused = throttle.wait(Some("c")).await.unwrap_err();
        assert!(refused.retry_in.is_some_and(|r| r > Duration::from_secs(4)));
        assert!(lock(&throttle.limit.as_ref().unwrap().queues).is_empty());
    }
}
