//! `bench-redis`: Redis Streams' own add and read rates, and the rate and
//! latency of messages relayed through a Patchbay flow (a `redis` trigger
//! and a `publish` step), for the `messaging` scenario of `bench/run`.
//!
//! ```text
//! bench-redis --url URL relay  --prefix P --messages N --seconds D
//! bench-redis --url URL broker --messages N
//! ```
//!
//! - `relay` adds `N` entries `payload: {"sent_at_us": T, "n": I}` to
//!   stream `P:in`, 256 at a time in one pipeline, while it reads `P:out`
//!   with `XREAD`; each message's latency runs from its add to its arrival
//!   on `P:out` (the flow passes the body on). It stops once all `N` came
//!   back or `D` seconds passed, then deletes both streams. It prints the
//!   rate (messages back per second, first add to last arrival) and the
//!   latencies.
//! - `broker` measures the server alone on a stream of its own: `N`
//!   entries added the same way (entries per second), then read back by a
//!   consumer group with acknowledgements, as the trigger reads
//!   (`XREADGROUP` + `XACK`, 256 at a time), then the stream is deleted.
//!
//! Each prints one JSON object on standard output.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::messaging::{
    Arrivals, Command, Failure, IN_FLIGHT, broker_report, failure, message_body,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

/// Adds `count` entries to `stream`, `IN_FLIGHT` per pipeline; how long it
/// took.
async fn add(
    mut redis: MultiplexedConnection,
    stream: String,
    count: usize,
) -> Result<Duration, Failure> {
    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.xadd(&stream, "*", &[("payload", message_body(*n))])
                .ignore();
        }
        let () = pipe
            .query_async(&mut redis)
            .await
            .map_err(|e| failure("add")(&e))?;
    }
    Ok(started.elapsed())
}

/// The entries of one read's reply, as their `payload` fields.
fn payloads(reply: Option<StreamReadReply>) -> Vec<(String, Value)> {
    reply
        .into_iter()
        .flat_map(|reply| reply.keys)
        .flat_map(|key| key.ids)
        .map(|entry| {
            let body = entry
                .get::<String>("payload")
                .and_then(|payload| serde_json::from_str(&payload).ok())
                .unwrap_or_default();
            (entry.id, body)
        })
        .collect()
}

async fn relay(
    redis: &mut MultiplexedConnection,
    prefix: &str,
    messages: usize,
    seconds: f64,
) -> Result<Value, Failure> {
    let (inbound, outbound) = (format!("{prefix}:in"), format!("{prefix}:out"));
    let mut arrivals = Arrivals::new(messages);
    let deadline = arrivals.deadline(seconds);
    let publisher = tokio::spawn(add(redis.clone(), inbound.clone(), messages));
    let mut cursor = "0".to_string();
    while !arrivals.complete() && Instant::now() < deadline {
        let options = StreamReadOptions::default().count(1000).block(200);
        let reply: Option<StreamReadReply> = redis
            .xread_options(&[&outbound], &[&cursor], &options)
            .await
            .map_err(|e| failure("read")(&e))?;
        for (id, body) in payloads(reply) {
            cursor = id;
            arrivals.arrived(&body);
        }
    }
    let published_in = publisher.await.map_err(|e| failure("publisher")(&e))??;
    let _: () = redis
        .del(&[&inbound, &outbound])
        .await
        .map_err(|e| failure("delete")(&e))?;
    Ok(arrivals.report(published_in))
}

async fn broker(redis: &mut MultiplexedConnection, messages: usize) -> Result<Value, Failure> {
    let stream = format!("bench:broker:{}", std::process::id());
    let _: () = redis
        .del(&stream)
        .await
        .map_err(|e| failure("delete")(&e))?;
    let published_in = add(redis.clone(), stream.clone(), messages).await?;
    let _: () = redis
        .xgroup_create(&stream, "bench", "0")
        .await
        .map_err(|e| failure("create group")(&e))?;
    let started = Instant::now();
    let mut read = 0;
    while read < messages {
        let options = StreamReadOptions::default()
            .group("bench", "reader")
            .count(IN_FLIGHT)
            .block(1000);
        let reply: Option<StreamReadReply> = redis
            .xread_options(&[&stream], &[">"], &options)
            .await
            .map_err(|e| failure("read")(&e))?;
        let ids: Vec<String> = payloads(reply).into_iter().map(|(id, _)| id).collect();
        if ids.is_empty() {
            break;
        }
        let _: u64 = redis
            .xack(&stream, "bench", &ids)
            .await
            .map_err(|e| failure("acknowledge")(&e))?;
        read += ids.len();
    }
    let read_in = started.elapsed();
    let _: () = redis
        .del(&stream)
        .await
        .map_err(|e| failure("delete")(&e))?;
    Ok(broker_report(messages, published_in, read, read_in))
}

async fn run(args: Args) -> Result<Value, Failure> {
    let client = redis::Client::open(args.url.as_str()).map_err(|e| failure("address")(&e))?;
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| failure("connect")(&e))?;
    match args.command {
        // A Redis stream is made by its first entry.
        Command::Setup { prefix } => {
            Ok(json!({ "in": format!("{prefix}:in"), "out": format!("{prefix}:out") }))
        }
        Command::Relay {
            prefix,
            messages,
            seconds,
        } => relay(&mut redis, &prefix, messages, seconds).await,
        Command::Broker { messages } => broker(&mut redis, messages).await,
    }
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-redis: {e}");
            std::process::exit(1);
        }
    }
}
