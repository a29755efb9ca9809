//! `bench-nats`: NATS JetStream's own publish and consume rates, and the
//! rate and latency of messages relayed through a Patchbay flow (a `nats`
//! trigger and a `publish` step), for the `messaging` scenario of
//! `bench/run`.
//!
//! ```text
//! bench-nats --url URL setup  --prefix P             streams P_IN and P_OUT
//! bench-nats --url URL relay  --prefix P --messages N --seconds D
//! bench-nats --url URL broker --messages N
//! ```
//!
//! - `setup` creates the streams a relay flow reads (`P_IN`, subjects
//!   `P.in.>`) and writes (`P_OUT`, subjects `P.out.>`).
//! - `relay` publishes `N` messages `{"sent_at_us": T, "n": I}` on
//!   `P.in.orders`, 256 awaiting the server's confirmation at once, while it
//!   reads `P_OUT` from a consumer of its own; each message's latency runs
//!   from its publish to its arrival on `P_OUT` (the flow passes the body
//!   on). It stops once all `N` came back or `D` seconds passed, then
//!   deletes both streams. It prints the rate (messages back per second,
//!   first publish to last arrival) and the latencies.
//! - `broker` measures the broker alone on a stream of its own: `N`
//!   messages published the same way (confirmed publishes per second), then
//!   read back by a pull consumer (messages per second), then the stream is
//!   deleted.
//!
//! Each prints one JSON object on standard output.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use clap::Parser;
use futures::StreamExt;
use patchbay_bench::messaging::{Arrivals, Command, Failure, broker_report, failure, publish_all};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The NATS server, with JetStream.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

async fn create_stream(js: &jetstream::Context, name: &str, subjects: &str) -> Result<(), Failure> {
    let _ = js.delete_stream(name).await;
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        ..Default::default()
    })
    .await
    .map_err(|e| failure("create stream")(&e))?;
    Ok(())
}

/// Publishes `count` messages on `subject`, `IN_FLIGHT` unconfirmed at
/// once; how long it took.
async fn publish(
    js: &jetstream::Context,
    subject: &str,
    count: usize,
) -> Result<Duration, Failure> {
    publish_all(count, |_, body| async move {
        js.publish(subject.to_string(), body.into())
            .await
            .map_err(|e| failure("publish")(&e))?
            .await
            .map_err(|e| failure("publish confirmation")(&e))?;
        Ok(())
    })
    .await
}

/// A consumer of its own on `stream`, without acknowledgements.
async fn reader(js: &jetstream::Context, stream: &str) -> Result<pull::Stream, Failure> {
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| failure("get stream")(&e))?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .map_err(|e| failure("create consumer")(&e))?;
    consumer
        .messages()
        .await
        .map_err(|e| failure("read messages")(&e))
}

async fn relay(
    js: &jetstream::Context,
    prefix: &str,
    messages: usize,
    seconds: f64,
) -> Result<Value, Failure> {
    let mut read = reader(js, &format!("{prefix}_OUT")).await?;
    let mut arrivals = Arrivals::new(messages);
    let deadline = arrivals.deadline(seconds);
    let publisher = {
        let (js, subject) = (js.clone(), format!("{prefix}.in.orders"));
        tokio::spawn(async move { publish(&js, &subject, messages).await })
    };
    while !arrivals.complete() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(message)) = tokio::time::timeout(left, read.next()).await else {
            break;
        };
        let message = message.map_err(|e| failure("read")(&e))?;
        arrivals.arrived(&serde_json::from_slice(&message.payload).unwrap_or_default());
    }
    let published_in = publisher.await.map_err(|e| failure("publisher")(&e))??;
    for name in ["IN", "OUT"] {
        let _ = js.delete_stream(format!("{prefix}_{name}")).await;
    }
    Ok(arrivals.report(published_in))
}

async fn broker(js: &jetstream::Context, messages: usize) -> Result<Value, Failure> {
    let name = format!("BENCH_BROKER_{}", std::process::id());
    create_stream(js, &name, &format!("bench.broker.{}.>", std::process::id())).await?;
    let subject = format!("bench.broker.{}.x", std::process::id());
    let published_in = publish(js, &subject, messages).await?;
    let mut messages_in = reader(js, &name).await?;
    let started = Instant::now();
    let mut read = 0;
    while read < messages {
        match tokio::time::timeout(Duration::from_secs(10), messages_in.next()).await {
            Ok(Some(Ok(_))) => read += 1,
            _ => break,
        }
    }
    let read_in = started.elapsed();
    let _ = js.delete_stream(&name).await;
    Ok(broker_report(messages, published_in, read, read_in))
}

async fn run(args: Args) -> Result<Value, Failure> {
    let client = async_nats::connect(&args.url)
        .await
        .map_err(|e| failure("connect")(&e))?;
    let js = jetstream::new(client);
    match args.command {
        Command::Setup { prefix } => {
            create_stream(&js, &format!("{prefix}_IN"), &format!("{prefix}.in.>")).await?;
            create_stream(&js, &format!("{prefix}_OUT"), &format!("{prefix}.out.>")).await?;
            Ok(json!({ "in": format!("{prefix}_IN"), "out": format!("{prefix}_OUT") }))
        }
        Command::Relay {
            prefix,
            messages,
            seconds,
        } => relay(&js, &prefix, messages, seconds).await,
        Command::Broker { messages } => broker(&js, messages).await,
    }
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-nats: {e}");
            std::process::exit(1);
        }
    }
}
