//! `redis: {url, stream, …}`: a flow fed by a Redis stream, through a
//! consumer group (`redis`, the maintained Rust client).
//!
//! Accepted means durable, as for a webhook: a batch of entries is read
//! (`XREADGROUP`, up to `batch`), each becomes a run, and only once the runs
//! are committed (one group commit for the batch) are the entries
//! acknowledged (`XACK`). An entry read and not acknowledged stays in the
//! group's pending list: a node that dies between the read and the
//! acknowledgement leaves its entries there, and any node of the group
//! takes them over once they have waited `claim_after` (`XAUTOCLAIM`). Each
//! run carries the dedupe key `redis:STREAM:ENTRY-ID`, the same on every
//! delivery, so an entry taken over after its run was committed is only
//! acknowledged. An entry whose run cannot be committed (the store is down
//! or full) is left pending and taken over later, and the node reads
//! nothing for a second: backpressure reaches the stream, not the node's
//! memory.
//!
//! Each consumer source has a consumer name of its own in the group
//! (`patchbay-` and a unique id), so nodes sharing a store share the
//! group's entries. Consumers of dead nodes, once nothing is pending for
//! them and they have been idle for ten times `claim_after`, are removed
//! from the group. The group is created when missing (at the stream's
//! first entry, or at its end with `start: new`), and the stream with it:
//! in Redis a stream is only a key.
//!
//! The run's input is the entry's `payload` field as JSON (its text when it
//! is not JSON), or an object of all the entry's fields when it has no
//! `payload`; `$headers` holds its other fields with `redis-stream` and
//! `redis-id`.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoConsumersReply,
    StreamReadOptions, StreamReadReply,
};
use ::redis::{AsyncCommands, AsyncConnectionConfig, RedisError, Value as RedisValue};
use futures::FutureExt;
use futures::future::BoxFuture;
use patchbay_config::{Env, HumanDuration, Located};
use patchbay_store::NewRun;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use super::{Kind, SourceContext, Start, Trigger, TriggerCompiler, payload_input};

const DEFAULT_BATCH: u32 = 100;
const DEFAULT_CLAIM_AFTER: Duration = Duration::from_secs(30);
/// How long a read waits for entries on an idle stream before it asks
/// again (and sees a shutdown, or entries to take over).
const READ_BLOCK: Duration = Duration::from_secs(1);
/// How long a node reads nothing after a run was not committed.
const NOT_COMMITTED_PAUSE: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The field whose value is the run's input.
const PAYLOAD_FIELD: &str = "payload";

/// `redis:` under `trigger:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    /// The server: `redis://[USER:PASSWORD@]HOST:PORT[/DB]` (`rediss://`
    /// for TLS). `${env:…}` and `${secret:…}` are resolved.
    pub url: Located<String>,
    /// The stream's key.
    pub stream: Located<String>,
    /// The consumer group (default `patchbay-FLOW`); nodes that use one
    /// group share its entries.
    #[serde(default)]
    pub group: Option<Located<String>>,
    /// Most entries read, committed and acknowledged together (default
    /// 100).
    #[serde(default)]
    pub batch: Option<Located<u32>>,
    /// How long an entry read and not acknowledged waits before another
    /// consumer of the group takes it over (default 30s).
    #[serde(default)]
    pub claim_after: Option<Located<HumanDuration>>,
    /// Where a group created by the trigger starts: `all` the stream's
    /// entries (default) or only those added after it is created (`new`).
    /// A group that exists goes on from where it was.
    #[serde(default)]
    pub start: Start,
}

/// A compiled Redis stream trigger.
#[derive(Clone)]
pub(crate) struct RedisStream {
    /// `None` when the plan is never served (no environment to resolve it).
    url: Option<String>,
    stream: String,
    group: String,
    batch: u32,
    claim_after: Duration,
    start: Start,
}

impl std::fmt::Debug for RedisStream {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStream")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("batch", &self.batch)
            .field("claim_after", &self.claim_after)
            .finish_non_exhaustive()
    }
}

impl Kind for RedisStream {
    const KEY: &'static str = "redis";
    type Config = RedisTrigger;

