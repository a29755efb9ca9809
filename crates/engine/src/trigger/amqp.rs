//! `amqp: {url, queue, …}`: a flow fed by an AMQP 0-9-1 queue (RabbitMQ),
//! through a consumer with manual acknowledgements (`lapin`).
//!
//! Accepted means durable, as for a webhook: the server hands out at most
//! `prefetch` unacknowledged messages (`basic.qos`); those that have
//! arrived are taken together, each becomes a run, and only once the runs
//! are committed (one group commit) is each message acknowledged. A node
//! that dies before it acknowledges leaves its messages to the server,
//! which requeues them when the connection drops and delivers them to
//! another consumer. A message whose run cannot be committed is handed
//! back (`basic.nack` with requeue) after a second's pause: backpressure
//! reaches the queue, not the node's memory.
//!
//! AMQP has no id of its own for a message: its `message-id` property,
//! set by the publisher (Patchbay's `publish: amqp` sets it), is the dedupe
//! key, `amqp:QUEUE:MESSAGE-ID`, so a message delivered again after its run
//! was committed is only acknowledged. A message without one can make a
//! second run when the node dies between the commit and the
//! acknowledgement.
//!
//! The queue must exist: queues, their bindings and their durability are
//! the operator's. A missing queue or a lost connection is retried with a
//! backoff of up to 5 s. The run's input is the body as JSON (its text when
//! it is not JSON, `null` when empty); `$headers` holds the message's
//! headers, lowercased, with `amqp-exchange`, `amqp-routing-key`,
//! `amqp-redelivered` and, when set, `amqp-message-id` and `content-type`.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use patchbay_config::{Env, Located};
use patchbay_store::NewRun;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use super::{Kind, SourceContext, Trigger, TriggerCompiler, payload_input};

const DEFAULT_PREFETCH: u16 = 100;
/// How long the node pauses before it hands back a message whose run was
/// not committed.
const NOT_COMMITTED_PAUSE: Duration = Duration::from_secs(1);

/// `amqp:` under `trigger:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpTrigger {
    /// The server: `amqp://USER:PASSWORD@HOST:PORT/VHOST` (`amqps://` for
    /// TLS; the default vhost `/` is written `%2f`). `${env:…}` and
    /// `${secret:…}` are resolved.
    pub url: Located<String>,
    /// The queue to consume; it must exist.
    pub queue: Located<String>,
    /// Most messages the server hands out before it hears back; they are
    /// committed and acknowledged together (default 100).
    #[serde(default)]
    pub prefetch: Option<Located<u16>>,
}

/// A compiled AMQP trigger.
#[derive(Clone)]
pub(crate) struct Amqp {
    /// `None` when the plan is never served (no environment to resolve it).
    url: Option<String>,
    queue: String,
    prefetch: u16,
}

impl std::fmt::Debug for Amqp {
    // The URL holds a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amqp")
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

impl Kind for Amqp {
    const KEY: &'static str = "amqp";
    type Config = AmqpTrigger;

    fn compile(config: AmqpTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = true;
        if config.queue.value.trim().is_empty() {
            compiler.error(
                config.queue.line,
                config.queue.column,
                "amqp.queue is empty".into(),
            );
            ok = false;
        }
        if let Some(prefetch) = config.prefetch.as_ref().filter(|p| p.value == 0) {
            compiler.error(
                prefetch.line,
                prefetch.column,
                "amqp.prefetch must be at least 1 (0 would let the server send without limit)"
                    .into(),
            );
            ok = false;
        }
        let url = resolve_address("amqp.url", &config.url.value, compiler.env)
            .map_err(|message| compiler.error(config.url.line, config.url.column, message))
            .ok()?;
        if !ok {
            return None;
        }
        Some(Amqp {
            url,
            queue: config.queue.value,
            prefetch: config.prefetch.map_or(DEFAULT_PREFETCH, |p| p.value),
        })
    }
}

/// An AMQP server address as written at `key`, its `${env:…}` and
/// `${secret:…}` resolved: `Ok(None)` without an environment (the plan
/// never runs, so nothing is resolved), or a sentence naming the problem,
/// never the address (it holds a password).
pub(crate) fn resolve_address(
    key: &str,
    written: &str,
    env: Option<&dyn Env>,
) -> Result<Option<String>, String> {
    super::resolve_broker_address(
        key,
        written,
        env,
        &["amqp://", "amqps://"],
        |url| url.parse::<lapin::uri::AMQPUri>().is_ok(),
        "an AMQP server address (`amqp://USER:PASSWORD@HOST:PORT/VHOST`, or `amqps://` for TLS)",
    )
}

impl Trigger for Amqp {
    fn describe(&self) -> Map<String, Value> {
        [
            ("queue", json!(self.queue)),
            ("prefetch", json!(self.prefetch)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        let url = self.url.clone()?;
        Some(self.clone().consume(url, cx).boxed())
    }
}

/// Why a session with the server ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Server(#[from] lapin::Error),
    #[error("the server cancelled the consumer (the queue was deleted?)")]
    Cancelled,
}

impl Amqp {
    /// Consumes until shutdown, reconnecting after a lost session.
    async fn consume(self, url: String, cx: SourceContext) {
        super::consume_reconnecting(&cx, "AMQP", &self.queue, || self.session(&url, &cx)).await;
    }

