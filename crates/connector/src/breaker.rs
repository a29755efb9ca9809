//! The circuit breaker of one connector, or of one key of it (see
//! [`crate::breakers`]): stop calling an upstream that keeps failing, so
//! runs fail fast (and can be rescheduled) instead of piling timeouts onto
//! an API that is already down.
//!
//! Closed, it counts calls and failures over a sliding window of time
//! buckets. When at least `min_calls` calls were made in the window and the
//! share of failures reaches `failure_rate`, it opens: every call is refused
//! at once for `open_for`. Then it is half-open and lets `half_open_calls`
//! probes through; the first probe outcome decides: a success closes it, a
//! failure opens it again.
//!
//! Only the upstream's own failures count: 5xx, timeouts and connection
//! errors. A 4xx (429 included: rate limits are handled by the throttle) or
//! an unusable 2xx body means the upstream is up and answering.
//!
//! On nodes sharing a store, a breaker that opens on its own failures tells
//! the others ([`crate::SharedBreakers`]), and theirs open for as long: one
//! node's evidence spares the upstream every node's probing. Each node then
//! probes on its own once the opening ends.
//!
//! The state sits behind a std mutex held for bookkeeping only, never across
//! an `.await`. Every permit carries the generation of the state it was
//! issued in, so the late outcome of a call that started before a transition
//! cannot flip the breaker again.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use patchbay_config::CircuitBreakerConfig;
use tokio::time::Instant;

use crate::error::{CallClass, CallError};
use crate::events::BreakerStateChanged;

/// Time buckets in the sliding window; the window slides in steps of
/// `window / BUCKETS`.
const BUCKETS: u32 = 10;

/// Where a connector's circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// The connector has no breaker (`circuit_breaker: off`).
    Disabled,
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused without reaching the upstream.
    Open,
    /// A few probe calls are let through to test the upstream.
    HalfOpen,
}

impl BreakerState {
    /// The name used in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Disabled => "disabled",
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call ended, as far as the breaker cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The upstream answered (any 2xx-4xx).
    Success,
    /// The upstream failed: 5xx, timeout, connection error.
    Failure,
    /// Nothing reached the upstream; counts for nothing.
    Ignored,
}

impl Outcome {
    pub(crate) fn of<T>(result: &Result<T, CallError>) -> Outcome {
        let Err(error) = result else {
            return Outcome::Success;
        };
        match error.class() {
            CallClass::ServerError
            | CallClass::Timeout
            | CallClass::Connect
            | CallClass::BrokenResponse => Outcome::Failure,
            // The request never reached the upstream (a token endpoint is
            // not the API this breaker guards).
            CallClass::InvalidRequest
            | CallClass::RateLimited
            | CallClass::CircuitOpen
            | CallClass::Auth
            | CallClass::AddressRefused => Outcome::Ignored,
            CallClass::Success
            | CallClass::ClientError
            | CallClass::InvalidResponse
            | CallClass::RedirectRefused => Outcome::Success,
        }
    }
}

/// A snapshot of the breaker for health reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BreakerSnapshot {
    pub state: BreakerState,
    pub failure_rate: f64,
    pub calls: u32,
    pub retry_in: Option<Duration>,
}

pub(crate) struct Breaker {
    connector: String,
    /// The key of a keyed breaker (`circuit_breaker.key`, evaluated).
    key: Option<String>,
    /// Percent of failures that opens the breaker.
    threshold: f64,
    min_calls: u32,
    open_for: Duration,
    half_open_calls: u32,
    bucket_len: Duration,
    started: Instant,
    inner: Mutex<Inner>,
    /// Told when this breaker opens on its own failures, so the other
    /// nodes open theirs (see [`crate::SharedBreakers`]).
    shared: std::sync::OnceLock<std::sync::Arc<dyn crate::SharedBreakers>>,
    /// Told of every change of state (see [`crate::BreakerWatch`]).
    watch: std::sync::OnceLock<std::sync::Arc<dyn crate::BreakerWatch>>,
}

struct Inner {
    state: State,
    /// Bumped on every transition; permits of older generations are stale.
    generation: u64,
    buckets: [Bucket; BUCKETS as usize],
}

#[derive(Clone, Copy, Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { admitted: u32 },
}

impl State {
    fn public(self) -> BreakerState {
        match self {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which slice of time (`elapsed / bucket_len`) the counts belong to.
    epoch: u64,
    calls: u32,
    failures: u32,
}

/// Leave to make one call. Dropping it unsettled (the call was abandoned)
/// gives a probe slot back, so a cancelled probe cannot wedge the breaker
/// half-open.
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    pub(crate) fn record(mut self, outcome: Outcome) {
        self.settled = true;
        self.breaker
            .record_at(self.generation, self.probe, outcome, Instant::now());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.record_at(
                self.generation,
                self.probe,
                Outcome::Ignored,
                Instant::now(),
            );
        }
    }
}