    fn compile(config: RedisTrigger, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = true;
        for (what, name) in [
            ("stream", Some(&config.stream)),
            ("group", config.group.as_ref()),
        ] {
            if let Some(name) = name.filter(|name| name.value.trim().is_empty()) {
                compiler.error(name.line, name.column, format!("redis.{what} is empty"));
                ok = false;
            }
        }
        if let Some(batch) = config.batch.as_ref().filter(|b| b.value == 0) {
            compiler.error(
                batch.line,
                batch.column,
                "redis.batch must be at least 1".into(),
            );
            ok = false;
        }
        let claim_after = config
            .claim_after
            .as_ref()
            .map_or(DEFAULT_CLAIM_AFTER, |after| after.value.0);
        if let Some(after) = config
            .claim_after
            .as_ref()
            .filter(|_| claim_after < Duration::from_millis(100))
        {
            compiler.error(
                after.line,
                after.column,
                "redis.claim_after must be at least 100ms (a shorter one takes entries over \
                 while their runs are being committed)"
                    .into(),
            );
            ok = false;
        }
        let url = resolve_address("redis.url", &config.url.value, compiler.env)
            .map_err(|message| compiler.error(config.url.line, config.url.column, message))
            .ok()?;
        if !ok {
            return None;
        }
        Some(RedisStream {
            url,
            stream: config.stream.value,
            group: config.group.map_or_else(
                || format!("patchbay-{}", compiler.flow),
                |group| group.value,
            ),
            batch: config.batch.map_or(DEFAULT_BATCH, |batch| batch.value),
            claim_after,
            start: config.start,
        })
    }
}

/// A Redis server address as written at `key`, its `${env:…}` and
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
        &["redis://", "rediss://"],
        |url| ::redis::parse_redis_url(url).is_some(),
        "a Redis server address (`redis://HOST:PORT`, or `rediss://` for TLS)",
    )
}

/// A connection to the server at `url` whose replies may take `longest`.
async fn connect(url: &str, longest: Duration) -> Result<MultiplexedConnection, RedisError> {
    let client = ::redis::Client::open(url)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(longest));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl Trigger for RedisStream {
    fn describe(&self) -> Map<String, Value> {
        [
            ("stream", json!(self.stream)),
            ("group", json!(self.group)),
            ("batch", json!(self.batch)),
            ("claim_after_ms", json!(self.claim_after.as_millis() as u64)),
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

impl RedisStream {
    /// Consumes until shutdown, reconnecting after a lost session.
    async fn consume(self, url: String, cx: SourceContext) {
        // One name for the source's life: entries it read before a lost
        // connection are still its own, and taken over like anyone's.
        let consumer = format!("patchbay-{}", uuid::Uuid::now_v7().simple());
        super::consume_reconnecting(&cx, "Redis stream", &self.stream, || {
            self.session(&url, &consumer, &cx)
        })
        .await;
    }

    async fn session(
        &self,
        url: &str,
        consumer: &str,
        cx: &SourceContext,
    ) -> Result<std::convert::Infallible, RedisError> {
        let mut connection = connect(url, READ_BLOCK + Duration::from_secs(10)).await?;
        self.create_group(&mut connection).await?;
        info!(flow = %cx.flow, stream = %self.stream, group = %self.group, consumer,
            "consuming from Redis stream");
        let mut next_claim = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_claim {
                self.take_over(&mut connection, consumer, cx).await?;
                next_claim = tokio::time::Instant::now() + self.claim_after / 2;
            }
            let options = StreamReadOptions::default()
                .group(&self.group, consumer)
                .count(self.batch as usize)
                .block(READ_BLOCK.as_millis() as usize);
            let reply: Option<StreamReadReply> = connection
                .xread_options(&[&self.stream], &[">"], &options)
                .await?;
            let entries: Vec<StreamId> = reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids)
                .collect();
            if !entries.is_empty() {
                self.settle(&mut connection, entries, cx).await?;
            }
        }
    }

    /// Creates the group (and the stream) unless it exists.
    async fn create_group(&self, connection: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let from = match self.start {
            Start::All => "0",
            Start::New => "$",
        };
        let created: Result<(), RedisError> = connection
            .xgroup_create_mkstream(&self.stream, &self.group, from)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Takes over the entries that waited `claim_after` for another
    /// consumer's acknowledgement (a dead node's), settles them, and
    /// removes the group's dead consumers.
    async fn take_over(
        &self,
        connection: &mut MultiplexedConnection,
        consumer: &str,
        cx: &SourceContext,
    ) -> Result<(), RedisError> {
        let mut cursor = "0-0".to_string();
        loop {
            let reply: StreamAutoClaimReply = connection
                .xautoclaim_options(
                    &self.stream,
                    &self.group,
                    consumer,
                    self.claim_after.as_millis() as u64,
                    &cursor,
                    StreamAutoClaimOptions::default().count(self.batch as usize),
                )
                .await?;
            if !reply.claimed.is_empty() {
                info!(flow = %cx.flow, stream = %self.stream, entries = reply.claimed.len(),
                    "took over entries another consumer did not acknowledge");
                self.settle(connection, reply.claimed, cx).await?;
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            cursor = reply.next_stream_id;
        }
        let consumers: StreamInfoConsumersReply = connection
            .xinfo_consumers(&self.stream, &self.group)
            .await?;
        let stale = self.claim_after.saturating_mul(10).as_millis();
        for dead in consumers.consumers.iter().filter(|other| {
            other.name != consumer && other.pending == 0 && other.idle as u128 > stale
        }) {
            let _: () = connection
                .xgroup_delconsumer(&self.stream, &self.group, &dead.name)
                .await?;
            debug!(flow = %cx.flow, stream = %self.stream, consumer = %dead.name,
                "removed an idle consumer that owed nothing");
        }
        Ok(())
    }

    /// Commits a run per entry, all at once (one group commit), then
    /// acknowledges, in one command, every entry whose run is durable.
    async fn settle(
        &self,
        connection: &mut MultiplexedConnection,
        entries: Vec<StreamId>,
        cx: &SourceContext,
    ) -> Result<(), RedisError> {
        let runs = entries
            .iter()
            .map(|entry| cx.intake.submit(self.run_of(entry, cx)));
        let outcomes = futures::future::join_all(runs).await;
        let mut committed = Vec::with_capacity(entries.len());
        let mut refused = false;
        for (entry, outcome) in entries.iter().zip(outcomes) {
            match outcome {
                Ok(_) => committed.push(entry.id.as_str()),
                Err(e) => {
                    warn!(flow = %cx.flow, stream = %self.stream, id = %entry.id, error = %e,
                        "entry's run not committed; it stays pending and is taken over later");
                    refused = true;
                }
            }
        }
        if !committed.is_empty() {
            let _: u64 = connection
                .xack(&self.stream, &self.group, &committed)
                .await?;
        }
        if refused {
            tokio::time::sleep(NOT_COMMITTED_PAUSE).await;
        }
        Ok(())
    }

    /// The run an entry starts.
    fn run_of(&self, entry: &StreamId, cx: &SourceContext) -> NewRun {
        let mut fields: HashMap<&str, String> = entry
            .map
            .iter()
            .map(|(name, value)| (name.as_str(), field_text(value)))
            .collect();
        let input = match fields.remove(PAYLOAD_FIELD) {
            Some(payload) => payload_input(payload.as_bytes()),
            None => Value::Object(
                fields
                    .iter()
                    .map(|(name, value)| ((*name).to_string(), json!(value)))
                    .collect(),
            ),
        };
        let mut headers: Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), json!(value)))
            .collect();
        headers.insert("redis-stream".into(), json!(self.stream));
        headers.insert("redis-id".into(), json!(entry.id));
        NewRun {
            id: uuid::Uuid::now_v7(),
            flow: cx.flow.clone(),
            trigger: Self::KEY.into(),
            input,
            headers: Value::Object(headers),
            config_version: cx.config_version.clone(),
            dedupe_key: Some(format!("redis:{}:{}", self.stream, entry.id)),
            parent: None,
            lease: None,
        }
    }
}

