//! Putting a set of connectors in service: their gauges describe them.
//!
//! Building a connector sets its breaker-state gauge, but not every build
//! goes into service: `patchbay check` builds connectors to find their
//! problems, and a reload that fails or changes nothing throws its build
//! away. Whoever puts a set of connectors in service (the engine at start
//! and after each reload) calls [`Connectors::publish_gauges`], so the
//! gauges follow the connectors that take calls.

use std::time::Duration;

use crate::breaker::BreakerState;
use crate::connector::Connectors;
use crate::events::BreakerStateChanged;

impl Connectors {
    /// Sets each connector's breaker-state gauge to its breaker's state.
    pub fn publish_gauges(&self) {
        for name in self.names() {
            let Some(connector) = self.get(name) else {
                continue;
            };
            // Keyed breakers have no gauge of their own: the connector's
            // says it has breakers, and they start closed.
            let state = match connector.breakers.single() {
                Some(breaker) => breaker.state,
                None if connector.breakers.is_keyed() => BreakerState::Closed,
                None => BreakerState::Disabled,
            };
            BreakerStateChanged {
                connector: name,
                key: None,
                from: None,
                to: state,
                failure_rate: 0.0,
                calls: 0,
                open_for: Duration::ZERO,
            }
            .emit();
        }
    }
}
