//! A connector's circuit breakers: none (`circuit_breaker: off`), one for
//! every call, or one per key (`circuit_breaker.key`), so an endpoint (or
//! a tenant) that keeps failing opens its own breaker and leaves the
//! connector's other calls alone.
//!
//! The key is evaluated by whoever builds the call (the engine, over the
//! call's method and path template and the run's variables) and travels in
//! [`crate::CallRequest::breaker_key`]. Keyed breakers are made on first
//! use and kept in a bounded map: when it is full, breakers that are
//! closed with nothing in their window are forgotten, and should none be,
//! the calls of new keys share one overflow breaker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use patchbay_config::CircuitBreakerConfig;

use crate::breaker::{Breaker, BreakerSnapshot};

/// Most keyed breakers a connector keeps.
const MOST_KEYS: usize = 1_000;

/// The key the calls of new keys share once [`MOST_KEYS`] are in use.
pub const OVERFLOW_KEY: &str = "(other keys)";

pub(crate) enum Breakers {
    Off,
    One(Arc<Breaker>),
    /// Boxed: rare, and large beside the others.
    Keyed(Box<Keyed>),
}

pub(crate) struct Keyed {
    connector: String,
    config: CircuitBreakerConfig,
    breakers: Mutex<HashMap<String, Arc<Breaker>>>,
    /// Given to every breaker made from now on (and those made already).
    shared: OnceLock<Arc<dyn crate::SharedBreakers>>,
    watch: OnceLock<Arc<dyn crate::BreakerWatch>>,
}

/// One keyed breaker, for health reports.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedBreaker {
    pub key: String,
    pub state: crate::BreakerState,
    /// Percentage of failed calls in its window.
    pub failure_rate: f64,
    /// Calls counted in its window.
    pub calls: u32,
    /// While open: how long until it lets a probe through.
    pub retry_in: Option<std::time::Duration>,
}

impl Breakers {
    pub(crate) fn build(connector: &str, config: &CircuitBreakerConfig) -> Result<Self, String> {
        let Some(breaker) = Breaker::build(connector, config)? else {
            return Ok(Breakers::Off);
        };
        if config.key.is_none() {
            return Ok(Breakers::One(Arc::new(breaker)));
        }
        Ok(Breakers::Keyed(Box::new(Keyed {
            connector: connector.to_string(),
            config: config.clone(),
            breakers: Mutex::default(),
            shared: OnceLock::new(),
            watch: OnceLock::new(),
        })))
    }

    /// The breaker a call with `key` goes through; a keyed connector's
    /// call without a key has the empty key.
    pub(crate) fn get(&self, key: Option<&str>) -> Option<Arc<Breaker>> {
        match self {
            Breakers::Off => None,
            Breakers::One(breaker) => Some(Arc::clone(breaker)),
            Breakers::Keyed(keyed) => Some(keyed.get(key.unwrap_or_default())),
        }
    }

    /// The breaker other nodes named `key` (of a keyed connector), made if
    /// this node has not used it yet.
    pub(crate) fn get_named(&self, key: Option<&str>) -> Option<Arc<Breaker>> {
        match (self, key) {
            (Breakers::One(breaker), None) => Some(Arc::clone(breaker)),
            (Breakers::Keyed(keyed), Some(key)) => Some(keyed.get(key)),
            // The other node's configuration differs (a rolling change):
            // its breaker is not this one.
            (Breakers::Off, _) | (Breakers::One(_), Some(_)) | (Breakers::Keyed(_), None) => None,
        }
    }

    pub(crate) fn share(&self, shared: Arc<dyn crate::SharedBreakers>) {
        match self {
            Breakers::Off => {}
            Breakers::One(breaker) => breaker.share(shared),
            Breakers::Keyed(keyed) => {
                if keyed.shared.set(Arc::clone(&shared)).is_ok() {
                    for breaker in keyed.lock().values() {
                        breaker.share(Arc::clone(&shared));
                    }
                }
            }
        }
    }

    pub(crate) fn watch(&self, watch: Arc<dyn crate::BreakerWatch>) {
        match self {
            Breakers::Off => {}
            Breakers::One(breaker) => breaker.watch(watch),
            Breakers::Keyed(keyed) => {
                if keyed.watch.set(Arc::clone(&watch)).is_ok() {
                    for breaker in keyed.lock().values() {
                        breaker.watch(Arc::clone(&watch));
                    }
                }
            }
        }
    }

    /// The connector's one breaker, for health reports; `None` when it
    /// has none or is keyed.
    pub(crate) fn single(&self) -> Option<BreakerSnapshot> {
        match self {
            Breakers::One(breaker) => Some(breaker.snapshot()),
            Breakers::Off | Breakers::Keyed(_) => None,
        }
    }

