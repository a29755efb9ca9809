//! `nats: {url, stream, …}`: a flow fed by a NATS JetStream stream, through
//! a durable pull consumer (`async-nats`, the official client).
//!
//! Accepted means durable, as for a webhook: a batch of messages is fetched
//! (up to `batch`), each becomes a run, and only once the runs are committed
//! (one group commit for the batch) are the messages acknowledged. A node
//! that dies between the commit and the acknowledgement leaves messages the
//! server delivers again after `ack_wait`; each run carries the dedupe key
//! `nats:STREAM:SEQUENCE` (the message's sequence in its stream, the same
//! on every delivery), so a second delivery finds the run and is only
//! acknowledged. A message whose run cannot be committed (the store is down
//! or full) is not acknowledged either, but handed back at once with a
//! delay (`NAK`), and the consumer fetches nothing more until its batch is
//! settled: backpressure reaches the server, not the node's memory.
//!
//! Nodes sharing a store share the consumer (its name defaults to
//! `patchbay-FLOW`), so the server spreads the messages between them. The
//! consumer is created if missing, with explicit acknowledgements, the
//! configured filter and `ack_wait`; one that exists is used as it is (the
//! server keeps its position, and refuses to change a durable consumer's
//! filter under it). The stream must exist: streams are the operator's to
//! define (retention, limits, replicas). A lost connection is reopened with
//! a backoff of up to 5 s.
//!
//! The run's input is the payload as JSON (a payload that is not JSON is
//! its text, an empty one `null`); `$headers` holds the message's headers,
//! lowercased, with `nats-subject`, `nats-stream` and `nats-sequence`.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use patchbay_config::{Env, HumanDuration, Located};
use patchbay_store::NewRun;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use super::{Kind, SourceContext, Start, Trigger, TriggerCompiler, payload_input};

const DEFAULT_BATCH: u32 = 100;
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a fetch waits for messages on an idle stream before it asks
/// again (and sees a shutdown).
const FETCH_EXPIRES: Duration = Duration::from_secs(1);
/// How long the server holds back a message whose run was not committed.
const NOT_COMMITTED_DELAY: Duration = Duration::from_secs(1);

/// `nats:` under `trigger:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsTrigger {
    /// The server: `nats://HOST:PORT` (`tls://` for TLS; user and password
    /// may be in the URL). `${env:…}` and `${secret:…}` are resolved.
    pub url: Located<String>,
    /// The JetStream stream to consume; it must exist.
    pub stream: Located<String>,
    /// Only the stream's messages on these subjects (wildcards `*` and
    /// `>`); default: all of them.
    #[serde(default)]
    pub subject: Option<Located<String>>,
    /// The durable consumer's name (default `patchbay-FLOW`); nodes that
    /// use one name share its messages.
    #[serde(default)]
    pub consumer: Option<Located<String>>,
    /// Most messages fetched, committed and acknowledged together (default
    /// 100).
    #[serde(default)]
    pub batch: Option<Located<u32>>,
    /// How long the server waits for an acknowledgement before it delivers
    /// a message again (default 30s).
    #[serde(default)]
    pub ack_wait: Option<HumanDuration>,
    /// Where a new consumer starts: `all` the stream's messages (default)
    /// or only those published after it is created (`new`). A consumer
    /// that exists goes on from where it was.
    #[serde(default)]
    pub start: Start,
}

/// A compiled NATS JetStream trigger.
#[derive(Clone)]
pub(crate) struct Nats {
    /// `None` when the plan is never served (no environment to resolve it).
    url: Option<String>,
    stream: String,
    subject: Option<String>,
    consumer: String,
    batch: u32,
    ack_wait: Duration,
    start: Start,
}

impl std::fmt::Debug for Nats {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .field("consumer", &self.consumer)
            .field("batch", &self.batch)
            .field("ack_wait", &self.ack_wait)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

/// Whether `name` may name a stream or a consumer: JetStream puts names in
/// subjects, so they cannot hold `.`, `*`, `>`, whitespace or path
/// separators.
fn check_name(what: &str, name: &Located<String>, compiler: &mut TriggerCompiler<'_>) -> bool {
    let bad = name
        .value
        .chars()
        .find(|c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace());
    let problem = if name.value.is_empty() {
        format!("nats.{what} is empty")
    } else if let Some(c) = bad {
        format!(
            "nats.{what} `{}` cannot hold `{}` (JetStream names are used in subjects)",
            name.value,
            c.escape_default()
        )
    } else {
        return true;
    };
    compiler.error(name.line, name.column, problem);
    false
}

impl Kind for Nats {
    const KEY: &'static str = "nats";
    type Config = NatsTrigger;

