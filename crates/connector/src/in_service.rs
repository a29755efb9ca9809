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
            let state = connector
                .breaker
                .as_ref()
                .map_or(BreakerState::Disabled, |breaker| breaker.snapshot().state);
            BreakerStateChanged {
                connector: name,
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
