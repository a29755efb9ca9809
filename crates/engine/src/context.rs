//! The values a run's expressions see: `.`, `$event`, `$steps`, `$state`,
//! `$headers`.

use patchbay_expr::{Budget, Vars};
use serde_json::{Map, Value};

/// What a run has accumulated so far.
#[derive(Clone, Debug)]
pub(crate) struct RunContext {
    /// The triggering event (`.` for top-level steps, `$event` everywhere).
    pub event: Value,
    /// Webhook request headers (`$headers`), lowercased names.
    pub headers: Value,
    /// Results of completed steps by id (`$steps`); always an object.
    pub steps: Value,
    /// The flow's persistent state (`$state`).
    pub state: Value,
}

impl RunContext {
    pub fn new(event: Value, headers: Value, state: Value) -> Self {
        RunContext {
            event,
            headers,
            steps: Value::Object(Map::new()),
            state,
        }
    }

    /// The variables, for evaluations under `budget`.
    pub fn vars(&self, budget: Budget) -> Vars<'_> {
        Vars {
            event: &self.event,
            steps: &self.steps,
            state: &self.state,
            headers: &self.headers,
            budget,
        }
    }

    pub fn record(&mut self, step_id: &str, output: Value) {
        if let Value::Object(steps) = &mut self.steps {
            steps.insert(step_id.to_string(), output);
        }
    }
}
