//! `event: {on, flows, connectors, error_rate, window}`: an alert flow,
//! fired by what happens to the other flows and connectors: a run that
//! ends dead (`run_dead`), a circuit breaker that opens (`breaker_open`) or
//! closes again (`breaker_closed`), a connector whose calls of the last
//! five minutes fail at `error_rate` or more (`error_rate`). The run's input names the event, the flow and
//! run or the connector, the error and the instant; the same event about
//! the same flow or connector fires the flow at most once per `window`, so
//! an outage that kills a thousand runs sends one alert. See
//! [`crate::alerts`] for how events become runs.

use std::time::Duration;

use patchbay_config::{HumanDuration, Located, Percent};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, Trigger, TriggerCompiler};
use crate::alerts::AlertEvent;

const DEFAULT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The error rate, in percent, that fires `error_rate` by default.
const DEFAULT_ERROR_RATE: f64 = 50.0;

/// An event an alert flow may fire on.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// A run of another flow ended dead.
    RunDead,
    /// A connector's circuit breaker opened.
    BreakerOpen,
    /// A connector's circuit breaker closed again.
    BreakerClosed,
    /// A connector's calls failed at `error_rate` or more.
    ErrorRate,
    /// A connector's reply differed from its contract in a new way.
    Drift,
}

impl EventName {
    fn as_str(self) -> &'static str {
        match self {
            EventName::RunDead => "run_dead",
            EventName::BreakerOpen => "breaker_open",
            EventName::BreakerClosed => "breaker_closed",
            EventName::ErrorRate => "error_rate",
            EventName::Drift => "drift",
        }
    }
}

/// `event:` under `trigger:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// The events that fire the flow.
    pub on: Located<Vec<EventName>>,
    /// Whose dead runs (default: every flow but alert flows).
    #[serde(default)]
    pub flows: Option<Vec<String>>,
    /// Whose breakers and error rates (default: every connector).
    #[serde(default)]
    pub connectors: Option<Vec<String>>,
    /// The share of a connector's calls of the last five minutes (at
    /// least 10 of them) that must fail to fire `error_rate` (default 50%).
    #[serde(default)]
    pub error_rate: Option<Located<Percent>>,
    /// The same event about the same flow or connector fires the flow at
    /// most once within this time (default 10m).
    #[serde(default)]
    pub window: Option<Located<HumanDuration>>,
}

/// What a compiled `event` trigger listens for.
#[derive(Clone, Debug)]
pub(crate) struct AlertSubscription {
    on: Vec<EventName>,
    flows: Option<Vec<String>>,
    connectors: Option<Vec<String>>,
    /// In percent.
    error_rate: f64,
    pub(crate) window: Duration,
}

impl AlertSubscription {
    /// Whether the flow listens for error rates at all.
    pub(crate) fn wants_error_rates(&self) -> bool {
        self.on.contains(&EventName::ErrorRate)
    }

    /// Whether `event` fires the flow.
    pub(crate) fn wants(&self, event: &AlertEvent) -> bool {
        let (name, subjects) = match event {
            AlertEvent::RunDead { .. } => (EventName::RunDead, &self.flows),
            AlertEvent::BreakerOpened { .. } => (EventName::BreakerOpen, &self.connectors),
            AlertEvent::BreakerClosed { .. } => (EventName::BreakerClosed, &self.connectors),
            AlertEvent::ErrorRate { percent, .. } => {
                if *percent < self.error_rate {
                    return false;
                }
                (EventName::ErrorRate, &self.connectors)
            }
            AlertEvent::Drift { .. } => (EventName::Drift, &self.connectors),
        };
        self.on.contains(&name)
            && subjects
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == event.subject()))
    }
}

impl Kind for AlertSubscription {
    const KEY: &'static str = "event";
    type Config = EventTrigger;

