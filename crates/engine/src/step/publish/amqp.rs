//! `publish: {amqp: {url, exchange, routing_key, timeout}}`: a message
//! published to an AMQP 0-9-1 exchange (RabbitMQ) with publisher confirms:
//! the step succeeds once the server confirms it took the message.
//!
//! The message is persistent (delivery mode 2), its content type
//! `application/json`, and it carries its id as the `message-id` property.
//! RabbitMQ keeps no record of ids, so a step repeated after a crash or a
//! retry publishes a second copy with the same `message-id`; a consumer
//! that deduplicates by it (Patchbay's `amqp` trigger does) makes one run
//! of both. The message is `mandatory`: one that no queue takes is returned
//! by the server and fails the step for good. The step's result: `{exchange,
//! routing_key, message_id}`.
//!
//! The connection and channel are the step's, opened at its first publish
//! and opened again after they break. No confirmation within `timeout`, a
//! refused message (`nack`) or a lost connection is transient.

use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use patchbay_config::{HumanDuration, Located};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Broker, Message};
use crate::failure::StepError;
use crate::step::Compiler;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const BROKER: &str = "AMQP";
/// AMQP's delivery mode of a message the server writes to disk.
const PERSISTENT: u8 = 2;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    /// The server: `amqp://USER:PASSWORD@HOST:PORT/VHOST` (`amqps://` for
    /// TLS); `${env:…}` and `${secret:…}` are resolved.
    url: Located<String>,
    /// The exchange (default `""`, the default exchange, which routes to
    /// the queue named by the routing key).
    #[serde(default)]
    exchange: Option<Located<String>>,
    /// The routing key.
    routing_key: Located<String>,
    /// How long to wait for the connection and for the server's
    /// confirmation (default 10s).
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// The open connection and its channel in confirm mode.
struct Session {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

pub(super) struct AmqpExchange {
    /// `None` when the plan never runs (no environment to resolve it).
    url: Option<String>,
    exchange: String,
    routing_key: String,
    timeout: Duration,
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for AmqpExchange {
    // The URL holds a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpExchange")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AmqpExchange {
    pub(super) fn compile(target: Settings, compiler: &mut Compiler<'_>) -> Option<Self> {
        let url = crate::trigger::resolve_amqp_address(
            "publish.amqp.url",
            &target.url.value,
            compiler.env(),
        )
        .map_err(|message| compiler.error(&target.url, message))
        .ok()?;
        Some(AmqpExchange {
            url,
            exchange: target.exchange.map(|e| e.value).unwrap_or_default(),
            routing_key: target.routing_key.value,
            timeout: target.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            session: Mutex::new(None),
        })
    }

    fn failure(&self, message: String, transient: bool) -> StepError {
        let target = if self.exchange.is_empty() {
            self.routing_key.clone()
        } else {
            format!("{} {}", self.exchange, self.routing_key)
        };
        StepError::Broker {
            broker: BROKER,
            target,
            message,
            transient,
        }
    }

    /// The step's channel, opened on first use and after it broke.
    async fn channel(&self) -> Result<Channel, StepError> {
        let Some(url) = &self.url else {
            return Err(self.failure("the plan has no broker address".into(), false));
        };
        let mut session = self.session.lock().await;
        if let Some(open) = session.as_ref().filter(|s| s.channel.status().connected()) {
            return Ok(open.channel.clone());
        }
        let opened = async {
            let connection = Connection::connect(url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>(Session {
                _connection: connection,
                channel,
            })
        };
        // The error names the server's answer, never the URL.
        let opened = match tokio::time::timeout(self.timeout, opened).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(self.failure(format!("cannot connect: {e}"), true)),
            Err(_) => {
                return Err(self.failure(format!("cannot connect within {:?}", self.timeout), true));
            }
        };
        let channel = opened.channel.clone();
        *session = Some(opened);
        Ok(channel)
    }
}

#[async_trait]
impl Broker for AmqpExchange {
    fn destination(&self) -> (&'static str, &str) {
        ("routing_key", &self.routing_key)
    }

    async fn send(&self, message: &Message) -> Result<Value, StepError> {
        let channel = self.channel().await?;
        let mut headers = FieldTable::default();
        for (name, value) in &message.headers {
            headers.insert(
                ShortString::from(name.as_str()),
                AMQPValue::LongString(LongString::from(value.as_str())),
            );
        }
        let properties = BasicProperties::default()
            .with_message_id(message.id.as_str().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_headers(headers);
        let payload = message.payload();
        let confirmed = async {
            channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    self.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &payload,
                    properties,
                )
                .await?
                .await
        };
        let confirmation = match tokio::time::timeout(self.timeout, confirmed).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(e)) => return Err(self.failure(e.to_string(), true)),
            Err(_) => {
                return Err(
                    self.failure(format!("no confirmation within {:?}", self.timeout), true)
                );
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(json!({
                "exchange": self.exchange,
                "routing_key": self.routing_key,
                "message_id": message.id,
            })),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(self
                .failure(
                    format!(
                        "returned by the server: {} {}",
                        returned.reply_code,
                        returned.reply_text.as_str()
                    ),
                    false,
                )),
            Confirmation::Nack(None) => {
                Err(self.failure("the server refused the message (nack)".into(), true))
            }
            Confirmation::NotRequested => {
                Err(self.failure("the channel is not in confirm mode".into(), true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::report;

    #[test]
    fn a_valid_step_compiles() {
        let found = report(
            "  - publish: { amqp: { url: 'amqp://guest:guest@127.0.0.1:5672/%2f', exchange: orders, \
             routing_key: accepted } }\n",
        );
        assert_eq!(found, "");
    }

    #[test]
    fn a_bad_address_is_reported_at_its_line_without_its_password() {
        let found = report(
            "  - publish:\n      amqp:\n        url: 'nats://me:hunter2@rabbit'\n        \
             routing_key: q\n",
        );
        assert!(found.contains("flows/notify.yaml:5:"), "{found}");
        assert!(
            found.contains("publish.amqp.url is not an AMQP server address"),
            "{found}"
        );
        assert!(!found.contains("hunter2"), "{found}");
    }
}
