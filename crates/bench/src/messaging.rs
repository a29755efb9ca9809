//! What the broker instruments (`bench-nats`, `bench-redis`, `bench-amqp`,
//! `bench-mqtt`)
//! share: their command line, their error, the clock their messages carry,
//! and the shape of the reports `bench/run` reads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use serde_json::{Value, json};

use crate::stats::Summary;

/// The commands every broker instrument takes.
#[derive(Subcommand)]
pub enum Command {
    /// Creates what a relay flow reads and writes (`P`'s inbound and
    /// outbound streams or queues), when the broker needs them made first.
    Setup {
        #[arg(long)]
        prefix: String,
    },
    /// Publishes `messages` to `P`'s inbound side while reading its
    /// outbound side, which a Patchbay flow relays to.
    Relay {
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
    },
    /// The broker alone: `messages` published, then read back.
    Broker {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
    },
}

/// Why an instrument stopped: what it was doing, and the broker's answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Turns a client error into a [`Failure`] naming `what` was being done.
pub fn failure(what: &str) -> impl Fn(&dyn std::fmt::Display) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"))
}

/// Microseconds since the epoch: the instant a message carries, read again
/// by the same process on arrival.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn per_second(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// A relay's report: `relayed` of `messages` came back within `span`
/// (first publish to last arrival), with these latencies.
fn relay_report(
    messages: usize,
    relayed: usize,
    span: Duration,
    published_in: Duration,
    latencies: &[Duration],
) -> Value {
    json!({
        "messages": messages,
        "relayed": relayed,
        "seconds": span.as_secs_f64(),
        "relayed_per_s": if span.is_zero() { 0.0 } else { per_second(relayed, span) },
        "published_per_s": per_second(messages, published_in),
        "latency_us": Summary::from_samples(latencies).map(|s| s.to_json()),
    })
}

/// The broker's own report: `messages` published in `published_in`, and
/// `read` of them read back in `read_in`.
pub fn broker_report(
    messages: usize,
    published_in: Duration,
    read: usize,
    read_in: Duration,
) -> Value {
    json!({
        "messages": messages,
        "published_per_s": per_second(messages, published_in),
        "read": read,
        "read_per_s": per_second(read, read_in),
    })
}

/// How many publishes await the broker's confirmation at once.
pub const IN_FLIGHT: usize = 256;

/// The body of message `n`: its number and the instant it was sent.
pub fn message_body(n: usize) -> String {
    json!({ "sent_at_us": now_us(), "n": n }).to_string()
}

/// Publishes messages `0..count` through `publish_one` (given the number
/// and the body), `IN_FLIGHT` at once; how long it took.
pub async fn publish_all<F, Sent>(count: usize, publish_one: F) -> Result<Duration, Failure>
where
    F: Fn(usize, String) -> Sent,
    Sent: std::future::Future<Output = Result<(), Failure>>,
{
    use futures::StreamExt;
    let started = std::time::Instant::now();
    let results: Vec<Result<(), Failure>> = futures::stream::iter(0..count)
        .map(|n| publish_one(n, message_body(n)))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(started.elapsed())
}

/// The messages a relay saw come back: each number once, with its latency.
pub struct Arrivals {
    messages: usize,
    started: std::time::Instant,
    last: std::time::Instant,
    seen: std::collections::HashSet<u64>,
    latencies: Vec<Duration>,
}

impl Arrivals {
    /// Expecting `messages`, counted from now.
    pub fn new(messages: usize) -> Arrivals {
        let now = std::time::Instant::now();
        Arrivals {
            messages,
            started: now,
            last: now,
            seen: std::collections::HashSet::with_capacity(messages),
            latencies: Vec::with_capacity(messages),
        }
    }

    /// Records the arrival of a message with this body (a copy, or a body
    /// that is not one of ours, counts for nothing).
    pub fn arrived(&mut self, body: &Value) {
        let (Some(sent), Some(n)) = (body["sent_at_us"].as_u64(), body["n"].as_u64()) else {
            return;
        };
        if self.seen.insert(n) {
            self.latencies
                .push(Duration::from_micros(now_us().saturating_sub(sent)));
            self.last = std::time::Instant::now();
        }
    }

    /// Whether every message came back.
    pub fn complete(&self) -> bool {
        self.seen.len() >= self.messages
    }

    /// When the relay gives up waiting.
    pub fn deadline(&self, seconds: f64) -> std::time::Instant {
        self.started + Duration::from_secs_f64(seconds)
    }

    /// The relay's report, its messages published in `published_in`.
    pub fn report(&self, published_in: Duration) -> Value {
        relay_report(
            self.messages,
            self.seen.len(),
            self.last - self.started,
            published_in,
            &self.latencies,
        )
    }
}
