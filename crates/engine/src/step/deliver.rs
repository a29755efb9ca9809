//! `deliver: CONNECTOR`: an outgoing webhook. The event (or `body`) is
//! POSTed to the connector's endpoint, signed as the connector's `sign`
//! says (Standard Webhooks by default for webhooks: `webhook-id` is the
//! step's idempotency key, the same on every attempt), and counts as
//! delivered on any 2xx within the connector's `timeout`, whatever the body.
//!
//! Failed attempts follow the step's own `retry_schedule` (by default the
//! one the established providers use: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h after the first attempt), durably: the run gives its worker back
//! between attempts, as with a `wait`, and every attempt is a journal
//! entry. Any answer but a 2xx is retried, 4xx included (a receiver's
//! deploy gone wrong answers 404 for an hour), except `410 Gone`.
//!
//! Each endpoint (the connector) has a record in the store: a failing spell
//! that lasts `disable_after` (5 days by default) disables it, and
//! deliveries to a disabled endpoint fail at once, without a request, until
//! `patchbay endpoints enable` (or the API) enables it again; their dead
//! runs are then replayed to redeliver.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_config::{HumanDuration, Located};
use patchbay_connector::{CallError, CallRequest, RetryPolicy};
use patchbay_expr::Expr;
use patchbay_store::DeliveryAttempt;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

/// After the first attempt: immediately, then these (Svix's schedule,
/// which Standard Webhooks senders commonly follow).
const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 86_400);
/// Longer schedules would keep a message pending for months.
const MAX_ATTEMPTS: usize = 50;

/// `deliver`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The connector of the receiving endpoint: its base URL, `sign`,
    /// `timeout`, TLS and headers.
    deliver: Located<String>,
    /// The path under the connector's base URL (default: the base URL
    /// itself).
    #[serde(default)]
    path: Option<Located<String>>,
    /// jq: the payload (default `.`, the event or the `for_each` item).
    #[serde(default)]
    body: Option<Located<String>>,
    /// jq: more headers, an object.
    #[serde(default)]
    headers: Option<Located<String>>,
    /// Delays before each attempt after the first (default `[5s, 5m, 30m,
    /// 2h, 5h, 10h, 10h]`: 8 attempts over about 27 hours).
    #[serde(default)]
    retry_schedule: Option<Located<Vec<HumanDuration>>>,
    /// How long an endpoint may fail every attempt before it is disabled
    /// (default `5d`).
    #[serde(default)]
    disable_after: Option<Located<HumanDuration>>,
}

#[derive(Debug)]
pub(crate) struct Deliver {
    connector: String,
    path: String,
    body: Option<Expr>,
    headers: Option<Expr>,
    schedule: Arc<[Duration]>,
    disable_after: Duration,
}

impl Kind for Deliver {
    const KEY: &'static str = "deliver";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let known = compiler.known_connector(&config.deliver, &config.deliver.value);
        let path = match &config.path {
            None => String::new(),
            Some(path) if path.value.starts_with('/') => path.value.clone(),
            Some(path) => {
                compiler.error(path, format!("path `{}` must start with `/`", path.value));
                return None;
            }
        };
        let schedule: Arc<[Duration]> = match &config.retry_schedule {
            None => DEFAULT_SCHEDULE.into(),
            Some(schedule) if schedule.value.len() >= MAX_ATTEMPTS => {
                compiler.error(
                    schedule,
                    format!(
                        "retry_schedule lists {} delays; at most {} attempts in all",
                        schedule.value.len(),
                        MAX_ATTEMPTS
                    ),
                );
                return None;
            }
            Some(schedule) => schedule.value.iter().map(|d| d.0).collect(),
        };
        let disable_after = match &config.disable_after {
            None => DEFAULT_DISABLE_AFTER,
            Some(period) if period.value.0.is_zero() => {
                compiler.error(period, "disable_after must be longer than 0s".into());
                return None;
            }
            Some(period) => period.value.0,
        };
        let body = compiler.optional("body", config.body.as_ref());
        let headers = compiler.optional("headers", config.headers.as_ref());
        if !known {
            return None;
        }
        Some(Deliver {
            connector: config.deliver.value,
            path,
            body: body?,
            headers: headers?,
            schedule,
            disable_after,
        })
    }
}

/// What an attempt's outcome means for the message and for the endpoint.
enum Verdict {
    Delivered(u16),
    /// The endpoint did not take it; `transient` when a later attempt may.
    Refused {
        transient: bool,
    },
    /// Not the endpoint's doing (a rate limit, an open breaker, a request
    /// that cannot be built or may not be sent there): the endpoint's
    /// record is left alone.
    NotSent {
        transient: bool,
    },
}

