//! `publish: {mqtt: {url, topic, retain, timeout}}`: a message published to
//! an MQTT 5 broker at QoS 1: the step succeeds once the broker acknowledges
//! it (`PUBACK`).
//!
//! The message carries its id as the `message-id` user property, its
//! headers as other user properties and the content type
//! `application/json`. An MQTT broker keeps no record of ids, so a step
//! repeated after a crash or a retry publishes a second copy with the same
//! `message-id`; a consumer that deduplicates by it (Patchbay's `mqtt`
//! trigger does) makes one run of both. The step's result: `{topic,
//! message_id, matched}`, `matched` false when the broker said no
//! subscription matched the topic (MQTT then drops the message, unless it
//! is retained).
//!
//! The connection is the step's, opened at its first publish (with a
//! client id of its own and a clean session: what the step does not see
//! acknowledged it publishes again) and opened again after it breaks. No
//! acknowledgement within `timeout`, a lost connection, or a broker over
//! its quota is transient; a refusal for the message itself (not
//! authorised, invalid topic or payload) is permanent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_config::{HumanDuration, Located};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio_util::task::AbortOnDropHandle;

use super::{Broker, Message};
use crate::failure::StepError;
use crate::step::Compiler;
use crate::trigger::{MQTT_MESSAGE_ID_PROPERTY, MqttAddress};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const BROKER: &str = "MQTT";
/// Publishes the step queues before it waits for the connection to take
/// them.
const REQUEST_CAPACITY: usize = 256;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    /// The broker: `mqtt://USER:PASSWORD@HOST:PORT` (`mqtts://` for TLS);
    /// `${env:…}` and `${secret:…}` are resolved.
    url: Located<String>,
    /// The topic (no wildcards).
    topic: Located<String>,
    /// Whether the broker keeps the message as the topic's last one, for
    /// subscribers to come (default false).
    #[serde(default)]
    retain: bool,
    /// How long to wait for the connection and for the broker's
    /// acknowledgement (default 10s).
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// What the broker answered to one message.
type Answer = Result<PubAckReason, String>;

/// The publishes of one connection awaiting the broker's answer: those
/// queued (not yet given a packet id, in the order they were queued) and
/// those sent (by packet id).
#[derive(Default)]
struct Awaiting {
    queued: VecDeque<oneshot::Sender<Answer>>,
    sent: HashMap<u16, oneshot::Sender<Answer>>,
    /// Why the connection ended, once it has: nothing more is queued.
    ended: Option<String>,
}

impl Awaiting {
    fn end(&mut self, why: String) {
        for waiting in self
            .queued
            .drain(..)
            .chain(self.sent.drain().map(|(_, tx)| tx))
        {
            let _ = waiting.send(Err(why.clone()));
        }
        self.ended = Some(why);
    }
}

/// The publishes of a connection awaiting an answer, shared by the step
/// and the task driving the connection. A std mutex: never held across an
/// `.await`.
type Shared = Arc<std::sync::Mutex<Awaiting>>;

fn lock(awaiting: &Shared) -> std::sync::MutexGuard<'_, Awaiting> {
    awaiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An open connection: its client, the publishes it owes an answer, and
/// the task that drives it.
struct Connection {
    client: AsyncClient,
    awaiting: Shared,
    /// Held while a publish is queued, so publishes reach the connection
    /// in the order their answers are awaited.
    order: Mutex<()>,
    _driver: AbortOnDropHandle<()>,
}