/// A field's value as text (stream fields are byte strings).
fn field_text(value: &RedisValue) -> String {
    match value {
        RedisValue::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        RedisValue::SimpleString(text) => text.clone(),
        RedisValue::Int(n) => n.to_string(),
        RedisValue::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::field_text;
    use redis::Value as RedisValue;

    fn report(settings: &str) -> String {
        crate::test_support::trigger_problems("redis", settings)
    }

    #[test]
    fn a_valid_trigger_compiles_and_describes_itself() {
        let flow = "trigger: { redis: { url: 'redis://127.0.0.1:6379/0', stream: orders } }\n\
                    steps:\n  - transform: .\n";
        let build = crate::test_support::build("orders", flow).expect("valid");
        let plan = build.plan.flows["orders"].trigger.describe();
        assert_eq!(plan["group"], "patchbay-orders");
        assert_eq!(plan["batch"], 100);
        assert_eq!(plan["claim_after_ms"], 30_000);
        assert_eq!(plan["start"], "all");
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let found = report(
            "    url: 'http://cache:6379'\n    stream: ' '\n    group: ''\n    batch: 0\n    \
             claim_after: 10ms\n",
        );
        for expected in [
            "flows/orders.yaml:3:",
            "redis.url is not a Redis server address",
            "flows/orders.yaml:4:",
            "redis.stream is empty",
            "flows/orders.yaml:5:",
            "redis.group is empty",
            "flows/orders.yaml:6:",
            "redis.batch must be at least 1",
            "flows/orders.yaml:7:",
            "redis.claim_after must be at least 100ms",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
    }

    #[test]
    fn an_unset_variable_in_the_url_is_named_and_a_password_never_shown() {
        let found = report("    url: '${env:REDIS_URL}'\n    stream: orders\n");
        assert!(found.contains("REDIS_URL"), "{found}");
        let found = report("    url: 'nats://me:hunter2@cache'\n    stream: orders\n");
        assert!(found.contains("redis.url is not"), "{found}");
        assert!(!found.contains("hunter2"), "{found}");
    }

    #[test]
    fn fields_are_text() {
        assert_eq!(
            field_text(&RedisValue::BulkString(b"{\"a\":1}".to_vec())),
            "{\"a\":1}"
        );
        assert_eq!(field_text(&RedisValue::Int(7)), "7");
        assert_eq!(field_text(&RedisValue::Nil), "");
    }
}
