//! `publish: {redis: {url, stream, timeout, dedupe_window, max_length}}`: a
//! message added to a Redis stream (`XADD`), as fields `payload` (the body
//! as JSON), `message-id` and one per header.
//!
//! Redis keeps no message ids of its own, so the step does: one script,
//! atomic on the server, adds the entry only if no entry of that message id
//! was added within `dedupe_window` (2 minutes by default), remembering the
//! id in a key of its own (`STREAM:patchbay-message-id:ID`) that expires
//! with the window. A step repeated after a crash or a retry therefore
//! finds the first entry and answers `duplicate: true` with its id. The
//! step's result: `{stream, id, duplicate, message_id}`.
//!
//! The connection is the step's, opened at its first publish; the client's
//! connection manager reopens it when it breaks. A server that does not
//! answer within `timeout`, or cannot be reached, is transient; a key that
//! is not a stream is not.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, RetryMethod, Script};
use async_trait::async_trait;
use patchbay_config::{HumanDuration, Located};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Broker, Message};
use crate::failure::StepError;
use crate::step::Compiler;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(120);
const BROKER: &str = "Redis";
/// The fields the step writes itself; a header of one of these names is
/// not sent.
const OWN_FIELDS: [&str; 2] = ["payload", "message-id"];

/// Adds the entry unless the message id was seen within the window.
/// KEYS[1] the stream, KEYS[2] the message id's key; ARGV[1] the window in
/// ms, ARGV[2] the most entries kept (0: no trim), then field, value, …
/// Returns {entry id, 1 when it was a copy}.
const ADD_ONCE: &str = r#"
local seen = redis.call('GET', KEYS[2])
if seen then
  return {seen, 1}
end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id
if ARGV[2] ~= '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(fields))
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}
"#;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    /// The server: `redis://[USER:PASSWORD@]HOST:PORT[/DB]` (`rediss://`
    /// for TLS); `${env:…}` and `${secret:…}` are resolved.
    url: Located<String>,
    /// The stream's key; created by the first message.
    stream: Located<String>,
    /// How long to wait for the connection and for the server's answer
    /// (default 10s).
    #[serde(default)]
    timeout: Option<HumanDuration>,
    /// How long a message id is remembered, so that a copy is not added
    /// (default 2m).
    #[serde(default)]
    dedupe_window: Option<Located<HumanDuration>>,
    /// Trims the stream to about this many entries as messages are added
    /// (`MAXLEN ~`); default: no trim.
    #[serde(default)]
    max_length: Option<Located<u64>>,
}

pub(super) struct RedisStream {
    /// `None` when the plan never runs (no environment to resolve it).
    url: Option<String>,
    stream: String,
    timeout: Duration,
    dedupe_window: Duration,
    max_length: u64,
    script: Script,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStream {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStream")
            .field("stream", &self.stream)
            .field("timeout", &self.timeout)
            .field("dedupe_window", &self.dedupe_window)
            .finish_non_exhaustive()
    }
}

impl RedisStream {
    pub(super) fn compile(target: Settings, compiler: &mut Compiler<'_>) -> Option<Self> {
        let mut ok = true;
        if target.stream.value.trim().is_empty() {
            compiler.error(&target.stream, "publish.redis.stream is empty".into());
            ok = false;
        }
        let dedupe_window = target
            .dedupe_window
            .as_ref()
            .map_or(DEFAULT_DEDUPE_WINDOW, |window| window.value.0);
        if let Some(window) = target
            .dedupe_window
            .as_ref()
            .filter(|_| dedupe_window < Duration::from_millis(1))
        {
            compiler.error(
                window,
                "publish.redis.dedupe_window must be at least 1ms".into(),
            );
            ok = false;
        }
        if let Some(length) = target.max_length.as_ref().filter(|l| l.value == 0) {
            compiler.error(
                length,
                "publish.redis.max_length must be at least 1; remove it to keep every entry".into(),
            );
            ok = false;
        }
        let url = crate::trigger::resolve_redis_address(
            "publish.redis.url",
            &target.url.value,
            compiler.env(),
        )
        .map_err(|message| compiler.error(&target.url, message))
        .ok()?;
        if !ok {
            return None;
        }
        Some(RedisStream {
            url,
            stream: target.stream.value,
            timeout: target.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            dedupe_window,
            max_length: target.max_length.map_or(0, |length| length.value),
            script: Script::new(ADD_ONCE),
            connection: OnceCell::new(),
        })
    }

    fn failure(&self, message: String, transient: bool) -> StepError {
        StepError::Broker {
            broker: BROKER,
            target: self.stream.clone(),
            message,
            transient,
        }
    }

    /// A failure of the server or the connection, classified by what the
    /// client says a retry needs.
    fn failed(&self, error: &RedisError) -> StepError {
        let transient = match error.retry_method() {
            RetryMethod::NoRetry => false,
            // Reconnect, wait, retry at once, cluster redirects: another
            // attempt may succeed.
            _ => true,
        };
        self.failure(error.to_string(), transient)
    }

    /// The step's connection, opened on first use.
    async fn connection(&self) -> Result<ConnectionManager, StepError> {
        let Some(url) = &self.url else {
            return Err(self.failure("the plan has no broker address".into(), false));
        };
        self.connection
            .get_or_try_init(|| async {
                // The error names the server's answer, never the URL.
                let client = ::redis::Client::open(url.as_str())
                    .map_err(|e| self.failure(format!("cannot connect: {e}"), false))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|e| self.failure(format!("cannot connect: {e}"), true))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Broker for RedisStream {
    fn destination(&self) -> (&'static str, &str) {
        ("stream", &self.stream)
    }

    async fn send(&self, message: &Message) -> Result<Value, StepError> {
        let mut connection = self.connection().await?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.stream)
            .key(format!(
                "{}:patchbay-message-id:{}",
                self.stream, message.id
            ))
            .arg(self.dedupe_window.as_millis() as u64)
            .arg(self.max_length);
        for (name, value) in &message.headers {
            if !OWN_FIELDS.contains(&name.as_str()) {
                invocation.arg(name).arg(value);
            }
        }
        invocation
            .arg("payload")
            .arg(message.payload())
            .arg("message-id")
            .arg(&message.id);
        let added = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(String, u8)>(&mut connection),
        );
        let (id, duplicate) = match added.await {
            Ok(Ok(added)) => added,
            Ok(Err(e)) => return Err(self.failed(&e)),
            Err(_) => {
                return Err(self.failure(format!("no answer within {:?}", self.timeout), true));
            }
        };
        Ok(json!({
            "stream": self.stream,
            "id": id,
            "duplicate": duplicate == 1,
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
            "  - publish: { redis: { url: 'redis://127.0.0.1:6379', stream: orders } }\n    \
             body: '{id: .id}'\n",
        );
        assert_eq!(found, "");
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report(
            "  - publish:\n      redis:\n        url: 'nats://cache'\n        stream: ''\n        \
             max_length: 0\n",
        );
        for expected in [
            "flows/notify.yaml:5:",
            "publish.redis.url is not a Redis server address",
            "flows/notify.yaml:6:",
            "publish.redis.stream is empty",
            "flows/notify.yaml:7:",
            "publish.redis.max_length must be at least 1",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }
}
