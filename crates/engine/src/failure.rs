//! Why a step failed, kept typed from the failing kind to the journal.
//!
//! A step kind returns a [`StepError`] that holds its cause as the crate that
//! produced it typed it (an [`EvalError`], a connector [`FetchError`]...).
//! Two questions are asked of it, each answered by an exhaustive `match` with
//! no `_` arm, so that a new cause forces a decision: may the same step
//! succeed later ([`StepError::is_transient`], which reschedules the run),
//! and what class of failure is it ([`StepError::class`], stored in the
//! journal entry and shown by `runs show` and the API). Nothing downstream
//! reads an error's wording.

use patchbay_connector::{CallClass, FetchError};
use patchbay_expr::EvalError;

/// What kind of failure a step had. Its name is stored with the journal
/// entry (`error_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// A jq expression failed (`error(...)`, a type error, no output).
    Expression,
    /// A jq expression was stopped by its budget (steps, time, memory...).
    Budget,
    /// An expression's value does not fit where it goes (a `headers`
    /// expression that is not an object, a `for_each` that is not an array).
    InvalidValue,
    /// An upstream call failed; the connector's class says how.
    Upstream(CallClass),
    /// A result larger than the engine's size caps.
    TooLarge,
    /// A child run (`run_flow`) ended without success.
    ChildRun,
    /// The store failed while the step wrote to it (starting a child run).
    Store,
    /// A reply differed from its connector's contract, in `enforce` mode.
    Contract,
    /// A message broker did not take a published message.
    Broker,
    /// An SMTP server did not accept an e-mail.
    Mail,
    /// A `deliver` step's endpoint is disabled.
    EndpointDisabled,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Expression => "expression",
            FailureClass::Budget => "budget",
            FailureClass::InvalidValue => "invalid_value",
            FailureClass::Upstream(class) => class.as_str(),
            FailureClass::TooLarge => "too_large",
            FailureClass::ChildRun => "child_run",
            FailureClass::Store => "store",
            FailureClass::Contract => "contract",
            FailureClass::Broker => "broker",
            FailureClass::Mail => "mail",
            FailureClass::EndpointDisabled => "endpoint_disabled",
        }
    }
}

/// A failed step, item or call, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A jq expression of the step failed; `place` names it (`body`,
    /// `path`, `for_each`...).
    #[error("{place}: {source}")]
    Expression {
        place: String,
        #[source]
        source: EvalError,
    },
    /// An expression's value does not fit its place.
    #[error("{place} must produce {expected}, got {found}")]
    InvalidValue {
        place: String,
        expected: &'static str,
        found: &'static str,
    },
    /// The upstream call (or one page of it) failed, after the retries its
    /// policy allowed.
    #[error("{error}")]
    Upstream {
        error: Box<FetchError>,
        /// The journal's summary of the request (attempts, last status,
        /// pages), as a successful call's entry has it.
        request: Option<Box<serde_json::Value>>,
    },
    /// A result larger than the engine's caps; the message names the cap.
    #[error("{0}")]
    TooLarge(String),
    /// A child run ended without success.
    #[error("child run {run} of flow `{flow}` ended {status}{}", reason_suffix(.error))]
    ChildRun {
        flow: String,
        run: String,
        status: &'static str,
        error: Option<String>,
    },
    /// The store failed while the step wrote to it.
    #[error("the store failed: {0}")]
    Store(patchbay_store::StoreError),
    /// The reply differed from the connector's contract (`contract:
    /// enforce`); `violations` says where and how.
    #[error(
        "the {status} reply of `{operation}` breaks connector `{connector}`'s contract: {violations}"
    )]
    Contract {
        connector: String,
        operation: String,
        status: u16,
        violations: String,
    },
    /// A broker did not confirm a published message; `transient` when it
    /// may later (unreachable, no answer in time), not when it refused it
    /// (no stream takes the subject).
    #[error("{broker} did not take the message on `{target}`: {message}")]
    Broker {
        broker: &'static str,
        target: String,
        message: String,
        transient: bool,
    },
    /// An SMTP server did not accept an e-mail: unreachable, too slow or
    /// refusing for now (transient), or refusing for good, as an unknown
    /// recipient; or an address that is not one.
    #[error("the mail server {server} did not accept the message: {message}")]
    Mail {
        server: String,
        message: String,
        transient: bool,
    },
    /// A webhook endpoint did not take a delivery: no 2xx in time, or the
    /// request was not sent. `transient` when a later attempt may succeed,
    /// which for a receiver is any answer but `410 Gone`.
    #[error("delivery to endpoint `{endpoint}` failed: {error}")]
    Delivery {
        endpoint: String,
        error: Box<patchbay_connector::CallError>,
        transient: bool,
    },
    /// The endpoint failed every delivery for its `disable_after` period:
    /// deliveries to it stop until it is enabled again.
    #[error(
        "endpoint `{endpoint}` is disabled since {since}, after failing every delivery for its \
         `disable_after` period; enable it with `patchbay endpoints enable {endpoint}`, then \
         replay the run to deliver"
    )]
    EndpointDisabled { endpoint: String, since: String },
    /// One item of a `for_each` step failed.
    #[error("item {index}: {error}")]
    Item { index: u32, error: Box<StepError> },
    /// The step failed and so did a step of its fallback.
    #[error("{original}; fallback `{step}` failed too: {error}")]
    Fallback {
        original: Box<StepError>,
        step: String,
        error: Box<StepError>,
    },
}

