//! Patchbay expressions: jq programs, run by jaq, compiled once when the configuration loads
//! and evaluated against a run's context many times afterwards.
//!
//! One expression language serves every place a flow computes something: request bodies,
//! filters, dedupe keys, pagination cursors and the `{…}` holes of a request path. Inside
//! an expression `.` is the input (the event, or the current item of a `for_each`), and the
//! rest of the run context is reachable through the variables listed in [`VARIABLES`].
//!
//! - [`Expr`] is one compiled jq program; [`Expr::eval`] takes its first output.
//! - [`Template`] is a string with `{jq}` holes, such as `/customers/{.id}/orders`.
//! - [`CompileError`] carries an offset so configuration errors can point at a line and
//!   column; [`EvalError`] says why an evaluation produced nothing usable.
//!
//! The crate is pure on purpose: no I/O, no async, no configuration types. It parses
//! operator-written text that may be wrong in any way, so every input path returns an error
//! rather than panicking, and inputs that would recurse deeply are refused up front.

#![forbid(unsafe_code)]

mod budget;
mod diagnostics;
mod error;
mod expr;
mod nesting;
mod reads;
mod template;
mod value;

use serde_json::Value;

pub use budget::{Budget, Limit, MemoryProbe, memory_is_metered, set_memory_probe};
pub use error::{CompileError, EvalError};
pub use expr::{Expr, mentions, mentions_field};
pub use nesting::MAX_NESTING;
pub use reads::{Read, Root, Segment, object_keys, output, reads};
pub use template::Template;
pub use value::MAX_OUTPUT_DEPTH;

/// Names of the variables every expression may use (as `$event`, `$steps`, …), in the
/// order [`Vars`] lists them.
///
/// - `event`: the event that started the run, unchanged by `for_each`.
/// - `steps`: outputs of earlier steps, by step id.
/// - `state`: the flow's persisted state.
/// - `headers`: headers of the request that delivered the event.
/// - `query`: the query string of that request, as an object.
pub const VARIABLES: [&str; 5] = ["event", "steps", "state", "headers", "query"];

/// Values of the [`VARIABLES`] for one evaluation, and the [`Budget`] it runs under.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// `$event`
    pub event: &'a Value,
    /// `$steps`
    pub steps: &'a Value,
    /// `$state`
    pub state: &'a Value,
    /// `$headers`
    pub headers: &'a Value,
    /// `$query`
    pub query: &'a Value,
    /// Limits of every evaluation made with these variables.
    pub budget: Budget,
}

static NULL: Value = Value::Null;

impl Default for Vars<'_> {
    /// Every variable bound to `null`, for expressions evaluated outside a run.
    fn default() -> Self {
        Vars {
            event: &NULL,
            steps: &NULL,
            state: &NULL,
            headers: &NULL,
            query: &NULL,
            budget: Budget::UNLIMITED,
        }
    }
}
