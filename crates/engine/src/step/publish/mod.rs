//! `publish: {BROKER: {…}}`, with `body`, `headers` and `message_id`: a
//! message handed to a broker, which confirms it before the step succeeds.
//! One file per broker, each owning its settings, its connection and how
//! it keeps a copy out:
//!
//! - [`nats`]: a NATS JetStream stream, by subject; the stream drops a copy
//!   by its `Nats-Msg-Id`.
//! - [`redis_stream`]: a Redis stream; a copy within the dedupe window is
//!   not added.
//! - [`amqp`]: an AMQP 0-9-1 exchange, with publisher confirms; a copy
//!   carries the same `message-id`, by which consumers drop it.
//! - [`mqtt`]: an MQTT 5 topic at QoS 1; a copy carries the same
//!   `message-id` user property, by which consumers drop it.
//!
//! At least once, never twice: a step repeated after a crash or a retry
//! publishes the same message again with the same message id (by default
//! the run, the step and the item, as a call's idempotency key), and the
//! broker's side drops the copy and answers `duplicate: true` (or, for
//! AMQP and MQTT, whose servers keep no ids, the consumer drops it). The body is
//! sent as JSON; its jq expression defaults to `.`.
//!
//! Adding a broker is a file here and a variant of [`Target`].

mod amqp;
mod mqtt;
mod nats;
mod redis_stream;

use std::fmt;

use async_trait::async_trait;
use patchbay_config::Located;
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::{Value, json};

use super::context::scalar_text;
use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

/// `publish`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where the message goes.
    publish: Located<Target>,
    /// jq: the message's body, sent as JSON (default `.`).
    #[serde(default)]
    body: Option<Located<String>>,
    /// jq: an object of headers to send with the message.
    #[serde(default)]
    headers: Option<Located<String>>,
    /// jq: the message's id, by which the broker's side drops a copy
    /// (default: the run, the step and the item).
    #[serde(default)]
    message_id: Option<Located<String>>,
}

/// The broker a message goes to.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Target {
    /// A NATS JetStream stream, by one of its subjects.
    Nats(nats::Settings),
    /// A Redis stream.
    Redis(redis_stream::Settings),
    /// An AMQP 0-9-1 exchange (RabbitMQ).
    Amqp(amqp::Settings),
    /// An MQTT 5 topic.
    Mqtt(mqtt::Settings),
}

/// A message ready to go.
struct Message {
    body: Value,
    headers: Vec<(String, String)>,
    id: String,
}

impl Message {
    fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).unwrap_or_default()
    }
}

/// A broker's side of the step: where the message goes and how.
#[async_trait]
trait Broker: fmt::Debug + Send + Sync {
    /// The key that names the destination in the journal (`subject`,
    /// `stream`) and its value.
    fn destination(&self) -> (&'static str, &str);

    /// Sends `message` and waits for the broker's confirmation; the step's
    /// result.
    async fn send(&self, message: &Message) -> Result<Value, StepError>;
}

pub(crate) struct Publish {
    broker: Box<dyn Broker>,
    body: Option<Expr>,
    headers: Option<Expr>,
    message_id: Option<Expr>,
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

fn boxed<B: Broker + 'static>(broker: B) -> Box<dyn Broker> {
    Box::new(broker)
}

impl Kind for Publish {
    const KEY: &'static str = "publish";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let broker = match config.publish.value {
            Target::Nats(settings) => nats::NatsStream::compile(settings, compiler).map(boxed),
            Target::Redis(settings) => {
                redis_stream::RedisStream::compile(settings, compiler).map(boxed)
            }
            Target::Amqp(settings) => amqp::AmqpExchange::compile(settings, compiler).map(boxed),
            Target::Mqtt(settings) => mqtt::MqttTopic::compile(settings, compiler).map(boxed),
        };
        let body = compiler.optional("body", config.body.as_ref());
        let headers = compiler.optional("headers", config.headers.as_ref());
        let message_id = compiler.optional("message_id", config.message_id.as_ref());
        Some(Publish {
            broker: broker?,
            body: body?,
            headers: headers?,
            message_id: message_id?,
        })
    }
}

#[async_trait]
impl Step for Publish {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let body = match &self.body {
            Some(expr) => cx.eval("body", expr).await?,
            None => cx.input.clone(),
        };
        let id = match &self.message_id {
            Some(expr) => scalar_text(&cx.eval("message_id", expr).await?),
            None => cx.default_idempotency_key(),
        };
        let headers = match &self.headers {
            Some(expr) => cx.pairs("headers", expr).await?,
            None => Vec::new(),
        };
        let message = Message { body, headers, id };
        let (key, destination) = self.broker.destination();
        let request = json!({ key: destination, "message_id": message.id, "body": message.body });
        let output = self.broker.send(&message).await?;
        Ok(Performed {
            output,
            request: Some(request),
            reply: None,
        })
    }

    fn describe(&self) -> Description {
        Description {
            path: Some(self.broker.destination().1.to_string()),
            expression: self.body.as_ref().map(|body| body.source().into()),
            ..Description::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn report(step: &str) -> String {
        crate::test_support::problems(
            "notify",
            &format!("trigger: {{ manual: {{}} }}\nsteps:\n{step}"),
        )
    }

    #[test]
    fn an_unknown_broker_is_named_with_the_known_ones() {
        let found = report("  - publish: { kafka: { url: 'kafka://x', topic: t } }\n");
        assert!(found.contains("flows/notify.yaml:3:"), "{found}");
        assert!(found.contains("kafka"), "{found}");
        for known in ["nats", "redis", "amqp", "mqtt"] {
            assert!(found.contains(known), "{known:?} missing from:\n{found}");
        }
    }

    #[test]
    fn a_message_is_sent_as_json() {
        let message = Message {
            body: json!({ "id": 7 }),
            headers: Vec::new(),
            id: "m".into(),
        };
        assert_eq!(message.payload(), br#"{"id":7}"#);
    }
}