    async fn session(
        &self,
        url: &str,
        cx: &SourceContext,
    ) -> Result<std::convert::Infallible, SessionError> {
        // The connection lives as long as the session; dropping it closes
        // it, and the server requeues what was not acknowledged.
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        info!(flow = %cx.flow, queue = %self.queue, prefetch = self.prefetch,
            "consuming from AMQP queue");
        loop {
            let Some(first) = consumer.next().await else {
                return Err(SessionError::Cancelled);
            };
            let mut deliveries = vec![first?];
            // Whatever else has arrived goes into the same commit.
            while deliveries.len() < usize::from(self.prefetch) {
                match consumer.next().now_or_never() {
                    Some(Some(delivery)) => deliveries.push(delivery?),
                    Some(None) => return Err(SessionError::Cancelled),
                    None => break,
                }
            }
            self.settle(deliveries, cx).await?;
        }
    }

    /// Commits a run per message, all at once (one group commit), then
    /// acknowledges each message whose run is durable and hands back the
    /// others.
    async fn settle(
        &self,
        deliveries: Vec<Delivery>,
        cx: &SourceContext,
    ) -> Result<(), SessionError> {
        let runs = deliveries
            .iter()
            .map(|delivery| cx.intake.submit(self.run_of(delivery, cx)));
        let outcomes = futures::future::join_all(runs).await;
        let mut committed = Vec::with_capacity(deliveries.len());
        let mut refused = Vec::new();
        for (delivery, outcome) in deliveries.into_iter().zip(outcomes) {
            match outcome {
                Ok(_) => committed.push(delivery),
                Err(e) => {
                    warn!(flow = %cx.flow, queue = %self.queue, error = %e,
                        "message's run not committed; handed back to the queue");
                    refused.push(delivery);
                }
            }
        }
        let acks = committed
            .iter()
            .map(|delivery| delivery.ack(BasicAckOptions::default()));
        for acked in futures::future::join_all(acks).await {
            acked?;
        }
        if !refused.is_empty() {
            tokio::time::sleep(NOT_COMMITTED_PAUSE).await;
            for delivery in refused {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                if let Err(e) = delivery.nack(requeue).await {
                    debug!(flow = %cx.flow, error = %e,
                        "hand-back not sent; the server requeues the message when the channel closes");
                }
            }
        }
        Ok(())
    }

    /// The run a message starts.
    fn run_of(&self, delivery: &Delivery, cx: &SourceContext) -> NewRun {
        let properties = &delivery.properties;
        let mut headers: Map<String, Value> = properties
            .headers()
            .iter()
            .flat_map(|table| table.inner().iter())
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    json!(header_text(value)),
                )
            })
            .collect();
        headers.insert("amqp-exchange".into(), json!(delivery.exchange.as_str()));
        headers.insert(
            "amqp-routing-key".into(),
            json!(delivery.routing_key.as_str()),
        );
        headers.insert(
            "amqp-redelivered".into(),
            json!(delivery.redelivered.to_string()),
        );
        let message_id = properties.message_id().as_ref().map(|id| id.as_str());
        if let Some(id) = message_id {
            headers.insert("amqp-message-id".into(), json!(id));
        }
        if let Some(content_type) = properties.content_type() {
            headers.insert("content-type".into(), json!(content_type.as_str()));
        }
        NewRun {
            id: uuid::Uuid::now_v7(),
            flow: cx.flow.clone(),
            trigger: Self::KEY.into(),
            input: payload_input(&delivery.data),
            headers: Value::Object(headers),
            config_version: cx.config_version.clone(),
            dedupe_key: message_id.map(|id| format!("amqp:{}:{id}", self.queue)),
            parent: None,
            lease: None,
        }
    }
}

/// A header's value as text.
fn header_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(text) => String::from_utf8_lossy(text.as_bytes()).into_owned(),
        AMQPValue::ShortString(text) => text.as_str().to_string(),
        AMQPValue::Boolean(flag) => flag.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::header_text;
    use lapin::types::AMQPValue;

    fn report(settings: &str) -> String {
        crate::test_support::trigger_problems("amqp", settings)
    }

    #[test]
    fn a_valid_trigger_compiles_and_describes_itself() {
        let flow = "trigger: { amqp: { url: 'amqp://guest:guest@127.0.0.1:5672/%2f', queue: orders } }\n\
                    steps:\n  - transform: .\n";
        let build = crate::test_support::build("orders", flow).expect("valid");
        let plan = build.plan.flows["orders"].trigger.describe();
        assert_eq!(plan["queue"], "orders");
        assert_eq!(plan["prefetch"], 100);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report("    url: 'http://rabbit:5672'\n    queue: ' '\n    prefetch: 0\n");
        for expected in [
            "flows/orders.yaml:3:",
            "amqp.url is not an AMQP server address",
            "flows/orders.yaml:4:",
            "amqp.queue is empty",
            "flows/orders.yaml:5:",
            "amqp.prefetch must be at least 1",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let found = report("    url: 'amqp://me:hunter2@rabbit:notaport/%2f'\n    queue: q\n");
        assert!(found.contains("amqp.url is not"), "{found}");
        assert!(!found.contains("hunter2"), "{found}");
    }

    #[test]
    fn headers_are_text() {
        assert_eq!(
            header_text(&AMQPValue::LongString("tenant-a".into())),
            "tenant-a"
        );
        assert_eq!(header_text(&AMQPValue::LongLongInt(7)), "7");
        assert_eq!(header_text(&AMQPValue::Boolean(true)), "true");
    }
}
