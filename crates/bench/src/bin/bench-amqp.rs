//! `bench-amqp`: RabbitMQ's own publish and consume rates, and the rate
//! and latency of messages relayed through a Patchbay flow (an `amqp`
//! trigger and a `publish` step), for the `messaging` scenario of
//! `bench/run`.
//!
//! ```text
//! bench-amqp --url URL setup  --prefix P             queues P-in and P-out
//! bench-amqp --url URL relay  --prefix P --messages N --seconds D
//! bench-amqp --url URL broker --messages N
//! ```
//!
//! - `setup` declares the durable queues a relay flow reads (`P-in`) and
//!   writes (`P-out`, through the default exchange).
//! - `relay` publishes `N` persistent messages `{"sent_at_us": T, "n": I}`
//!   with a `message-id` to `P-in`, 256 awaiting the server's confirmation
//!   at once, while it consumes `P-out`; each message's latency runs from
//!   its publish to its arrival on `P-out` (the flow passes the body on).
//!   It stops once all `N` came back or `D` seconds passed, then deletes
//!   both queues, and prints the rate (messages back per second, first
//!   publish to last arrival) and the latencies.
//! - `broker` measures the server alone on a queue of its own: `N`
//!   messages published the same way (confirmed publishes per second),
//!   then consumed with manual acknowledgements and a prefetch of 256, as
//!   the trigger reads (messages per second), then the queue is deleted.
//!
//! Each prints one JSON object on standard output.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use patchbay_bench::messaging::{
    Arrivals, Command, Failure, IN_FLIGHT, broker_report, failure, publish_all,
};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The AMQP server.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

async fn declare(channel: &Channel, queue: &str) -> Result<(), Failure> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .map_err(|e| failure("declare queue")(&e))?;
    Ok(())
}

async fn delete(channel: &Channel, queue: &str) {
    let _ = channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
}

/// Publishes `count` persistent messages to `queue`, `IN_FLIGHT`
/// unconfirmed at once; how long it took.
async fn publish(channel: &Channel, queue: &str, count: usize) -> Result<Duration, Failure> {
    publish_all(count, |n, body| async move {
        let properties = BasicProperties::default()
            .with_message_id(format!("bench-{n}").into())
            .with_delivery_mode(2);
        let options = BasicPublishOptions::default();
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                options,
                body.as_bytes(),
                properties,
            )
            .await
            .map_err(|e| failure("publish")(&e))?
            .await
            .map_err(|e| failure("publish confirmation")(&e))?;
        Ok(())
    })
    .await
}

/// A consumer of `queue` with manual acknowledgements and a prefetch of
/// `IN_FLIGHT`, on a channel of its own.
async fn consumer(connection: &Connection, queue: &str) -> Result<lapin::Consumer, Failure> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| failure("channel")(&e))?;
    channel
        .basic_qos(IN_FLIGHT as u16, BasicQosOptions::default())
        .await
        .map_err(|e| failure("qos")(&e))?;
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| failure("consume")(&e))
}

async fn relay(
    connection: &Connection,
    channel: &Channel,
    prefix: &str,
    messages: usize,
    seconds: f64,
) -> Result<Value, Failure> {
    let (inbound, outbound) = (format!("{prefix}-in"), format!("{prefix}-out"));
    let mut read = consumer(connection, &outbound).await?;
    let mut arrivals = Arrivals::new(messages);
    let deadline = arrivals.deadline(seconds);
    let publisher = {
        let (channel, inbound) = (channel.clone(), inbound.clone());
        tokio::spawn(async move { publish(&channel, &inbound, messages).await })
    };
    while !arrivals.complete() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(delivery)) = tokio::time::timeout(left, read.next()).await else {
            break;
        };
        let delivery = delivery.map_err(|e| failure("read")(&e))?;
        delivery
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| failure("ack")(&e))?;
        arrivals.arrived(&serde_json::from_slice(&delivery.data).unwrap_or_default());
    }
    let published_in = publisher.await.map_err(|e| failure("publisher")(&e))??;
    delete(channel, &inbound).await;
    delete(channel, &outbound).await;
    Ok(arrivals.report(published_in))
}

async fn broker(
    connection: &Connection,
    channel: &Channel,
    messages: usize,
) -> Result<Value, Failure> {
    let queue = format!("bench-broker-{}", std::process::id());
    declare(channel, &queue).await?;
    let published_in = publish(channel, &queue, messages).await?;
    let mut deliveries = consumer(connection, &queue).await?;
    let started = Instant::now();
    let mut read = 0;
    while read < messages {
        match tokio::time::timeout(Duration::from_secs(10), deliveries.next()).await {
            Ok(Some(Ok(delivery))) => {
                delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| failure("ack")(&e))?;
                read += 1;
            }
            _ => break,
        }
    }
    let read_in = started.elapsed();
    delete(channel, &queue).await;
    Ok(broker_report(messages, published_in, read, read_in))
}

async fn run(args: Args) -> Result<Value, Failure> {
    let connection = Connection::connect(&args.url, ConnectionProperties::default())
        .await
        .map_err(|e| failure("connect")(&e))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| failure("channel")(&e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| failure("confirm mode")(&e))?;
    match args.command {
        Command::Setup { prefix } => {
            declare(&channel, &format!("{prefix}-in")).await?;
            declare(&channel, &format!("{prefix}-out")).await?;
            Ok(json!({ "in": format!("{prefix}-in"), "out": format!("{prefix}-out") }))
        }
        Command::Relay {
            prefix,
            messages,
            seconds,
        } => relay(&connection, &channel, &prefix, messages, seconds).await,
        Command::Broker { messages } => broker(&connection, &channel, messages).await,
    }
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-amqp: {e}");
            std::process::exit(1);
        }
    }
}
