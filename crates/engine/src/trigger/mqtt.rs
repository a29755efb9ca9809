//! `mqtt: {url, topic, …}`: a flow fed by an MQTT topic filter, through a
//! persistent MQTT 5 session at QoS 1 (`rumqttc`).
//!
//! Accepted means durable, as for a webhook: the broker hands out at most
//! `in_flight` unacknowledged messages (the session's receive maximum);
//! those that have arrived are taken together, each becomes a run, and only
//! once the runs are committed (one group commit) is each message
//! acknowledged (`PUBACK`). The session outlives the connection (clean
//! start off, expiring `session_expiry` after the node disconnects): a node
//! that dies before it acknowledges finds its messages sent again when it
//! connects back, and the broker queues what is published meanwhile. A
//! message whose run cannot be committed is not acknowledged; the session
//! is closed after a second's pause and opened again, which has the broker
//! send it again: backpressure reaches the broker, not the node's memory.
//!
//! MQTT has no id of its own for a message (a packet id is only the
//! session's handle for it): the `message-id` user property, set by the
//! publisher (Patchbay's `publish: mqtt` sets it), is the dedupe key,
//! `mqtt:TOPIC:MESSAGE-ID`, so a message sent again after its run was
//! committed is only acknowledged. A message without one can make a second
//! run when the node dies between the commit and the acknowledgement.
//!
//! One session per client id: the broker closes the older connection when
//! a second one opens with the same id. So on a store several nodes share
//! the trigger runs on the node that leads the cluster, and moves to the
//! next leader with the session. Retained messages are sent when the
//! subscription is new, not on every reconnection. The run's input is the
//! payload as JSON (its text when it is not JSON, `null` when empty);
//! `$headers` holds the user properties (names lowercased), with
//! `mqtt-topic`, `mqtt-retain`, `mqtt-dup` and, when set, `content-type`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use patchbay_config::{Env, HumanDuration, Located};
use patchbay_store::NewRun;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, RetainForwardRule, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

use super::{Kind, SourceContext, Trigger, TriggerCompiler, payload_input};

const DEFAULT_IN_FLIGHT: u16 = 100;
const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the node pauses before it closes a session whose runs were
/// not committed (and so has the broker send them again).
const NOT_COMMITTED_PAUSE: Duration = Duration::from_secs(1);
/// The largest message the node accepts; MQTT allows up to 256 MiB.
pub(crate) const MAX_PACKET_SIZE: u32 = 16 * 1024 * 1024;
/// How often an idle connection proves it is alive.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The user property whose value is a message's id.
pub(crate) const MESSAGE_ID_PROPERTY: &str = "message-id";

/// `mqtt:` under `trigger:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttTrigger {
    /// The broker: `mqtt://USER:PASSWORD@HOST:PORT` (`mqtts://` for TLS;
    /// ports 1883 and 8883 by default). `${env:…}` and `${secret:…}` are
    /// resolved.
    pub url: Located<String>,
    /// The topic filter to subscribe to (`+` and `#` wildcards allowed).
    pub topic: Located<String>,
    /// The session's client id (default `patchbay-FLOW`): the broker keeps
    /// the session under it.
    #[serde(default)]
    pub client_id: Option<Located<String>>,
    /// Most messages the broker hands out before it hears back; they are
    /// committed and acknowledged together (default 100).
    #[serde(default)]
    pub in_flight: Option<Located<u16>>,
    /// How long the broker keeps the session, and queues messages for it,
    /// once the node is gone (default 7d).
    #[serde(default)]
    pub session_expiry: Option<Located<HumanDuration>>,
}

/// A compiled MQTT trigger.
#[derive(Clone)]
pub(crate) struct Mqtt {
    /// `None` when the plan is never served (no environment to resolve it).
    address: Option<Address>,
    topic: String,
    client_id: String,
    in_flight: u16,
    /// In seconds, as MQTT counts it.
    session_expiry: u32,
}