impl Breaker {
    /// The breaker `config` describes, or `None` when it is disabled.
    pub(crate) fn build(
        connector: &str,
        config: &CircuitBreakerConfig,
    ) -> Result<Option<Breaker>, String> {
        let built = |state| BreakerStateChanged {
            connector,
            key: None,
            from: None,
            to: state,
            failure_rate: 0.0,
            calls: 0,
            open_for: config.open_for.0,
        };
        if !config.enabled {
            built(BreakerState::Disabled).emit();
            return Ok(None);
        }
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(problem);
        }
        built(BreakerState::Closed).emit();
        Ok(Some(Breaker::new(connector, None, config)))
    }

    /// A closed breaker for `key` of `connector`, whose `config` was
    /// checked when the connector was built.
    pub(crate) fn keyed(connector: &str, key: String, config: &CircuitBreakerConfig) -> Breaker {
        Breaker::new(connector, Some(key), config)
    }

    fn new(connector: &str, key: Option<String>, config: &CircuitBreakerConfig) -> Breaker {
        Breaker {
            connector: connector.to_string(),
            key,
            threshold: config.failure_rate,
            min_calls: config.min_calls,
            open_for: config.open_for.0,
            half_open_calls: config.half_open_calls,
            bucket_len: (config.window.0 / BUCKETS).max(Duration::from_millis(1)),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                buckets: [Bucket::default(); BUCKETS as usize],
            }),
            shared: std::sync::OnceLock::new(),
            watch: std::sync::OnceLock::new(),
        }
    }

    /// The key of a keyed breaker.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// How the breaker is named to the other nodes: the connector, and the
    /// key in brackets for a keyed one (`crm[GET /orders/{id}]`; connector
    /// names never hold a bracket).
    pub(crate) fn shared_name(&self) -> String {
        match &self.key {
            Some(key) => format!("{}[{key}]", self.connector),
            None => self.connector.clone(),
        }
    }

    /// Closed with no call in its window: forgetting it loses nothing.
    pub(crate) fn is_idle(&self) -> bool {
        let inner = self.lock();
        matches!(inner.state, State::Closed) && self.window(&inner, Instant::now()).0 == 0
    }

    /// A permit to call now, or how long until calls are let through again.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, Duration> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<Permit<'_>, Duration> {
        let mut inner = self.lock();
        if let State::Open { until } = inner.state {
            if now < until {
                return Err(until - now);
            }
            self.transition(&mut inner, State::HalfOpen { admitted: 0 }, now);
        }
        let probe = match &mut inner.state {
            State::Closed => false,
            State::HalfOpen { admitted } if *admitted < self.half_open_calls => {
                *admitted += 1;
                true
            }
            // Probes are out; their outcome decides soon, but how soon is
            // unknown, so the hint is the breaker's own rhythm.
            State::HalfOpen { .. } | State::Open { .. } => return Err(self.open_for),
        };
        Ok(Permit {
            breaker: self,
            generation: inner.generation,
            probe,
            settled: false,
        })
    }

    fn record_at(&self, generation: u64, probe: bool, outcome: Outcome, now: Instant) {
        let mut inner = self.lock();
        if generation != inner.generation {
            return;
        }
        match inner.state {
            State::HalfOpen { admitted } if probe => match outcome {
                Outcome::Success => self.transition(&mut inner, State::Closed, now),
                Outcome::Failure => {
                    self.transition(
                        &mut inner,
                        State::Open {
                            until: now + self.open_for,
                        },
                        now,
                    );
                    self.opened_here();
                }
                Outcome::Ignored => {
                    inner.state = State::HalfOpen {
                        admitted: admitted.saturating_sub(1),
                    }
                }
            },
            State::Closed if outcome != Outcome::Ignored => {
                let epoch = self.epoch(now);
                let bucket = &mut inner.buckets[(epoch % u64::from(BUCKETS)) as usize];
                if bucket.epoch != epoch {
                    *bucket = Bucket {
                        epoch,
                        ..Bucket::default()
                    };
                }
                bucket.calls += 1;
                if outcome == Outcome::Failure {
                    bucket.failures += 1;
                }
                let (calls, rate) = self.window(&inner, now);
                if calls >= self.min_calls && rate >= self.threshold {
                    self.transition(
                        &mut inner,
                        State::Open {
                            until: now + self.open_for,
                        },
                        now,
                    );
                    self.opened_here();
                }
            }
            State::Closed | State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }

    /// Tells `watch` of every change of this breaker's state.
    pub(crate) fn watch(&self, watch: std::sync::Arc<dyn crate::BreakerWatch>) {
        let _ = self.watch.set(watch);
    }

    /// Tells `shared` whenever this breaker opens on its own failures.
    pub(crate) fn share(&self, shared: std::sync::Arc<dyn crate::SharedBreakers>) {
        let _ = self.shared.set(shared);
    }

    /// Opens the breaker for `open_for`, as another node's breaker for the
    /// same upstream did, unless it is open or probing already. After
    /// that, this node probes the upstream like after any opening.
    pub(crate) fn open_as_elsewhere(&self, open_for: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        if matches!(inner.state, State::Closed) && !open_for.is_zero() {
            self.transition(
                &mut inner,
                State::Open {
                    until: now + open_for,
                },
                now,
            );
        }
    }

    /// An opening of this breaker's own, for the other nodes.
    fn opened_here(&self) {
        if let Some(shared) = self.shared.get() {
            shared.opened(&self.shared_name(), self.open_for);
        }
    }

    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let inner = self.lock();
        let (calls, failure_rate) = self.window(&inner, now);
        let (state, retry_in) = match inner.state {
            // Due for half-open: the next call is a probe.
            State::Open { until } if until <= now => (BreakerState::HalfOpen, None),
            State::Open { until } => (BreakerState::Open, Some(until - now)),
            other => (other.public(), None),
        };
        BreakerSnapshot {
            state,
            failure_rate,
            calls,
            retry_in,
        }
    }

    fn transition(&self, inner: &mut Inner, to: State, now: Instant) {
        let from = inner.state.public();
        let (calls, rate) = self.window(inner, now);
        inner.state = to;
        inner.generation += 1;
        if matches!(to, State::Closed) {
            // A fresh start: the failures that opened it are history.
            inner.buckets = [Bucket::default(); BUCKETS as usize];
        }
        BreakerStateChanged {
            connector: &self.connector,
            key: self.key.as_deref(),
            from: Some(from),
            to: to.public(),
            failure_rate: rate,
            calls,
            open_for: self.open_for,
        }
        .emit();
        if let Some(watch) = self.watch.get()
            && from != to.public()
        {
            watch.changed(&self.connector, self.key.as_deref(), from, to.public());
        }
    }

    /// Calls and failure percentage over the window ending at `now`.
    fn window(&self, inner: &Inner, now: Instant) -> (u32, f64) {
        let current = self.epoch(now);
        let (calls, failures) = inner
            .buckets
            .iter()
            .filter(|b| b.epoch <= current && b.epoch + u64::from(BUCKETS) > current)
            .fold((0u32, 0u32), |(c, f), b| (c + b.calls, f + b.failures));
        let rate = if calls == 0 {
            0.0
        } else {
            f64::from(failures) * 100.0 / f64::from(calls)
        };
        (calls, rate)
    }

    fn epoch(&self, now: Instant) -> u64 {
        // Epoch 0 is reserved for empty buckets, hence the `+ 1`.
        (now.saturating_duration_since(self.started).as_nanos() / self.bucket_len.as_nanos()) as u64
            + 1
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is plain counters; a panic elsewhere cannot leave it
        // meaningfully half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.lock().state.public())
            .field("failure_rate", &self.threshold)
            .field("min_calls", &self.min_calls)
            .field("open_for", &self.open_for)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(min_calls: u32, half_open_calls: u32) -> Breaker {
        let config = CircuitBreakerConfig {
            min_calls,
            half_open_calls,
            window: Duration::from_secs(10).into(),
            open_for: Duration::from_secs(5).into(),
            ..CircuitBreakerConfig::default()
        };
        Breaker::build("crm", &config).unwrap().unwrap()
    }

    fn call(b: &Breaker, at: Instant, outcome: Outcome) -> Result<(), Duration> {
        let mut permit = b.admit_at(at)?;
        permit.settled = true;
        b.record_at(permit.generation, permit.probe, outcome, at);
        Ok(())
    }

    fn state(b: &Breaker) -> State {
        b.lock().state
    }

    /// The openings a breaker tells the other nodes of.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<(String, Duration)>>);

    impl crate::SharedBreakers for Told {
        fn opened(&self, connector: &str, open_for: Duration) {
            self.0
                .lock()
                .unwrap()
                .push((connector.to_string(), open_for));
        }
    }

    #[tokio::test]
    async fn its_own_openings_are_told_and_another_nodes_opening_holds_it_open() {
        let told = std::sync::Arc::new(Told::default());
        let b = breaker(2, 1);
        b.share(told.clone());
        let t = Instant::now();
        call(&b, t, Outcome::Failure).unwrap();
        call(&b, t, Outcome::Failure).unwrap();
        assert!(matches!(state(&b), State::Open { .. }));
        assert_eq!(
            *told.0.lock().unwrap(),
            [("crm".to_string(), Duration::from_secs(5))]
        );

        // Another node's opening: refused here too, for as long, and not
        // told back.
        let other = breaker(2, 1);
        other.share(told.clone());
        other.open_as_elsewhere(Duration::from_secs(3));
        let now = Instant::now();
        let wait = call(&other, now, Outcome::Success).unwrap_err();
        assert!(
            wait <= Duration::from_secs(3) && wait > Duration::from_secs(2),
            "{wait:?}"
        );
        assert_eq!(told.0.lock().unwrap().len(), 1);
        // Once it ends, this node probes on its own.
        call(&other, now + Duration::from_secs(4), Outcome::Success).unwrap();
        assert!(matches!(state(&other), State::Closed));
        // An opening of its own already in force is left alone.
        b.open_as_elsewhere(Duration::from_secs(60));
        let wait = call(&b, t + Duration::from_secs(1), Outcome::Success).unwrap_err();
        assert_eq!(wait, Duration::from_secs(4));
    }

    #[test]
    fn opens_only_with_enough_calls_and_failures() {
        let b = breaker(4, 1);
        let t = Instant::now();
        for _ in 0..3 {
            call(&b, t, Outcome::Failure).unwrap();
        }
        assert!(matches!(state(&b), State::Closed), "below min_calls");
        call(&b, t, Outcome::Success).unwrap();
        // 3 of 4 failed: 75% >= 50%.
        assert!(matches!(state(&b), State::Open { .. }));
        let wait = call(&b, t + Duration::from_secs(1), Outcome::Success).unwrap_err();
        assert_eq!(wait, Duration::from_secs(4));
    }

    #[test]
    fn successes_keep_it_closed_and_client_errors_are_not_failures() {
        let b = breaker(4, 1);
        let t = Instant::now();
        for outcome in [
            Outcome::Failure,
            Outcome::Success,
            Outcome::Success,
            Outcome::Success,
            Outcome::Ignored,
            Outcome::Ignored,
        ] {
            call(&b, t, outcome).unwrap();
        }
        assert!(matches!(state(&b), State::Closed));
        assert_eq!(b.window(&b.lock(), t), (4, 25.0));
    }

    #[test]
    fn old_failures_slide_out_of_the_window() {
        let b = breaker(4, 1);
        let t = Instant::now();
        for _ in 0..3 {
            call(&b, t, Outcome::Failure).unwrap();
        }
        let later = t + Duration::from_secs(11);
        call(&b, later, Outcome::Failure).unwrap();
        assert!(matches!(state(&b), State::Closed));
        assert_eq!(b.window(&b.lock(), later).0, 1);
    }

    #[test]
    fn half_open_probe_success_closes_failure_reopens() {
        let b = breaker(1, 1);
        let t = Instant::now();
        call(&b, t, Outcome::Failure).unwrap();
        assert!(matches!(state(&b), State::Open { .. }));

        let probe_time = t + Duration::from_secs(5);
        let probe = b.admit_at(probe_time).unwrap();
        assert!(probe.probe);
        assert!(b.admit_at(probe_time).is_err(), "one probe at a time");
        drop(probe);
        // An abandoned probe frees its slot.
        let probe = b.admit_at(probe_time).unwrap();
        let generation = probe.generation;
        std::mem::forget(probe);
        b.record_at(generation, true, Outcome::Failure, probe_time);
        assert!(
            matches!(state(&b), State::Open { until } if until == probe_time + Duration::from_secs(5))
        );

        let again = probe_time + Duration::from_secs(5);
        call(&b, again, Outcome::Success).unwrap();
        assert!(matches!(state(&b), State::Closed));
        assert_eq!(b.window(&b.lock(), again).0, 0, "closing resets the window");
    }

    #[test]
    fn stale_outcomes_do_not_flip_the_state() {
        let b = breaker(1, 1);
        let t = Instant::now();
        let mut early = b.admit_at(t).unwrap();
        early.settled = true;
        call(&b, t, Outcome::Failure).unwrap();
        // The early call ends after the breaker opened: ignored.
        b.record_at(early.generation, false, Outcome::Success, t);
        assert!(matches!(state(&b), State::Open { .. }));
    }

    #[test]
    fn disabled_or_invalid_configurations() {
        let off = CircuitBreakerConfig {
            enabled: false,
            ..CircuitBreakerConfig::default()
        };
        assert!(Breaker::build("crm", &off).unwrap().is_none());
        for bad in [
            CircuitBreakerConfig {
                failure_rate: 0.0,
                ..CircuitBreakerConfig::default()
            },
            CircuitBreakerConfig {
                failure_rate: 120.0,
                ..CircuitBreakerConfig::default()
            },
            CircuitBreakerConfig {
                min_calls: 0,
                ..CircuitBreakerConfig::default()
            },
            CircuitBreakerConfig {
                open_for: Duration::ZERO.into(),
                ..CircuitBreakerConfig::default()
            },
        ] {
            assert!(Breaker::build("crm", &bad).is_err(), "{bad:?}");
        }
    }
}
