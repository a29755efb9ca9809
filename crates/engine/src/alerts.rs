//! Alert events and the flows they fire: a run that ends dead, a circuit
//! breaker that opens or closes. Whoever sees one (the executor, a
//! connector's breaker) hands it to [`AlertSender`]; a task of the engine
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

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use patchbay_connector::BreakerState;
use patchbay_store::{Clock, NewRun};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::intake::Intake;
use crate::plan::Plan;

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
    BreakerOpened { connector: String },
    /// A connector's circuit breaker closed again after probing.
    BreakerClosed { connector: String },
}

impl AlertEvent {
    /// The event's name under `event.on`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            AlertEvent::RunDead { .. } => "run_dead",
            AlertEvent::BreakerOpened { .. } => "breaker_open",
            AlertEvent::BreakerClosed { .. } => "breaker_closed",
        }
    }

    /// What the event is about: a flow, or a connector.
    pub(crate) fn subject(&self) -> &str {
        match self {
            AlertEvent::RunDead { flow, .. } => flow,
            AlertEvent::BreakerOpened { connector } | AlertEvent::BreakerClosed { connector } => {
                connector
            }
        }
    }

    /// The alert run's input.
    fn input(&self, at: DateTime<Utc>) -> Value {
        let mut input = match self {
            AlertEvent::RunDead { flow, run, error } => {
                json!({ "flow": flow, "run": run, "error": error })
            }
            AlertEvent::BreakerOpened { connector } | AlertEvent::BreakerClosed { connector } => {
                json!({ "connector": connector })
            }
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
    fn changed(&self, connector: &str, from: BreakerState, to: BreakerState) {
        let connector = connector.to_string();
        match (from, to) {
            (_, BreakerState::Open) => self.raise(AlertEvent::BreakerOpened { connector }),
            (BreakerState::HalfOpen | BreakerState::Open, BreakerState::Closed) => {
                self.raise(AlertEvent::BreakerClosed { connector })
            }
            // Half-open is a breaker testing the water, and a breaker
            // built closed or disabled has nothing to tell.
            (_, BreakerState::HalfOpen | BreakerState::Closed | BreakerState::Disabled) => {}
        }
    }
}

/// The task that turns alert events into runs of alert flows.
pub(crate) struct AlertDispatcher {
    events: mpsc::UnboundedReceiver<AlertEvent>,
    /// The plan in force, whose `event` flows are asked.
    plan: Arc<ArcSwap<Plan>>,
    intake: Intake,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    /// When each (alert flow, event, subject) last fired on this node.
    fired: HashMap<(String, &'static str, String), DateTime<Utc>>,
}

/// A sender and the dispatcher that serves it.
pub(crate) fn channel(
    plan: Arc<ArcSwap<Plan>>,
    intake: Intake,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> (AlertSender, AlertDispatcher) {
    let (sender, events) = mpsc::unbounded_channel();
    (
        AlertSender(sender),
        AlertDispatcher {
            events,
            plan,
            intake,
            clock,
            shutdown,
            fired: HashMap::new(),
        },
    )
}

impl AlertDispatcher {
    pub(crate) async fn run(mut self) {
        loop {
            let event = tokio::select! {
                event = self.events.recv() => event,
                () = self.shutdown.cancelled() => return,
            };
            let Some(event) = event else { return };
            self.dispatch(&event).await;
        }
    }

    async fn dispatch(&mut self, event: &AlertEvent) {
        let plan = self.plan.load_full();
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
            let key = (
                alert_flow.name.clone(),
                event.name(),
                event.subject().to_string(),
            );
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
                    event.subject()
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