fn reason_suffix(error: &Option<String>) -> String {
    error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

impl StepError {
    /// An expression's failure at `place`.
    pub fn expression(place: impl Into<String>, source: EvalError) -> StepError {
        StepError::Expression {
            place: place.into(),
            source,
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> FailureClass {
        match self {
            StepError::Expression { source, .. } => match source {
                EvalError::Exceeded(_) => FailureClass::Budget,
                EvalError::NoOutput
                | EvalError::Runtime(_)
                | EvalError::NotScalar { .. }
                | EvalError::UnsafeSegment { .. }
                | EvalError::TooDeep { .. } => FailureClass::Expression,
            },
            StepError::InvalidValue { .. } => FailureClass::InvalidValue,
            StepError::Upstream { error, .. } => FailureClass::Upstream(error.class()),
            StepError::TooLarge(_) => FailureClass::TooLarge,
            StepError::ChildRun { .. } => FailureClass::ChildRun,
            StepError::Store(_) => FailureClass::Store,
            StepError::Contract { .. } => FailureClass::Contract,
            StepError::Broker { .. } => FailureClass::Broker,
            StepError::Mail { .. } => FailureClass::Mail,
            StepError::Delivery { error, .. } => FailureClass::Upstream(error.class()),
            StepError::EndpointDisabled { .. } => FailureClass::EndpointDisabled,
            StepError::Item { error, .. } | StepError::Fallback { error, .. } => error.class(),
        }
    }

    /// Whether the same step may succeed later (upstream down, 5xx, 429,
    /// timeout, open breaker): only such failures reschedule the run.
    pub fn is_transient(&self) -> bool {
        match self {
            StepError::Upstream { error, .. } => match error.as_ref() {
                FetchError::Call { error, .. } => error.is_transient(),
                // An unusable page or GraphQL `errors`: the same request
                // would get the same answer.
                FetchError::Unusable { .. } | FetchError::Graphql { .. } => false,
            },
            // The same expression over the same input fails the same way,
            // and a child run has its own retries, already spent.
            StepError::Expression { .. }
            | StepError::InvalidValue { .. }
            | StepError::TooLarge(_)
            | StepError::ChildRun { .. } => false,
            // The upstream answered, and would answer the same again: a
            // retry only repeats the call's side effects.
            StepError::Contract { .. } => false,
            StepError::Broker { transient, .. }
            | StepError::Mail { transient, .. }
            | StepError::Delivery { transient, .. } => *transient,
            // Until an operator enables the endpoint again.
            StepError::EndpointDisabled { .. } => false,
            StepError::Store(e) => e.is_transient(),
            StepError::Item { error, .. } | StepError::Fallback { error, .. } => {
                error.is_transient()
            }
        }
    }
}

impl From<FetchError> for StepError {
    fn from(error: FetchError) -> Self {
        StepError::Upstream {
            error: Box::new(error),
            request: None,
        }
    }
}

impl StepError {
    /// An upstream failure with the summary of its request, for the
    /// journal; other failures are left as they are.
    pub(crate) fn with_request(self, summary: serde_json::Value) -> StepError {
        match self {
            StepError::Upstream { error, .. } => StepError::Upstream {
                error,
                request: Some(Box::new(summary)),
            },
            other => other,
        }
    }

    /// What the journal records of the request that failed, when the step
    /// kept a summary of it.
    pub(crate) fn request_summary(&self) -> Option<&serde_json::Value> {
        match self {
            StepError::Upstream { request, .. } => request.as_deref(),
            _ => None,
        }
    }
}

/// The JSON type of `value`, with its article, for messages.
pub(crate) fn type_name(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