impl std::fmt::Debug for Mqtt {
    // The address holds a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mqtt")
            .field("topic", &self.topic)
            .field("client_id", &self.client_id)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Kind for Mqtt {
    const KEY: &'static str = "mqtt";
    type Config = MqttTrigger;

    fn compile(config: MqttTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = true;
        let topic = &config.topic;
        if !rumqttc::v5::mqttbytes::valid_filter(&topic.value) || topic.value.contains('\0') {
            compiler.error(
                topic.line,
                topic.column,
                format!(
                    "mqtt.topic `{}` is not a topic filter (`+` stands for one whole level, \
                     `#` for the rest and comes last)",
                    topic.value
                ),
            );
            ok = false;
        }
        if let Some(id) = config.client_id.as_ref().filter(|id| id.value.is_empty()) {
            compiler.error(id.line, id.column, "mqtt.client_id is empty".into());
            ok = false;
        }
        if let Some(in_flight) = config.in_flight.as_ref().filter(|n| n.value == 0) {
            compiler.error(
                in_flight.line,
                in_flight.column,
                "mqtt.in_flight must be at least 1".into(),
            );
            ok = false;
        }
        let expiry = config
            .session_expiry
            .as_ref()
            .map_or(DEFAULT_SESSION_EXPIRY, |expiry| expiry.value.0);
        let session_expiry = match u32::try_from(expiry.as_secs()) {
            // Zero would end the session with the connection: a node that
            // died would lose what the broker held for it.
            Ok(seconds) if seconds > 0 => seconds,
            _ => {
                if let Some(written) = &config.session_expiry {
                    compiler.error(
                        written.line,
                        written.column,
                        "mqtt.session_expiry must be between 1s and 136 years (MQTT counts it \
                         in seconds, in 32 bits)"
                            .into(),
                    );
                }
                ok = false;
                0
            }
        };
        let address = resolve_address("mqtt.url", &config.url.value, compiler.env)
            .map_err(|message| compiler.error(config.url.line, config.url.column, message))
            .ok()?;
        if !ok {
            return None;
        }
        Some(Mqtt {
            address,
            topic: config.topic.value,
            client_id: config
                .client_id
                .map_or_else(|| format!("patchbay-{}", compiler.flow), |id| id.value),
            in_flight: config.in_flight.map_or(DEFAULT_IN_FLIGHT, |n| n.value),
            session_expiry,
        })
    }
}

/// Where an MQTT broker is and how to sign in.
#[derive(Clone)]
pub(crate) struct Address {
    host: String,
    port: u16,
    tls: bool,
    credentials: Option<(String, String)>,
}

impl Address {
    fn parse(url: &str) -> Option<Address> {
        let url = url::Url::parse(url).ok()?;
        let tls = match url.scheme() {
            "mqtt" => false,
            "mqtts" => true,
            _ => return None,
        };
        let host = url.host_str().filter(|host| !host.is_empty())?.to_string();
        if !matches!(url.path(), "" | "/") {
            return None;
        }
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .ok()
                .map(|text| text.into_owned())
        };
        let credentials = match url.username() {
            "" => None,
            user => Some((decode(user)?, decode(url.password().unwrap_or(""))?)),
        };
        Some(Address {
            host,
            port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
            tls,
            credentials,
        })
    }

    /// A client's options for this broker, under `client_id`.
    pub(crate) fn options(&self, client_id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, self.host.as_str(), self.port);
        if self.tls {
            options.set_transport(rumqttc::Transport::tls_with_default_config());
        }
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user.as_str(), password.as_str());
        }
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(Some(MAX_PACKET_SIZE));
        options
    }
}

/// An MQTT broker address as written at `key`, its `${env:…}` and
/// `${secret:…}` resolved: `Ok(None)` without an environment (the plan
/// never runs, so nothing is resolved), or a sentence naming the problem,
/// never the address (it holds a password).
pub(crate) fn resolve_address(
    key: &str,
    written: &str,
    env: Option<&dyn Env>,
) -> Result<Option<Address>, String> {
    let url = super::resolve_broker_address(
        key,
        written,
        env,
        &["mqtt://", "mqtts://"],
        |url| Address::parse(url).is_some(),
        "an MQTT broker address (`mqtt://USER:PASSWORD@HOST:PORT`, or `mqtts://` for TLS)",
    )?;
    Ok(url.as_deref().and_then(Address::parse))
}

