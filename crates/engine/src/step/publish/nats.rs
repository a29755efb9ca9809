//! `publish: {nats: {url, subject, timeout}}`: a message published to a
//! NATS JetStream stream, confirmed by the server before the step succeeds.
//!
//! The message carries its id as `Nats-Msg-Id`, so the stream drops a copy
//! within its duplicate window (2 minutes by default) and answers
//! `duplicate: true`. The step's result is the confirmation: `{stream,
//! sequence, duplicate, message_id}`.
//!
//! The connection is the step's, opened at its first publish and kept;
//! `async-nats` reopens it when it breaks. No confirmation within `timeout`
//! (the server is down, the stream has no quorum) is transient, so the run
//! is retried on its schedule; a subject no stream takes is not.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_trait::async_trait;
use patchbay_config::{HumanDuration, Located};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Broker, Message};
use crate::failure::StepError;
use crate::step::Compiler;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const BROKER: &str = "NATS";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    /// The server: `nats://HOST:PORT` (`tls://` for TLS); `${env:…}` and
    /// `${secret:…}` are resolved.
    url: Located<String>,
    /// The subject; a stream must take it.
    subject: Located<String>,
    /// How long to wait for the connection and for the server's
    /// confirmation (default 10s).
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

pub(super) struct NatsStream {
    /// `None` when the plan never runs (no environment to resolve it).
    url: Option<String>,
    subject: String,
    timeout: Duration,
    client: OnceCell<async_nats::Client>,
}

impl std::fmt::Debug for NatsStream {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStream")
            .field("subject", &self.subject)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NatsStream {
    pub(super) fn compile(target: Settings, compiler: &mut Compiler<'_>) -> Option<Self> {
        let subject = &target.subject;
        let subject_ok = !(subject.value.is_empty()
            || subject.value.contains(['*', '>'])
            || subject.value.chars().any(char::is_whitespace));
        if !subject_ok {
            compiler.error(
                subject,
                format!(
                    "publish.nats.subject `{}` is not a subject to publish on (no wildcards, \
                     spaces or empty value)",
                    subject.value
                ),
            );
        }
        let url = crate::trigger::resolve_nats_address(
            "publish.nats.url",
            &target.url.value,
            compiler.env(),
        )
        .map_err(|message| compiler.error(&target.url, message))
        .ok()?;
        if !subject_ok {
            return None;
        }
        Some(NatsStream {
            url,
            subject: target.subject.value,
            timeout: target.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            client: OnceCell::new(),
        })
    }

    fn failure(&self, message: String, transient: bool) -> StepError {
        StepError::Broker {
            broker: BROKER,
            target: self.subject.clone(),
            message,
            transient,
        }
    }

    /// The step's connection, opened on first use.
    async fn client(&self) -> Result<&async_nats::Client, StepError> {
        let Some(url) = &self.url else {
            return Err(self.failure("the plan has no broker address".into(), false));
        };
        self.client
            .get_or_try_init(|| async {
                async_nats::ConnectOptions::new()
                    .connection_timeout(self.timeout)
                    .connect(url.as_str())
                    .await
                    // The error names the server, never the URL's password.
                    .map_err(|e| self.failure(format!("cannot connect: {e}"), true))
            })
            .await
    }
}

#[async_trait]
impl Broker for NatsStream {
    fn destination(&self) -> (&'static str, &str) {
        ("subject", &self.subject)
    }

    async fn send(&self, message: &Message) -> Result<Value, StepError> {
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &message.headers {
            headers.append(name.as_str(), value.as_str());
        }
        headers.insert("Nats-Msg-Id", message.id.as_str());
        let client = self.client().await?;
        let context = jetstream::context::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client.clone());
        let confirmed = async {
            context
                .publish_with_headers(self.subject.clone(), headers, message.payload().into())
                .await?
                .await
        };
        let ack = match tokio::time::timeout(self.timeout, confirmed).await {
            Ok(Ok(ack)) => ack,
            Ok(Err(e)) => {
                let transient = match e.kind() {
                    PublishErrorKind::StreamNotFound
                    | PublishErrorKind::MaxPayloadExceeded
                    | PublishErrorKind::WrongLastMessageId
                    | PublishErrorKind::WrongLastSequence => false,
                    PublishErrorKind::TimedOut
                    | PublishErrorKind::BrokenPipe
                    | PublishErrorKind::MaxAckPending
                    | PublishErrorKind::Other => true,
                };
                return Err(self.failure(e.to_string(), transient));
            }
            Err(_) => {
                return Err(
                    self.failure(format!("no confirmation within {:?}", self.timeout), true)
                );
            }
        };
        Ok(json!({
            "stream": ack.stream,
            "sequence": ack.sequence,
            "duplicate": ack.duplicate,
            "message_id": message.id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::report;

    #[test]
    fn a_valid_step_compiles() {
        let found = report(
            "  - publish: { nats: { url: 'nats://127.0.0.1:4222', subject: orders.accepted } }\n    \
             body: '{id: .id}'\n",
        );
        assert_eq!(found, "");
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report(
            "  - publish:\n      nats:\n        url: 'http://broker'\n        subject: 'orders.*'\n    \
             body: '{'\n",
        );
        for expected in [
            "flows/notify.yaml:5:",
            "publish.nats.url is not a NATS server address",
            "flows/notify.yaml:6:",
            "publish.nats.subject `orders.*` is not a subject to publish on",
            "flows/notify.yaml:7:",
            "invalid jq in `body`",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }
}