fn verdict(error: &CallError) -> Verdict {
    match error {
        // Any 2xx is an acceptance, whatever came with it.
        CallError::InvalidResponse { status, .. }
        | CallError::BrokenResponse {
            status: Some(status),
            ..
        } if (200..300).contains(status) => Verdict::Delivered(*status),
        // The receiver says the endpoint is gone for good.
        CallError::Status { status: 410, .. } => Verdict::Refused { transient: false },
        CallError::Status { .. }
        | CallError::Timeout { .. }
        | CallError::Connect { .. }
        | CallError::BrokenResponse { .. }
        | CallError::InvalidResponse { .. } => Verdict::Refused { transient: true },
        CallError::Auth { transient, .. } => Verdict::Refused {
            transient: *transient,
        },
        CallError::RateLimited { .. } | CallError::CircuitOpen { .. } => {
            Verdict::NotSent { transient: true }
        }
        CallError::InvalidRequest { .. }
        | CallError::AddressRefused { .. }
        | CallError::RedirectRefused { .. } => Verdict::NotSent { transient: false },
    }
}

#[async_trait]
impl Step for Deliver {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let connector = cx.connector(&self.connector)?;
        let store = &cx.executor.store;
        if let Some(record) = store
            .endpoint(&self.connector)
            .await
            .map_err(StepError::Store)?
            && let Some(since) = record.disabled_at
        {
            return Err(StepError::EndpointDisabled {
                endpoint: self.connector.clone(),
                since: since.to_rfc3339(),
            });
        }
        let body = match &self.body {
            Some(expr) => cx.eval("body", expr).await?,
            None => cx.input.clone(),
        };
        let headers = match &self.headers {
            Some(expr) => cx.pairs("headers", expr).await?,
            None => Vec::new(),
        };
        let message_id = cx.default_idempotency_key();
        let request = CallRequest {
            method: "POST".into(),
            path: self.path.clone(),
            query: Vec::new(),
            headers,
            body: Some(body),
            idempotency_key: Some(message_id.clone()),
            rate_key: cx.rate_key(&self.connector).await?,
            breaker_key: cx.breaker_key(&self.connector, "POST", &self.path).await?,
        };
        let shown = connector.summarize(&request);
        let at = cx.now();
        // One request per attempt: the schedule, not the connector's quick
        // retries, spaces them.
        let single = RetryPolicy {
            attempts: 1,
            ..connector.retry_policy()
        };
        // The status if it answered, and why it was not delivered: the
        // error with whether a later attempt may do better, and whether the
        // endpoint (not a rate limit or the configuration) is to blame.
        let (status, failure) = match connector.send(&request, single).await {
            Ok(delivered) => (Some(delivered.response.status), None),
            Err(undelivered) => match verdict(&undelivered.error) {
                Verdict::Delivered(status) => (Some(status), None),
                Verdict::Refused { transient } => (
                    undelivered.error.status(),
                    Some((undelivered.error, transient, true)),
                ),
                Verdict::NotSent { transient } => {
                    (None, Some((undelivered.error, transient, false)))
                }
            },
        };
        let endpoint_to_blame = failure.as_ref().is_none_or(|(_, _, blamed)| *blamed);
        let mut disabled_now = None;
        if endpoint_to_blame {
            let attempt = DeliveryAttempt {
                endpoint: self.connector.clone(),
                at,
                delivered: failure.is_none(),
                status,
                error: failure
                    .as_ref()
                    .map(|(e, _, _)| cx.executor.mask(&e.to_string())),
                disable_after: self.disable_after,
            };
            match store.record_delivery(&attempt).await {
                Ok(record) if failure.is_some() => disabled_now = record.disabled_at,
                Ok(_) => {}
                // The delivery itself is what matters: a lost record only
                // delays a disabling.
                Err(e) => warn!(endpoint = %self.connector, error = %e, "delivery not recorded"),
            }
        }
        let Some((error, transient, _)) = failure else {
            return Ok(Performed {
                output: json!({
                    "delivered": true,
                    "status": status,
                    "message_id": message_id,
                }),
                request: Some(shown),
                reply: None,
            });
        };
        if let Some(since) = disabled_now {
            warn!(
                endpoint = %self.connector,
                since = %since,
                "endpoint disabled: every delivery failed for its disable_after period"
            );
            return Err(StepError::EndpointDisabled {
                endpoint: self.connector.clone(),
                since: since.to_rfc3339(),
            });
        }
        Err(StepError::Delivery {
            endpoint: self.connector.clone(),
            error: Box::new(error),
            transient,
        })
    }

    fn retry_schedule(&self) -> Option<Arc<[Duration]>> {
        Some(self.schedule.clone())
    }

    fn describe(&self) -> Description {
        Description {
            connector: Some(self.connector.clone()),
            method: Some("POST".into()),
            path: Some(self.path.clone()),
            expression: self.body.as_ref().map(|body| body.source().into()),
            ..Description::default()
        }
    }
}