    /// Every keyed breaker, open ones first, then by key.
    pub(crate) fn keyed(&self) -> Vec<KeyedBreaker> {
        let Breakers::Keyed(keyed) = self else {
            return Vec::new();
        };
        let breakers: Vec<Arc<Breaker>> = keyed.lock().values().cloned().collect();
        let mut listed: Vec<KeyedBreaker> = breakers
            .iter()
            .map(|breaker| {
                let snapshot = breaker.snapshot();
                KeyedBreaker {
                    key: breaker.key().unwrap_or_default().to_string(),
                    state: snapshot.state,
                    failure_rate: snapshot.failure_rate,
                    calls: snapshot.calls,
                    retry_in: snapshot.retry_in,
                }
            })
            .collect();
        listed.sort_by(|a, b| {
            severity(b.state)
                .cmp(&severity(a.state))
                .then_with(|| a.key.cmp(&b.key))
        });
        listed
    }

    pub(crate) fn is_keyed(&self) -> bool {
        matches!(self, Breakers::Keyed(_))
    }
}

/// Open before half-open before closed.
pub(crate) fn severity(state: crate::BreakerState) -> u8 {
    match state {
        crate::BreakerState::Open => 3,
        crate::BreakerState::HalfOpen => 2,
        crate::BreakerState::Closed => 1,
        crate::BreakerState::Disabled => 0,
    }
}

impl Keyed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Breaker>>> {
        // A map of breakers; a panic elsewhere cannot leave it half-written.
        self.breakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Arc<Breaker> {
        let mut breakers = self.lock();
        if let Some(breaker) = breakers.get(key) {
            return Arc::clone(breaker);
        }
        if breakers.len() >= MOST_KEYS {
            // Only breakers no call holds and that remember nothing go.
            breakers.retain(|_, breaker| Arc::strong_count(breaker) > 1 || !breaker.is_idle());
        }
        let key = if breakers.len() >= MOST_KEYS {
            OVERFLOW_KEY
        } else {
            key
        };
        let breaker = breakers.entry(key.to_string()).or_insert_with(|| {
            let breaker = Breaker::keyed(&self.connector, key.to_string(), &self.config);
            if let Some(shared) = self.shared.get() {
                breaker.share(Arc::clone(shared));
            }
            if let Some(watch) = self.watch.get() {
                breaker.watch(Arc::clone(watch));
            }
            Arc::new(breaker)
        });
        Arc::clone(breaker)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keyed(min_calls: u32) -> Breakers {
        let config = CircuitBreakerConfig {
            min_calls,
            key: Some(patchbay_config::Located::unlocated(
                "'\\(.method) \\(.path)'".into(),
            )),
            window: Duration::from_secs(10).into(),
            open_for: Duration::from_secs(5).into(),
            ..CircuitBreakerConfig::default()
        };
        Breakers::build("crm", &config).unwrap()
    }

    fn fail(breakers: &Breakers, key: &str) {
        let breaker = breakers.get(Some(key)).unwrap();
        if let Ok(permit) = breaker.admit() {
            permit.record(crate::breaker::Outcome::Failure);
        }
    }

    #[tokio::test]
    async fn each_key_opens_on_its_own_failures() {
        let breakers = keyed(2);
        fail(&breakers, "GET /broken");
        fail(&breakers, "GET /broken");
        assert!(breakers.get(Some("GET /broken")).unwrap().admit().is_err());
        assert!(breakers.get(Some("GET /fine")).unwrap().admit().is_ok());
        let listed = breakers.keyed();
        assert_eq!(listed[0].key, "GET /broken");
        assert_eq!(listed[0].state, crate::BreakerState::Open);
        assert_eq!(listed[1].key, "GET /fine");
        assert_eq!(listed[1].state, crate::BreakerState::Closed);
        assert_eq!(breakers.single(), None);
    }

    #[tokio::test]
    async fn a_full_map_forgets_idle_breakers_and_overflows_into_one() {
        let breakers = keyed(1);
        for n in 0..MOST_KEYS {
            fail(&breakers, &format!("GET /{n}"));
        }
        // Every breaker is open: a new key shares the overflow breaker.
        let extra = breakers.get(Some("GET /new")).unwrap();
        assert_eq!(extra.key(), Some(OVERFLOW_KEY));
        drop(extra);

        let idle = keyed(1);
        for n in 0..MOST_KEYS {
            drop(idle.get(Some(&format!("GET /{n}"))));
        }
        // Idle breakers make room.
        let fresh = idle.get(Some("GET /new")).unwrap();
        assert_eq!(fresh.key(), Some("GET /new"));
        assert_eq!(idle.keyed().len(), 1);
    }
}
