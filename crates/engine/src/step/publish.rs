//! `publish: {nats: {url, subject}}`, with `body`, `headers` and
//! `message_id`: a message published to a NATS JetStream stream, confirmed
//! by the server before the step succeeds.
//!
//! At least once, never twice in the stream: a step repeated after a crash
//! or a retry publishes the same message again, and the message carries the
//! same `Nats-Msg-Id` (by default the run, the step and the item, as a
//! call's idempotency key), so the stream drops the copy within its
//! duplicate window (2 minutes by default) and answers `duplicate: true`.
//! The step's result is the confirmation: `{stream, sequence, duplicate,
//! message_id}`.
//!
//! The connection is the step's, opened at its first publish and kept;
//! `async-nats` reopens it when it breaks. No confirmation within `timeout`
//! (the server is down, the stream has no quorum) is transient, so the run
//! is retried on its schedule; a subject no stream takes is not.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_trait::async_trait;
use patchbay_config::{HumanDuration, Located};
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

use super::context::scalar_text;
use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const BROKER: &str = "NATS";

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
    /// jq: the message's id, by which the stream drops a copy (default:
    /// the run, the step and the item).
    #[serde(default)]
    message_id: Option<Located<String>>,
}

/// The broker a message goes to.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Target {
    /// A NATS JetStream stream, by one of its subjects.
    nats: NatsTarget,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NatsTarget {
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

pub(crate) struct Publish {
    /// `None` when the plan never runs (no environment to resolve it).
    url: Option<String>,
    subject: String,
    timeout: Duration,
    body: Option<Expr>,
    headers: Option<Expr>,
    message_id: Option<Expr>,
    client: OnceCell<async_nats::Client>,
}

impl std::fmt::Debug for Publish {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("subject", &self.subject)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Kind for Publish {
    const KEY: &'static str = "publish";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let target = config.publish.value.nats;
        let subject = &target.subject;
        let subject_ok = if subject.value.is_empty()
            || subject.value.contains(['*', '>'])
            || subject.value.chars().any(char::is_whitespace)
        {
            compiler.error(
                subject,
                format!(
                    "publish.nats.subject `{}` is not a subject to publish on (no wildcards, \
                     spaces or empty value)",
                    subject.value
                ),
            );
            false
        } else {
            true
        };
        let url = crate::trigger::resolve_nats_address(
            "publish.nats.url",
            &target.url.value,
            compiler.env(),
        )
        .map_err(|message| compiler.error(&target.url, message))
        .ok();
        let body = compiler.optional("body", config.body.as_ref());
        let headers = compiler.optional("headers", config.headers.as_ref());
        let message_id = compiler.optional("message_id", config.message_id.as_ref());
        if !subject_ok {
            return None;
        }
        Some(Publish {
            url: url?,
            subject: target.subject.value,
            timeout: target.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            body: body?,
            headers: headers?,
            message_id: message_id?,
            client: OnceCell::new(),
        })
    }
}

impl Publish {
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
impl Step for Publish {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let body = match &self.body {
            Some(expr) => cx.eval("body", expr).await?,
            None => cx.input.clone(),
        };
        let message_id = match &self.message_id {
            Some(expr) => scalar_text(&cx.eval("message_id", expr).await?),
            None => cx.default_idempotency_key(),
        };
        let mut headers = async_nats::HeaderMap::new();
        if let Some(expr) = &self.headers {
            for (name, value) in cx.pairs("headers", expr).await? {
                headers.append(name.as_str(), value.as_str());
            }
        }
        headers.insert("Nats-Msg-Id", message_id.as_str());
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        let request = json!({ "subject": self.subject, "message_id": message_id, "body": body });

        let client = self.client().await?;
        let context = jetstream::context::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client.clone());
        let confirmed = async {
            context
                .publish_with_headers(self.subject.clone(), headers, payload.into())
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
        Ok(Performed {
            output: json!({
                "stream": ack.stream,
                "sequence": ack.sequence,
                "duplicate": ack.duplicate,
                "message_id": message_id,
            }),
            request: Some(request),
            reply: None,
        })
    }

    fn describe(&self) -> Description {
        Description {
            path: Some(self.subject.clone()),
            expression: self.body.as_ref().map(|body| body.source().into()),
            ..Description::default()
        }
    }
}

#[cfg(test)]
mod tests {
    fn report(step: &str) -> String {
        let flow = format!("trigger: {{ manual: {{}} }}\nsteps:\n{step}");
        match crate::test_support::build("notify", &flow) {
            Ok(_) => String::new(),
            Err(report) => report.to_string(),
        }
    }

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
