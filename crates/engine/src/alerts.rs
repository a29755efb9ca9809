//! Alert events and the flows they fire: a run that ends dead, a circuit
//! breaker that opens or closes, a connector whose calls fail too often.
//! Whoever sees one (the executor, a connector's breaker) hands it to
//! [`AlertSender`]; error rates are read from the connectors' health every
//! [`ERROR_RATE_CHECK`]. A task of the engine
//! starts a run of every flow whose `event` trigger asks for it
//! ([`crate::trigger::AlertSubscription`]), at most once per dedupe window
//! for the same event and subject (flow or connector).
//!
//! The window holds twice: the node remembers when it last fired each
//! alert (exact on one node), and each run carries the dedupe key
//! `event:ALERT-FLOW:EVENT:SUBJECT:WINDOW-NUMBER` (the window counted from
//! the epoch), so nodes sharing a store fire one run per window between
//! them. Runs of alert flows raise no `run_dead` alert, so a failing alert
//! flow cannot feed itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use patchbay_connector::{BreakerState, Connectors};
use patchbay_store::{Clock, NewRun};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::intake::Intake;
use crate::plan::Plan;
use crate::trigger::AlertSubscription;

/// Something an alert flow may fire on.
#[derive(Clone, Debug)]
pub(crate) enum AlertEvent {
    /// A run ended dead.
    RunDead {
        flow: String,
        run: String,
        error: Option<String>,
    },
    /// A connector's circuit breaker opened (from closed or half-open).
    /// `key` names a keyed breaker (`circuit_breaker.key`).
    BreakerOpened {
        connector: String,
        key: Option<String>,
    },
    /// A connector's circuit breaker closed again after probing.
    BreakerClosed {
        connector: String,
        key: Option<String>,
    },
    /// A connector's calls of the last five minutes failed at this rate
    /// (a percentage), over `calls` calls.
    ErrorRate {
        connector: String,
        percent: f64,
        calls: u64,
    },
    /// A connector's reply differed from its contract in a way never
    /// recorded before.
    Drift {
        connector: String,
        operation: String,
        response: String,
        pointer: String,
        expected: String,
        seen: String,
    },
}

/// How often the connectors' error rates are read.
pub(crate) const ERROR_RATE_CHECK: Duration = Duration::from_secs(5);
/// Calls a connector must have made in the last five minutes before its
/// error rate is judged: one failed call of two is not an outage.
pub(crate) const ERROR_RATE_MIN_CALLS: u64 = 10;

impl AlertEvent {
    /// The event's name under `event.on`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            AlertEvent::RunDead { .. } => "run_dead",
            AlertEvent::BreakerOpened { .. } => "breaker_open",
            AlertEvent::BreakerClosed { .. } => "breaker_closed",
            AlertEvent::ErrorRate { .. } => "error_rate",
            AlertEvent::Drift { .. } => "drift",
        }
    }

    /// What the event is about: a flow, or a connector.
    pub(crate) fn subject(&self) -> &str {
        match self {
            AlertEvent::RunDead { flow, .. } => flow,
            AlertEvent::BreakerOpened { connector, .. }
            | AlertEvent::BreakerClosed { connector, .. }
            | AlertEvent::ErrorRate { connector, .. }
            | AlertEvent::Drift { connector, .. } => connector,
        }
    }

    /// What one alert is about within the window: the subject, and a keyed
    /// breaker's key, so two endpoints' breakers opening alert twice.
    fn instance(&self) -> String {
        match self {
            AlertEvent::BreakerOpened {
                connector,
                key: Some(key),
            }
            | AlertEvent::BreakerClosed {
                connector,
                key: Some(key),
            } => format!("{connector}[{key}]"),
            _ => self.subject().to_string(),
        }
    }

    /// The alert run's input.
    fn input(&self, at: DateTime<Utc>) -> Value {
        let mut input = match self {
            AlertEvent::RunDead { flow, run, error } => {
                json!({ "flow": flow, "run": run, "error": error })
            }
            AlertEvent::BreakerOpened { connector, key }
            | AlertEvent::BreakerClosed { connector, key } => match key {
                Some(key) => json!({ "connector": connector, "key": key }),
                None => json!({ "connector": connector }),
            },
            AlertEvent::ErrorRate {
                connector,
                percent,
                calls,
            } => json!({ "connector": connector, "error_rate": percent, "calls": calls }),
            AlertEvent::Drift {
                connector,
                operation,
                response,
                pointer,
                expected,
                seen,
            } => json!({
                "connector": connector,
                "operation": operation,
                "response": response,
                "pointer": pointer,
                "expected": expected,
                "seen": seen,
            }),
        };
        input["event"] = json!(self.name());
        input["at"] = json!(at.to_rfc3339());
        input
    }
}

/// Where alert events go; cheap to clone, never blocks.
#[derive(Clone)]
pub(crate) struct AlertSender(mpsc::UnboundedSender<AlertEvent>);