impl Trigger for Mqtt {
    fn describe(&self) -> Map<String, Value> {
        [
            ("topic", json!(self.topic)),
            ("client_id", json!(self.client_id)),
            ("in_flight", json!(self.in_flight)),
            ("session_expiry_seconds", json!(self.session_expiry)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        let address = self.address.clone()?;
        Some(self.clone().consume(address, cx).boxed())
    }
}

/// Why a session with the broker ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("the broker refused the subscription: {0}")]
    Refused(String),
    #[error("runs not committed; the broker sends their messages again")]
    NotCommitted,
    #[error("the connection's task ended")]
    Gone,
}

impl Mqtt {
    /// Consumes until shutdown, reconnecting after a lost session; on a
    /// shared store, only while this node leads.
    async fn consume(self, address: Address, cx: SourceContext) {
        let Some(membership) = cx.exclusive.clone() else {
            super::consume_reconnecting(&cx, "MQTT", &self.topic, || self.session(&address, &cx))
                .await;
            return;
        };
        while membership.until_leader(&cx.shutdown).await {
            info!(flow = %cx.flow, topic = %self.topic, "this node leads: it holds the MQTT session");
            tokio::select! {
                () = super::consume_reconnecting(&cx, "MQTT", &self.topic, || self.session(&address, &cx)) => return,
                () = membership.until_follower() => {
                    info!(flow = %cx.flow, topic = %self.topic,
                        "this node no longer leads: it lets the MQTT session go");
                }
            }
        }
    }

    async fn session(
        &self,
        address: &Address,
        cx: &SourceContext,
    ) -> Result<std::convert::Infallible, SessionError> {
        let mut options = address.options(&self.client_id);
        options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(self.session_expiry))
            .set_receive_maximum(Some(self.in_flight))
            .set_manual_acks(true);
        let capacity = usize::from(self.in_flight) * 2 + 16;
        let (client, events) = AsyncClient::new(options, capacity);
        let mut filter = Filter::new(self.topic.as_str(), QoS::AtLeastOnce);
        filter.retain_forward_rule = RetainForwardRule::OnNewSubscribe;
        client.subscribe_many([filter]).await?;
        // Unbounded, so the connection is never held up handing a message
        // on: it must go on sending the acknowledgements the session waits
        // for. What it holds is bounded by the broker, which sends no more
        // than `in_flight` unacknowledged messages.
        let (deliveries, mut arrived) = mpsc::unbounded_channel();
        // The connection is driven beside the commits, so keep-alives and
        // acknowledgements flow while runs are being committed; dropping
        // the session drops it, and the broker keeps what was not
        // acknowledged.
        let mut connection = AbortOnDropHandle::new(tokio::spawn(drive(
            events,
            deliveries,
            cx.flow.clone(),
            self.topic.clone(),
        )));
        loop {
            let Some(first) = arrived.recv().await else {
                return Err((&mut connection).await.unwrap_or(SessionError::Gone));
            };
            let mut messages = vec![first];
            while messages.len() < usize::from(self.in_flight) {
                match arrived.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            }
            self.settle(&client, messages, cx).await?;
        }
    }

    /// Commits a run per message, all at once (one group commit), then
    /// acknowledges each message whose run is durable; when some were not
    /// committed, ends the session after a pause.
    async fn settle(
        &self,
        client: &AsyncClient,
        messages: Vec<Publish>,
        cx: &SourceContext,
    ) -> Result<(), SessionError> {
        let runs = messages
            .iter()
            .map(|message| cx.intake.submit(self.run_of(message, cx)));
        let outcomes = futures::future::join_all(runs).await;
        let mut refused = false;
        for (message, outcome) in messages.iter().zip(outcomes) {
            match outcome {
                Ok(_) => client.ack(message).await?,
                Err(e) => {
                    warn!(flow = %cx.flow, topic = %self.topic, error = %e,
                        "message's run not committed; the broker sends it again");
                    refused = true;
                }
            }
        }
        if refused {
            // MQTT has no way to hand one message back: the broker sends
            // every unacknowledged one again when the session resumes.
            tokio::time::sleep(NOT_COMMITTED_PAUSE).await;
            return Err(SessionError::NotCommitted);
        }
        Ok(())
    }