pub(super) struct MqttTopic {
    /// `None` when the plan never runs (no environment to resolve it).
    address: Option<MqttAddress>,
    topic: String,
    retain: bool,
    timeout: Duration,
    connection: Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for MqttTopic {
    // The address holds a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttTopic")
            .field("topic", &self.topic)
            .field("retain", &self.retain)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MqttTopic {
    pub(super) fn compile(target: Settings, compiler: &mut Compiler<'_>) -> Option<Self> {
        let topic = &target.topic;
        let valid = !topic.value.is_empty()
            && rumqttc::v5::mqttbytes::valid_topic(&topic.value)
            && !topic.value.contains('\0');
        if !valid {
            compiler.error(
                topic,
                format!(
                    "publish.mqtt.topic `{}` is not a topic (no wildcards `+` or `#`, not empty)",
                    topic.value
                ),
            );
        }
        let address = crate::trigger::resolve_mqtt_address(
            "publish.mqtt.url",
            &target.url.value,
            compiler.env(),
        )
        .map_err(|message| compiler.error(&target.url, message))
        .ok()?;
        if !valid {
            return None;
        }
        Some(MqttTopic {
            address,
            topic: target.topic.value,
            retain: target.retain,
            timeout: target.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            connection: Mutex::new(None),
        })
    }

    fn failure(&self, message: String, transient: bool) -> StepError {
        StepError::Broker {
            broker: BROKER,
            target: self.topic.clone(),
            message,
            transient,
        }
    }

    /// The step's connection, opened on first use and after it ended.
    async fn connection(&self) -> Result<Arc<Connection>, StepError> {
        let Some(address) = &self.address else {
            return Err(self.failure("the plan has no broker address".into(), false));
        };
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection
            .as_ref()
            .filter(|open| lock(&open.awaiting).ended.is_none())
        {
            return Ok(open.clone());
        }
        let mut options = address.options(&format!("patchbay-publish-{}", uuid::Uuid::now_v7()));
        options
            .set_clean_start(true)
            .set_connection_timeout(self.timeout.as_secs().max(1));
        let (client, events) = AsyncClient::new(options, REQUEST_CAPACITY);
        let awaiting: Shared = Arc::default();
        let driver = AbortOnDropHandle::new(tokio::spawn(drive(events, awaiting.clone())));
        let opened = Arc::new(Connection {
            client,
            awaiting,
            order: Mutex::new(()),
            _driver: driver,
        });
        *connection = Some(opened.clone());
        Ok(opened)
    }
}

/// Drives a connection: matches each publish with its packet id as the
/// connection sends it, and each acknowledgement with its publish, until
/// the connection fails.
async fn drive(mut events: EventLoop, awaiting: Shared) {
    loop {
        match events.poll().await {
            // Publishes are sent in the order they were queued.
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(packet_id))) => {
                let mut awaiting = lock(&awaiting);
                if let Some(waiting) = awaiting.queued.pop_front() {
                    awaiting.sent.insert(packet_id, waiting);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(waiting) = lock(&awaiting).sent.remove(&ack.pkid) {
                    let _ = waiting.send(Ok(ack.reason));
                }
            }
            Ok(_) => {}
            Err(e) => {
                // The error names the broker's answer, never the address.
                lock(&awaiting).end(format!("connection lost: {e}"));
                return;
            }
        }
    }
}

#[async_trait]
impl Broker for MqttTopic {
    fn destination(&self) -> (&'static str, &str) {
        ("topic", &self.topic)
    }

    async fn send(&self, message: &Message) -> Result<Value, StepError> {
        let connection = self.connection().await?;
        let mut user_properties = vec![(MQTT_MESSAGE_ID_PROPERTY.to_string(), message.id.clone())];
        user_properties.extend(message.headers.iter().cloned());
        let properties = PublishProperties {
            content_type: Some("application/json".into()),
            payload_format_indicator: Some(1),
            user_properties,
            ..PublishProperties::default()
        };
        let (answer, answered) = oneshot::channel();
        {
            let _order = connection.order.lock().await;
            {
                let mut awaiting = lock(&connection.awaiting);
                if let Some(why) = &awaiting.ended {
                    return Err(self.failure(why.clone(), true));
                }
                awaiting.queued.push_back(answer);
            }
            let queued = connection.client.publish_with_properties(
                self.topic.as_str(),
                QoS::AtLeastOnce,
                self.retain,
                message.payload(),
                properties,
            );
            if let Err(e) = tokio::time::timeout(self.timeout, queued)
                .await
                .map_err(|_| format!("the connection took no message within {:?}", self.timeout))
                .and_then(|queued| queued.map_err(|e| e.to_string()))
            {
                // The queue no longer matches what the connection sends.
                lock(&connection.awaiting).end(e.clone());
                return Err(self.failure(e, true));
            }
        }
        let reason = match tokio::time::timeout(self.timeout, answered).await {
            Ok(Ok(Ok(reason))) => reason,
            Ok(Ok(Err(why))) => return Err(self.failure(why, true)),
            Ok(Err(_)) => return Err(self.failure("the connection ended".into(), true)),
            Err(_) => {
                return Err(self.failure(
                    format!("no acknowledgement within {:?}", self.timeout),
                    true,
                ));
            }
        };
        let matched = match reason {
            PubAckReason::Success => true,
            PubAckReason::NoMatchingSubscribers => false,
            PubAckReason::QuotaExceeded
            | PubAckReason::PacketIdentifierInUse
            | PubAckReason::UnspecifiedError
            | PubAckReason::ImplementationSpecificError => {
                return Err(self.failure(format!("the broker answered {reason:?}"), true));
            }
            PubAckReason::NotAuthorized
            | PubAckReason::TopicNameInvalid
            | PubAckReason::PayloadFormatInvalid => {
                return Err(
                    self.failure(format!("the broker refused the message: {reason:?}"), false)
                );
            }
        };
        Ok(json!({
            "topic": self.topic,
            "message_id": message.id,
            "matched": matched,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::report;

    #[test]
    fn a_valid_step_compiles() {
        let found = report(
            "  - publish: { mqtt: { url: 'mqtt://127.0.0.1:1883', topic: orders/accepted, \
             retain: true } }\n",
        );
        assert_eq!(found, "");
    }

    #[test]
    fn a_bad_address_and_a_wildcard_topic_are_reported_at_their_lines() {
        let found = report(
            "  - publish:\n      mqtt:\n        url: 'amqp://me:hunter2@broker'\n        \
             topic: 'orders/+'\n",
        );
        for expected in [
            "flows/notify.yaml:5:",
            "publish.mqtt.url is not an MQTT broker address",
            "flows/notify.yaml:6:",
            "publish.mqtt.topic `orders/+` is not a topic",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
        assert!(!found.contains("hunter2"), "{found}");
    }
}
