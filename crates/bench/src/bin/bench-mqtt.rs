//! `bench-mqtt`: an MQTT broker's own publish and delivery rates, and the
//! rate and latency of messages relayed through a Patchbay flow (an `mqtt`
//! trigger and a `publish` step), for the `messaging` scenario of
//! `bench/run`.
//!
//! ```text
//! bench-mqtt --url URL relay  --prefix P --messages N --seconds D
//! bench-mqtt --url URL broker --messages N
//! ```
//!
//! - `relay` subscribes to `P/out`, then sends probes to `P/in` until one
//!   comes back (the flow's session is subscribed), then publishes `N`
//!   messages `{"sent_at_us": T, "n": I}` at QoS 1 to `P/in` while it reads
//!   `P/out`. An MQTT broker queues only so much for a session (Mosquitto
//!   1000 messages beyond those in flight by default) and drops the rest,
//!   so the publisher is closed-loop: at most `WINDOW` messages are
//!   published and not yet back. Each message's latency runs from its
//!   publish to its arrival on `P/out`. It stops once all `N` came back or
//!   `D` seconds passed, and prints the rate (messages back per second,
//!   first publish to last arrival) and the latencies.
//! - `broker` measures the broker alone on a topic of its own: a QoS 1
//!   subscriber that acknowledges what it gets, and `N` messages published
//!   at QoS 1 with the same window between published and received
//!   (acknowledged publishes per second, messages delivered per second).
//!
//! `setup` has nothing to make (MQTT topics need no declaring). Each
//! prints one JSON object on standard output.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::messaging::{Arrivals, Command, Failure, broker_report, failure, message_body};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

/// Most messages published and not yet received: under Mosquitto's
/// default queue of 1000 per session, so the broker drops none.
const WINDOW: usize = 500;

#[derive(Parser)]
struct Args {
    /// The MQTT broker.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

fn client(url: &str, name: &str) -> Result<(AsyncClient, EventLoop), Failure> {
    let parsed = url::Url::parse(url).map_err(|e| failure("--url")(&e))?;
    let mut options = MqttOptions::new(
        format!("bench-{name}-{}", std::process::id()),
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(1883),
    );
    options
        .set_clean_start(true)
        .set_max_packet_size(Some(1024 * 1024))
        .set_receive_maximum(Some(WINDOW as u16));
    Ok(AsyncClient::new(options, WINDOW * 2))
}

/// A subscriber to `topic`: the bodies it receives, once subscribed.
async fn subscriber(url: &str, topic: &str) -> Result<mpsc::UnboundedReceiver<Value>, Failure> {
    let (client, mut events) = client(url, "reader")?;
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .map_err(|e| failure("subscribe")(&e))?;
    let (arrived, received) = mpsc::unbounded_channel();
    let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed = Some(subscribed);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    let body = serde_json::from_slice(&message.payload).unwrap_or_default();
                    if arrived.send(body).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(Err(failure("subscriber")(&e)));
                    }
                    return;
                }
            }
        }
    });
    is_subscribed
        .await
        .map_err(|e| failure("subscriber")(&e))??;
    Ok(received)
}

/// A publisher: a client whose connection runs in a task of its own,
/// which returns once `count` publishes were acknowledged.
fn publisher(
    url: &str,
    count: usize,
) -> Result<
    (
        AsyncClient,
        tokio::task::JoinHandle<Result<Duration, Failure>>,
    ),
    Failure,
> {
    let (client, mut events) = client(url, "writer")?;
    let acknowledged = tokio::spawn(async move {
        let started = Instant::now();
        let mut acked = 0;
        while acked < count {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => return Err(failure("publisher")(&e)),
            }
        }
        Ok(started.elapsed())
    });
    Ok((client, acknowledged))
}

async fn publish(client: &AsyncClient, topic: &str, n: usize) -> Result<(), Failure> {
    let properties = PublishProperties {
        user_properties: vec![("message-id".into(), format!("bench-{n}"))],
        ..PublishProperties::default()
    };
    client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, message_body(n), properties)
        .await
        .map_err(|e| failure("publish")(&e))
}

/// Publishes messages `0..count` to `topic`, each once `window` grants a
/// permit (given back as messages arrive).
fn publish_windowed(
    client: AsyncClient,
    topic: String,
    count: usize,
    window: Arc<Semaphore>,
) -> tokio::task::JoinHandle<Result<(), Failure>> {
    tokio::spawn(async move {
        for n in 0..count {
            window
                .acquire()
                .await
                .map_err(|e| failure("window")(&e))?
                .forget();
            publish(&client, &topic, n).await?;
        }
        Ok(())
    })
}

/// Waits until the flow of `P/in` relays a probe to `P/out`: its session
/// is subscribed.
async fn await_flow(
    client: &AsyncClient,
    inbound: &str,
    received: &mut mpsc::UnboundedReceiver<Value>,
) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let probe = json!({ "probe": true });
        client
            .publish(inbound, QoS::AtLeastOnce, false, probe.to_string())
            .await
            .map_err(|e| failure("probe")(&e))?;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), received.recv()).await {
            // Later copies of the probe are not ours and count for nothing.
            return Ok(());
        }
    }
    Err(Failure("the flow relayed no probe within 60 s".into()))
}

async fn relay(url: &str, prefix: &str, messages: usize, seconds: f64) -> Result<Value, Failure> {
    let (inbound, outbound) = (format!("{prefix}/in"), format!("{prefix}/out"));
    let mut received = subscriber(url, &outbound).await?;
    let (client, _acknowledged) = publisher(url, usize::MAX)?;
    await_flow(&client, &inbound, &mut received).await?;
    let window = Arc::new(Semaphore::new(WINDOW));
    let mut arrivals = Arrivals::new(messages);
    let deadline = arrivals.deadline(seconds);
    let started = Instant::now();
    let publishing = publish_windowed(client, inbound, messages, window.clone());
    while !arrivals.complete() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(body)) = tokio::time::timeout(left, received.recv()).await else {
            break;
        };
        if body.get("n").is_some() {
            window.add_permits(1);
        }
        arrivals.arrived(&body);
    }
    publishing.abort();
    Ok(arrivals.report(started.elapsed()))
}

async fn broker(url: &str, messages: usize) -> Result<Value, Failure> {
    let topic = format!("bench-broker/{}", std::process::id());
    let mut received = subscriber(url, &topic).await?;
    let (client, acknowledged) = publisher(url, messages)?;
    let window = Arc::new(Semaphore::new(WINDOW));
    let started = Instant::now();
    let publishing = publish_windowed(client, topic, messages, window.clone());
    let mut read = 0;
    while read < messages {
        match tokio::time::timeout(Duration::from_secs(10), received.recv()).await {
            Ok(Some(_)) => {
                read += 1;
                window.add_permits(1);
            }
            _ => break,
        }
    }
    let read_in = started.elapsed();
    publishing.abort();
    let published_in = match tokio::time::timeout(Duration::from_secs(10), acknowledged).await {
        Ok(Ok(Ok(took))) => took,
        _ => read_in,
    };
    Ok(broker_report(messages, published_in, read, read_in))
}

async fn run(args: Args) -> Result<Value, Failure> {
    match args.command {
        Command::Setup { prefix } => {
            Ok(json!({ "in": format!("{prefix}/in"), "out": format!("{prefix}/out") }))
        }
        Command::Relay {
            prefix,
            messages,
            seconds,
        } => relay(&args.url, &prefix, messages, seconds).await,
        Command::Broker { messages } => broker(&args.url, messages).await,
    }
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-mqtt: {e}");
            std::process::exit(1);
        }
    }
}
