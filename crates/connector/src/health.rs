//! [`Connector::health`]: how a connector's upstream is doing, for health
//! checks, the dashboard and metrics.
//!
//! Health keeps no state of its own: a report is read, when asked for, from
//! the parts of the send pipeline ([`crate::send`]) that remember: the
//! circuit breaker (state, failure rate, when it next lets a probe through),
//! the throttle (the configured rate, any pause the upstream asked for) and
//! the last hour of calls ([`crate::recent`]: counts, latencies, the last
//! error, the upstream's own quota headers). Reading is synchronous and
//! takes each part's lock only for a copy, so a health check never waits
//! behind a call in flight.
//!
//! Rate-limit headroom is derived from the recent calls (the share of the
//! configured limit the last minute left unused), not asked of the limiter.

use std::time::Duration;

use serde::Serialize;

use crate::breaker::BreakerState;
use crate::connector::Connector;
use crate::recent::{LastError, MinuteStats, RecentSummary, UpstreamQuota};

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
    /// A keyed connector's breakers (`circuit_breaker.key`), open ones
    /// first; empty otherwise. `breaker` is then the worst of their states
    /// (closed while there are none), and the rate and counts are the
    /// worst breaker's.
    pub keyed_breakers: Vec<crate::KeyedBreaker>,
    /// When the pause the upstream asked for ends, while one is in force.
    pub paused_until: Option<std::time::Instant>,
    /// Calls of the last five minutes.
    pub recent: RecentSummary,
    pub last_error: Option<LastError>,
    pub rate_limit: RateLimitHeadroom,
    /// The newest deprecation or sunset notice the upstream gave.
    pub deprecation: Option<crate::deprecation::DeprecationNotice>,
    /// The API version the connector pins, if it pins one.
    pub api_version: Option<String>,
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
    /// The circuit breaker's state, any pause the upstream asked for, and
    /// how calls went lately.
    pub fn health(&self) -> ConnectorHealth {
        let keyed_breakers = self.breakers.keyed();
        let worst = keyed_breakers.iter().max_by(|a, b| {
            crate::breakers::severity(a.state)
                .cmp(&crate::breakers::severity(b.state))
                .then(a.failure_rate.total_cmp(&b.failure_rate))
        });
        let breaker = match (self.breakers.single(), worst) {
            (Some(one), _) => Some(one),
            (None, Some(worst)) => Some(crate::breaker::BreakerSnapshot {
                state: worst.state,
                failure_rate: worst.failure_rate,
                calls: worst.calls,
                retry_in: worst.retry_in,
            }),
            (None, None) if self.breakers.is_keyed() => Some(crate::breaker::BreakerSnapshot {
                state: BreakerState::Closed,
                failure_rate: 0.0,
                calls: 0,
                retry_in: None,
            }),
            (None, None) => None,
        };
        let limit_per_second = self.throttle.per_second();
        let last_minute = self.recent.summary(1);
        ConnectorHealth {
            breaker: breaker.map_or(BreakerState::Disabled, |b| b.state),
            failure_rate: breaker.map_or(0.0, |b| b.failure_rate),
            calls_in_window: breaker.map_or(0, |b| b.calls),
            breaker_retry_in: breaker.and_then(|b| b.retry_in),
            keyed_breakers,
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
            deprecation: self.notices.newest(),
            api_version: self.api_version.clone(),
        }
    }

    /// Calls per minute over the last `window` minutes (at most
    /// [`WINDOW_MINUTES`](crate::WINDOW_MINUTES)), minutes without calls
    /// left out.
    pub fn recent_minutes(&self, window: usize) -> Vec<MinuteStats> {
        self.recent.minutes(window)
    }
}