    /// The run a message starts.
    fn run_of(&self, message: &Publish, cx: &SourceContext) -> NewRun {
        let topic = String::from_utf8_lossy(&message.topic).into_owned();
        let mut headers = Map::new();
        let mut message_id = None;
        if let Some(properties) = &message.properties {
            for (name, value) in &properties.user_properties {
                let name = name.to_ascii_lowercase();
                if name == MESSAGE_ID_PROPERTY {
                    message_id = Some(value.clone());
                }
                headers.insert(name, json!(value));
            }
            if let Some(content_type) = &properties.content_type {
                headers.insert("content-type".into(), json!(content_type));
            }
        }
        headers.insert("mqtt-topic".into(), json!(topic));
        headers.insert("mqtt-retain".into(), json!(message.retain.to_string()));
        headers.insert("mqtt-dup".into(), json!(message.dup.to_string()));
        NewRun {
            id: uuid::Uuid::now_v7(),
            flow: cx.flow.clone(),
            trigger: Self::KEY.into(),
            input: payload_input(&message.payload),
            headers: Value::Object(headers),
            config_version: cx.config_version.clone(),
            dedupe_key: message_id.map(|id| format!("mqtt:{topic}:{id}")),
            parent: None,
            lease: None,
        }
    }
}

/// Drives the connection: hands each message on to the session, until the
/// connection fails (returned) or the session is gone.
async fn drive(
    mut events: EventLoop,
    deliveries: mpsc::UnboundedSender<Publish>,
    flow: String,
    topic: String,
) -> SessionError {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(message))) => {
                if deliveries.send(message).is_err() {
                    return SessionError::Gone;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(connected))) => {
                debug!(flow = %flow, topic = %topic, resumed = connected.session_present,
                    "connected to the MQTT broker");
            }
            Ok(Event::Incoming(Packet::SubAck(subscribed))) => {
                for code in subscribed.return_codes {
                    match code {
                        SubscribeReasonCode::Success(QoS::AtLeastOnce | QoS::ExactlyOnce) => {}
                        SubscribeReasonCode::Success(QoS::AtMostOnce) => {
                            warn!(flow = %flow, topic = %topic,
                                "the broker granted QoS 0 only: its messages may be lost")
                        }
                        refused => return SessionError::Refused(format!("{refused:?}")),
                    }
                }
                info!(flow = %flow, topic = %topic, "consuming from MQTT topic");
            }
            Ok(other) => debug!(flow = %flow, event = ?other, "MQTT event"),
            Err(e) => return SessionError::Connection(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Address;

    fn report(settings: &str) -> String {
        crate::test_support::trigger_problems("mqtt", settings)
    }

    #[test]
    fn a_valid_trigger_compiles_and_describes_itself() {
        let flow = "trigger: { mqtt: { url: 'mqtt://127.0.0.1:1883', topic: 'orders/+/created' } }\n\
                    steps:\n  - transform: .\n";
        let build = crate::test_support::build("orders", flow).expect("valid");
        let plan = build.plan.flows["orders"].trigger.describe();
        assert_eq!(plan["topic"], "orders/+/created");
        assert_eq!(plan["client_id"], "patchbay-orders");
        assert_eq!(plan["in_flight"], 100);
        assert_eq!(plan["session_expiry_seconds"], 7 * 24 * 3600);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report(
            "    url: 'http://broker:1883'\n    topic: 'orders/#/created'\n    \
             client_id: ''\n    in_flight: 0\n    session_expiry: 0s\n",
        );
        for expected in [
            "flows/orders.yaml:3:",
            "mqtt.url is not an MQTT broker address",
            "flows/orders.yaml:4:",
            "mqtt.topic `orders/#/created` is not a topic filter",
            "flows/orders.yaml:5:",
            "mqtt.client_id is empty",
            "flows/orders.yaml:6:",
            "mqtt.in_flight must be at least 1",
            "flows/orders.yaml:7:",
            "mqtt.session_expiry must be between 1s",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let found = report("    url: 'mqtt://me:hunter2@broker:notaport'\n    topic: t\n");
        assert!(found.contains("mqtt.url is not"), "{found}");
        assert!(!found.contains("hunter2"), "{found}");
    }

    #[test]
    fn an_address_gives_host_port_tls_and_credentials() {
        let plain = Address::parse("mqtt://broker").expect("valid");
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("broker", 1883, false)
        );
        assert!(plain.credentials.is_none());
        let secure = Address::parse("mqtts://me:p%40ss%2Bw@broker:9000").expect("valid");
        assert_eq!((secure.port, secure.tls), (9000, true));
        assert_eq!(
            secure.credentials,
            Some(("me".to_string(), "p@ss+w".to_string()))
        );
        for invalid in ["amqp://broker", "mqtt://", "mqtt://broker/path"] {
            assert!(Address::parse(invalid).is_none(), "{invalid}");
        }
    }
}