    fn compile(config: EventTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = true;
        if config.on.value.is_empty() {
            compiler.error(
                config.on.line,
                config.on.column,
                "event.on lists no event (`run_dead`, `breaker_open`, `breaker_closed`, \
                 `error_rate`, `drift`)"
                    .into(),
            );
            ok = false;
        }
        let window = config
            .window
            .as_ref()
            .map_or(DEFAULT_WINDOW, |window| window.value.0);
        if let Some(written) = config.window.as_ref().filter(|_| window.is_zero()) {
            compiler.error(
                written.line,
                written.column,
                "event.window must be longer than 0s (it is how often one alert may repeat)".into(),
            );
            ok = false;
        }
        let error_rate = config
            .error_rate
            .as_ref()
            .map_or(DEFAULT_ERROR_RATE, |rate| rate.value.0);
        if let Some(written) = config
            .error_rate
            .as_ref()
            .filter(|_| !(error_rate > 0.0 && error_rate <= 100.0))
        {
            compiler.error(
                written.line,
                written.column,
                "event.error_rate must be above 0% and at most 100%".into(),
            );
            ok = false;
        }
        ok.then_some(AlertSubscription {
            on: config.on.value,
            flows: config.flows,
            connectors: config.connectors,
            error_rate,
            window,
        })
    }
}

impl Trigger for AlertSubscription {
    fn describe(&self) -> Map<String, Value> {
        let on: Vec<&str> = self.on.iter().map(|name| name.as_str()).collect();
        [
            ("on", json!(on)),
            ("flows", json!(self.flows)),
            ("connectors", json!(self.connectors)),
            ("error_rate_percent", json!(self.error_rate)),
            ("window_seconds", json!(self.window.as_secs())),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn alert(&self) -> Option<&AlertSubscription> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(settings: &str) -> String {
        crate::test_support::trigger_problems("event", settings)
    }

    fn subscription(on: &[EventName], flows: Option<&[&str]>) -> AlertSubscription {
        AlertSubscription {
            on: on.to_vec(),
            flows: flows.map(|names| names.iter().map(|n| n.to_string()).collect()),
            connectors: None,
            error_rate: DEFAULT_ERROR_RATE,
            window: DEFAULT_WINDOW,
        }
    }

    #[test]
    fn a_valid_trigger_compiles_and_describes_itself() {
        let flow = "trigger: { event: { on: [run_dead, breaker_open], flows: [orders] } }\n\
                    steps:\n  - transform: .\n";
        let build = crate::test_support::build("alerts", flow).expect("valid");
        let plan = build.plan.flows["alerts"].trigger.describe();
        assert_eq!(plan["on"], json!(["run_dead", "breaker_open"]));
        assert_eq!(plan["flows"], json!(["orders"]));
        assert_eq!(plan["window_seconds"], 600);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report("    on: []\n    window: 0s\n    error_rate: 120%\n");
        for expected in [
            "flows/orders.yaml:3:",
            "event.on lists no event",
            "flows/orders.yaml:4:",
            "event.window must be longer than 0s",
            "flows/orders.yaml:5:",
            "event.error_rate must be above 0% and at most 100%",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
        let found = report("    on: [run_died]\n");
        assert!(found.contains("run_died"), "{found}");
    }

    #[test]
    fn events_are_matched_by_name_and_subject() {
        let dead = AlertEvent::RunDead {
            flow: "orders".into(),
            run: "r".into(),
            error: None,
        };
        let opened = AlertEvent::BreakerOpened {
            connector: "crm".into(),
            key: None,
        };
        assert!(subscription(&[EventName::RunDead], None).wants(&dead));
        assert!(subscription(&[EventName::RunDead], Some(&["orders"])).wants(&dead));
        assert!(!subscription(&[EventName::RunDead], Some(&["sync"])).wants(&dead));
        assert!(!subscription(&[EventName::BreakerClosed], None).wants(&opened));
        assert!(subscription(&[EventName::BreakerOpen], None).wants(&opened));
        let failing = |percent| AlertEvent::ErrorRate {
            connector: "crm".into(),
            percent,
            calls: 40,
        };
        let rates = subscription(&[EventName::ErrorRate], None);
        assert!(rates.wants(&failing(50.0)));
        assert!(!rates.wants(&failing(49.9)));
        assert!(!subscription(&[EventName::RunDead], None).wants(&failing(100.0)));
    }
}