    fn compile(config: NatsTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = check_name("stream", &config.stream, compiler);
        let consumer = match &config.consumer {
            Some(consumer) => {
                ok &= check_name("consumer", consumer, compiler);
                consumer.value.clone()
            }
            None => format!(
                "patchbay-{}",
                compiler.flow.replace(['.', '*', '>', ' '], "-")
            ),
        };
        if let Some(subject) = config
            .subject
            .as_ref()
            .filter(|s| s.value.trim().is_empty())
        {
            compiler.error(
                subject.line,
                subject.column,
                "nats.subject is empty; remove it to take every subject of the stream".into(),
            );
            ok = false;
        }
        if let Some(batch) = config.batch.as_ref().filter(|b| b.value == 0) {
            compiler.error(
                batch.line,
                batch.column,
                "nats.batch must be at least 1".into(),
            );
            ok = false;
        }
        let url = resolve_address("nats.url", &config.url.value, compiler.env)
            .map_err(|message| compiler.error(config.url.line, config.url.column, message))
            .ok()?;
        if !ok {
            return None;
        }
        Some(Nats {
            url,
            stream: config.stream.value,
            subject: config.subject.map(|subject| subject.value),
            consumer,
            batch: config.batch.map_or(DEFAULT_BATCH, |batch| batch.value),
            ack_wait: config.ack_wait.map_or(DEFAULT_ACK_WAIT, |wait| wait.0),
            start: config.start,
        })
    }
}

/// A NATS server address as written at `key`, its `${env:…}` and
/// `${secret:…}` resolved: `Ok(None)` without an environment (the plan
/// never runs, so nothing is resolved), or a sentence naming the problem,
/// never the address (it may hold a password).
pub(crate) fn resolve_address(
    key: &str,
    written: &str,
    env: Option<&dyn Env>,
) -> Result<Option<String>, String> {
    super::resolve_broker_address(
        key,
        written,
        env,
        &["nats://", "tls://", "ws://", "wss://"],
        |url| url.parse::<async_nats::ServerAddr>().is_ok(),
        "a NATS server address (`nats://HOST:PORT`, or `tls://` for TLS)",
    )
}

impl Trigger for Nats {
    fn describe(&self) -> Map<String, Value> {
        [
            ("stream", json!(self.stream)),
            ("subject", json!(self.subject)),
            ("consumer", json!(self.consumer)),
            ("batch", json!(self.batch)),
            ("ack_wait_ms", json!(self.ack_wait.as_millis() as u64)),
            ("start", json!(self.start.as_str())),
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
    #[error("cannot connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("cannot read stream: {0}")]
    Stream(#[from] jetstream::context::GetStreamError),
    #[error("cannot create or update the consumer: {0}")]
    Consumer(#[from] jetstream::stream::ConsumerError),
    #[error("cannot fetch messages: {0}")]
    Fetch(#[from] jetstream::consumer::pull::BatchError),
    #[error("a fetched message: {0}")]
    Message(#[source] async_nats::Error),
}

impl Nats {
    /// Consumes until shutdown, reconnecting after a lost session.
    async fn consume(self, url: String, cx: SourceContext) {
        super::consume_reconnecting(&cx, "NATS", &self.stream, || self.session(&url, &cx)).await;
    }

    async fn session(
        &self,
        url: &str,
        cx: &SourceContext,
    ) -> Result<std::convert::Infallible, SessionError> {
        let client = async_nats::connect(url).await?;
        let context = jetstream::new(client);
        let stream = context.get_stream(&self.stream).await?;
        let config = pull::Config {
            durable_name: Some(self.consumer.clone()),
            filter_subject: self.subject.clone().unwrap_or_default(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: match self.start {
                Start::All => jetstream::consumer::DeliverPolicy::All,
                Start::New => jetstream::consumer::DeliverPolicy::New,
            },
            ack_wait: self.ack_wait,
            // Bounds what the server hands out before it hears back.
            max_ack_pending: i64::from(self.batch).saturating_mul(4),
            ..pull::Config::default()
        };
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(&self.consumer, config)
            .await?;
        info!(flow = %cx.flow, stream = %self.stream, consumer = %self.consumer,
            "consuming from NATS JetStream");
        loop {
            let mut fetched = consumer
                .fetch()
                .max_messages(self.batch as usize)
                .expires(FETCH_EXPIRES)
                .messages()
                .await?;
            let mut messages = Vec::with_capacity(self.batch as usize);
            while let Some(message) = fetched.next().await {
                messages.push(message.map_err(SessionError::Message)?);
            }
            if messages.is_empty() {
                continue;
            }
            self.settle(messages, cx).await;
        }
    }

    /// Commits a run per message, all at once (one group commit), then
    /// acknowledges each message whose run is durable.
    async fn settle(&self, messages: Vec<jetstream::Message>, cx: &SourceContext) {
        let runs = messages.iter().map(|message| {
            let run = self.run_of(message, cx);
            async move {
                match run {
                    Some(run) => Some(cx.intake.submit(run).await),
                    None => None,
                }
            }
        });
        let outcomes = futures::future::join_all(runs).await;
        let acks = messages.iter().zip(outcomes).map(|(message, outcome)| async move {
            let kind = match outcome {
                Some(Ok(_)) => AckKind::Ack,
                Some(Err(e)) => {
                    warn!(flow = %cx.flow, subject = %message.subject, error = %e,
                        "message's run not committed; the server delivers it again");
                    AckKind::Nak(Some(NOT_COMMITTED_DELAY))
                }
                // Without stream metadata it cannot be deduplicated: it is
                // no JetStream message, and would come back forever.
                None => AckKind::Term,
            };
            if let Err(e) = message.ack_with(kind).await {
                debug!(flow = %cx.flow, error = %e,
                    "acknowledgement not sent; the message comes back after ack_wait and is deduplicated");
            }
        });
        futures::future::join_all(acks).await;
    }

    /// The run a message starts; `None` for a message without JetStream
    /// metadata.
    fn run_of(&self, message: &jetstream::Message, cx: &SourceContext) -> Option<NewRun> {
        let info = match message.info() {
            Ok(info) => info,
            Err(e) => {
                warn!(flow = %cx.flow, error = %e, "message without JetStream metadata; dropped");
                return None;
            }
        };
        let mut headers = Map::new();
        if let Some(map) = &message.headers {
            for (name, values) in map.iter() {
                let joined: Vec<&str> = values.iter().map(|value| value.as_str()).collect();
                headers.insert(
                    name.to_string().to_ascii_lowercase(),
                    json!(joined.join(", ")),
                );
            }
        }
        headers.insert("nats-subject".into(), json!(message.subject.as_str()));
        headers.insert("nats-stream".into(), json!(info.stream));
        headers.insert(
            "nats-sequence".into(),
            json!(info.stream_sequence.to_string()),
        );
        Some(NewRun {
            id: uuid::Uuid::now_v7(),
            flow: cx.flow.clone(),
            trigger: Self::KEY.into(),
            input: payload_input(&message.payload),
            headers: Value::Object(headers),
            config_version: cx.config_version.clone(),
            dedupe_key: Some(format!("nats:{}:{}", info.stream, info.stream_sequence)),
            parent: None,
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests {
    fn report(settings: &str) -> String {
        crate::test_support::trigger_problems("nats", settings)
    }

    #[test]
    fn a_valid_trigger_compiles_and_describes_itself() {
        let flow = "trigger: { nats: { url: 'nats://127.0.0.1:4222', stream: ORDERS } }\n\
                    steps:\n  - transform: .\n";
        let build = crate::test_support::build("orders", flow).expect("valid");
        let plan = build.plan.flows["orders"].trigger.describe();
        assert_eq!(plan["consumer"], "patchbay-orders");
        assert_eq!(plan["batch"], 100);
        assert_eq!(plan["ack_wait_ms"], 30_000);
        assert_eq!(plan["start"], "all");
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report(
            "    url: 'http://broker:4222'\n    stream: orders.eu\n    consumer: 'a b'\n    \
             subject: ' '\n    batch: 0\n",
        );
        for expected in [
            "flows/orders.yaml:3:",
            "nats.url is not a NATS server address",
            "flows/orders.yaml:4:",
            "nats.stream `orders.eu` cannot hold `.`",
            "flows/orders.yaml:5:",
            "nats.consumer `a b` cannot hold ` `",
            "flows/orders.yaml:6:",
            "nats.subject is empty",
            "flows/orders.yaml:7:",
            "nats.batch must be at least 1",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }

    #[test]
    fn an_unset_variable_in_the_url_is_named_and_a_password_never_shown() {
        let found = report("    url: '${env:NATS_URL}'\n    stream: ORDERS\n");
        assert!(found.contains("NATS_URL"), "{found}");
        let found = report("    url: 'nats://me:hunter2@[oops'\n    stream: ORDERS\n");
        assert!(found.contains("nats.url is not"), "{found}");
        assert!(!found.contains("hunter2"), "{found}");
    }
}