impl AlertSender {
    pub(crate) fn raise(&self, event: AlertEvent) {
        // Gone only once the engine stops: then nobody is to be alerted.
        let _ = self.0.send(event);
    }
}

impl patchbay_connector::BreakerWatch for AlertSender {
    fn changed(&self, connector: &str, key: Option<&str>, from: BreakerState, to: BreakerState) {
        let connector = connector.to_string();
        let key = key.map(str::to_string);
        match (from, to) {
            (_, BreakerState::Open) => self.raise(AlertEvent::BreakerOpened { connector, key }),
            (BreakerState::HalfOpen | BreakerState::Open, BreakerState::Closed) => {
                self.raise(AlertEvent::BreakerClosed { connector, key })
            }
            // Half-open is a breaker testing the water, and a breaker
            // built closed or disabled has nothing to tell.
            (_, BreakerState::HalfOpen | BreakerState::Closed | BreakerState::Disabled) => {}
        }
    }
}

/// What alert events are judged against: the plan in force (its `event`
/// flows) and its connectors (their error rates).
pub(crate) struct AlertScope {
    pub plan: Arc<Plan>,
    pub connectors: Connectors,
}

/// The task that turns alert events into runs of alert flows.
pub(crate) struct AlertDispatcher {
    events: mpsc::UnboundedReceiver<AlertEvent>,
    scope: Arc<ArcSwap<AlertScope>>,
    intake: Intake,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    /// When each (alert flow, event, subject) last fired on this node.
    fired: HashMap<(String, &'static str, String), DateTime<Utc>>,
}

/// A sender and the dispatcher that serves it.
pub(crate) fn channel(
    scope: Arc<ArcSwap<AlertScope>>,
    intake: Intake,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> (AlertSender, AlertDispatcher) {
    let (sender, events) = mpsc::unbounded_channel();
    (
        AlertSender(sender),
        AlertDispatcher {
            events,
            scope,
            intake,
            clock,
            shutdown,
            fired: HashMap::new(),
        },
    )
}

impl AlertDispatcher {
    pub(crate) async fn run(mut self) {
        let mut check = tokio::time::interval(ERROR_RATE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.dispatch(&event).await,
                    None => return,
                },
                _ = check.tick() => self.check_error_rates().await,
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Raises an `error_rate` event for each connector whose calls of the
    /// last five minutes failed, when some alert flow listens for one.
    async fn check_error_rates(&mut self) {
        let scope = self.scope.load_full();
        let listened = scope.plan.flows.values().any(|flow| {
            flow.trigger
                .alert()
                .is_some_and(AlertSubscription::wants_error_rates)
        });
        if !listened {
            return;
        }
        for name in scope.connectors.names() {
            let Some(connector) = scope.connectors.get(name) else {
                continue;
            };
            let recent = connector.health().recent;
            if recent.calls >= ERROR_RATE_MIN_CALLS && recent.errors > 0 {
                let event = AlertEvent::ErrorRate {
                    connector: name.to_string(),
                    percent: recent.error_rate * 100.0,
                    calls: recent.calls,
                };
                self.dispatch(&event).await;
            }
        }
    }

    async fn dispatch(&mut self, event: &AlertEvent) {
        let plan = self.scope.load().plan.clone();
        if let AlertEvent::RunDead { flow, .. } = event
            && plan
                .flows
                .get(flow)
                .is_some_and(|dead| dead.trigger.alert().is_some())
        {
            return;
        }
        let now = self.clock.now();
        for alert_flow in plan.flows.values() {
            let Some(subscription) = alert_flow.trigger.alert() else {
                continue;
            };
            if !subscription.wants(event) {
                continue;
            }
            let window =
                chrono::Duration::from_std(subscription.window).unwrap_or(chrono::Duration::MAX);
            let key = (alert_flow.name.clone(), event.name(), event.instance());
            if self
                .fired
                .get(&key)
                .is_some_and(|last| now - *last < window)
            {
                continue;
            }
            let window_number = now.timestamp_millis() / window.num_milliseconds().max(1);
            let run = NewRun {
                id: uuid::Uuid::now_v7(),
                flow: alert_flow.name.clone(),
                trigger: "event".into(),
                input: event.input(now),
                headers: json!({}),
                config_version: plan.version.clone(),
                dedupe_key: Some(format!(
                    "event:{}:{}:{}:{window_number}",
                    alert_flow.name,
                    event.name(),
                    event.instance()
                )),
                parent: None,
                lease: None,
            };
            match self.intake.submit(run).await {
                Ok(outcome) => {
                    self.fired.insert(key, now);
                    info!(flow = %alert_flow.name, event = event.name(), subject = event.subject(),
                        run_id = %outcome.run_id(), "alert flow fired");
                }
                Err(e) => warn!(flow = %alert_flow.name, event = event.name(), error = %e,
                    "alert run not committed"),
            }
        }
    }
}
