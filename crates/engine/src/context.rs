//! The values a run's expressions see: `.`, `$event`, `$steps`, `$state`,
//! `$headers`, `$query`.
//!
//! A webhook's query string is stored with the run's request headers,
//! under [`QUERY_KEY`], a name no HTTP header can have (a header name is a
//! token, and `:` is not a token character): it is part of the request
//! that delivered the event, as the headers are, and travels, is redacted
//! and is kept with them. The context takes it out of `$headers` again.

use patchbay_expr::{Budget, Vars};
use serde_json::{Map, Value};

/// Where a webhook's query string is kept among the run's request headers.
pub const QUERY_KEY: &str = ":query";

/// What a run has accumulated so far.
#[derive(Clone, Debug)]
pub(crate) struct RunContext {
    /// The triggering event (`.` for top-level steps, `$event` everywhere).
    pub event: Value,
    /// Webhook request headers (`$headers`), lowercased names.
    pub headers: Value,
    /// The webhook request's query string (`$query`): an object, `{}`
    /// without one.
    pub query: Value,
    /// Results of completed steps by id (`$steps`); always an object.
    pub steps: Value,
    /// The flow's persistent state (`$state`).
    pub state: Value,
}

impl RunContext {
    /// `headers` as stored with the run: the query string, if any, is
    /// taken out of them into `$query`.
    pub fn new(event: Value, mut headers: Value, state: Value) -> Self {
        let query = match &mut headers {
            Value::Object(map) => map.remove(QUERY_KEY),
            _ => None,
        };
        RunContext {
            event,
            headers,
            query: query.unwrap_or_else(|| Value::Object(Map::new())),
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
            query: &self.query,
            budget,
        }
    }

    pub fn record(&mut self, step_id: &str, output: Value) {
        if let Value::Object(steps) = &mut self.steps {
            steps.insert(step_id.to_string(), output);
        }
    }
}
