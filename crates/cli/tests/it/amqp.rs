//! A flow fed by a RabbitMQ queue over AMQP 0-9-1. Every message published
//! becomes exactly one run, although the node is SIGKILLed and restarted
//! while it consumes: a message is acknowledged only once its run is
//! committed, the server requeues what a dead connection had not
//! acknowledged, and the dedupe key (queue and `message-id`) turns a
//! second delivery into an acknowledgement. A flow publishing to an
//! exchange sends each message with one `message-id`, whatever the kills
//! repeat.
//!
//! Needs the AMQP server of `PATCHBAY_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`), and fails when it cannot
//! reach it. Each test declares queues of its own and deletes them. Sized
//! by `PATCHBAY_AMQP_MESSAGES` (default 10000) and `PATCHBAY_AMQP_KILLS`
//! (default 5).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use patchbay_store::RunStatus;

use crate::brokers::{
    assert_one_id_per_message, assert_one_run_per_message, kill_while_publishing, logs_within,
    start_node, succeeded_runs,
};
use crate::support::{TestProject, all_runs, campaign_setting, eventually, panics_in_log};

fn amqp_url() -> String {
    std::env::var("PATCHBAY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn node_env() -> [(&'static str, String); 1] {
    [("AMQP_URL", amqp_url())]
}

/// A channel in confirm mode, with its connection (which must outlive it).
async fn channel() -> (Connection, Channel) {
    let url = amqp_url();
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("this test needs an AMQP server at {url} (PATCHBAY_TEST_AMQP_URL): {e}")
        });
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (connection, channel)
}

/// Declares a durable queue of the test's own; its name.
async fn own_queue(channel: &Channel) -> String {
    let name = format!("pbtest-{}", uuid::Uuid::now_v7().simple());
    declare(channel, &name).await;
    name
}

async fn declare(channel: &Channel, name: &str) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the test's queue");
}

/// Publishes `count` persistent messages `{"n": N}` with message id
/// `m-N` to `queue` (through the default exchange), each confirmed by the
/// server, 256 unconfirmed at once.
async fn publish(channel: &Channel, queue: &str, count: usize) {
    futures::stream::iter(0..count)
        .map(|n| async move {
            let body = serde_json::to_vec(&serde_json::json!({ "n": n })).unwrap();
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default()
                        .with_message_id(format!("m-{n}").into())
                        .with_delivery_mode(2),
                )
                .await
                .expect("publish")
                .await
                .expect("confirmation");
            assert!(confirm.is_ack(), "the server took message {n}");
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
}

/// Every message left in `queue`, taken off it.
async fn drain(channel: &Channel, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        taken.push(message);
    }
    taken
}

async fn delete(channel: &Channel, queue: &str) {
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .expect("delete the test's queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_queue_is_one_run_across_kills() {
    let messages = campaign_setting("PATCHBAY_AMQP_MESSAGES", 10_000) as usize;
    let kills = campaign_setting("PATCHBAY_AMQP_KILLS", 5) as usize;
    let (_connection, channel) = channel().await;
    let queue = own_queue(&channel).await;
    let flow = format!(
        "\
trigger:
  amqp: {{ url: \"${{env:AMQP_URL}}\", queue: \"{queue}\", prefetch: 200 }}
steps:
  - transform: '{{n: .n, id: $headers[\"amqp-message-id\"]}}'
"
    );
    // One worker: the node spends its time taking messages in, where a
    // kill finds what an early acknowledgement would lose.
    let project = TestProject::new("engine: { lease: 2s, workers: 1 }\n", &[("orders", &flow)]);
    let log = project.path().join("node.log");

    // The messages are there before the first node starts, and each node
    // lives 50 to 250 ms, so every kill finds one taking a backlog in.
    let began = Instant::now();
    publish(&channel, &queue, messages).await;
    let published_in = began.elapsed();
    let node = kill_while_publishing(
        &project,
        &node_env(),
        kills,
        50..250,
        tokio::spawn(async {}),
    )
    .await;

    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    println!(
        "{messages} messages published in {published_in:?}, {kills} kills; {} runs after {:?}",
        runs.len(),
        began.elapsed()
    );
    assert!(done, "{} runs of {messages} messages", runs.len());
    assert_one_run_per_message(&runs, messages, "amqp", |n| format!("amqp:{queue}:m-{n}"));

    // The queue is empty once the node stops: every message acknowledged.
    node.stop_cleanly();
    assert!(
        drain(&channel, &queue).await.is_empty(),
        "messages left unacknowledged"
    );
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    delete(&channel, &queue).await;
}

/// A flow that takes each message of one queue and publishes one to
/// another through the default exchange, its node SIGKILLed while it
/// works: every input reaches the second queue, and a copy sent again
/// after a kill carries the first one's `message-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_carry_one_id_across_kills() {
    let messages = campaign_setting("PATCHBAY_AMQP_PUBLISHED", 2_000) as usize;
    let kills = campaign_setting("PATCHBAY_AMQP_KILLS", 5) as usize;
    let (_connection, channel) = channel().await;
    let inbound = own_queue(&channel).await;
    let outbound = own_queue(&channel).await;
    let flow = format!(
        "\
trigger:
  amqp: {{ url: \"${{env:AMQP_URL}}\", queue: \"{inbound}\" }}
steps:
  - id: accepted
    publish:
      amqp: {{ url: \"${{env:AMQP_URL}}\", routing_key: \"{outbound}\" }}
    body: '{{n: .n}}'
    headers: '{{\"x-order\": (.n | tostring)}}'
"
    );
    let project = TestProject::new("engine: { lease: 2s }\n", &[("relay", &flow)]);
    let log = project.path().join("node.log");
    publish(&channel, &inbound, messages).await;
    let node = kill_while_publishing(
        &project,
        &node_env(),
        kills,
        50..250,
        tokio::spawn(async {}),
    )
    .await;

    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    assert!(done, "{} runs of {messages} messages", runs.len());
    node.stop_cleanly();

    let received = drain(&channel, &outbound).await;
    let mut ids_by_n: HashMap<u64, Vec<String>> = HashMap::new();
    for message in &received {
        let body: serde_json::Value = serde_json::from_slice(&message.delivery.data).unwrap();
        let n = body["n"].as_u64().expect("n");
        let properties = &message.delivery.properties;
        let header = properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get("x-order").cloned());
        assert!(
            matches!(&header, Some(lapin::types::AMQPValue::LongString(text)) if text.to_string() == n.to_string()),
            "{header:?}"
        );
        let id = properties
            .message_id()
            .as_ref()
            .expect("a message-id")
            .to_string();
        ids_by_n.entry(n).or_default().push(id);
    }
    let copies = received.len() - ids_by_n.len();
    println!(
        "{messages} messages relayed with {kills} kills: {} in the outbound queue, {copies} copies",
        received.len()
    );
    assert_one_id_per_message(&ids_by_n, messages);
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    delete(&channel, &inbound).await;
    delete(&channel, &outbound).await;
}

/// A queue that does not exist yet: the node says so and keeps trying; it
/// consumes once the queue is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_waited_for() {
    let (_connection, channel) = channel().await;
    let queue = format!("pbtest-{}", uuid::Uuid::now_v7().simple());
    let flow = format!(
        "trigger: {{ amqp: {{ url: \"${{env:AMQP_URL}}\", queue: \"{queue}\" }} }}\n\
         steps:\n  - transform: '.'\n"
    );
    let project = TestProject::new("", &[("late", &flow)]);
    let node = start_node(&project, &node_env());
    assert!(
        logs_within(&project, "AMQP consumer stopped; reconnecting").await,
        "no word of the missing queue in the log"
    );
    declare(&channel, &queue).await;
    publish(&channel, &queue, 1).await;
    let store = project.open_store().await;
    let ran = eventually(Duration::from_secs(20), || async {
        all_runs(&*store)
            .await
            .iter()
            .any(|run| run.status == RunStatus::Succeeded && run.input["n"] == 0)
    })
    .await;
    assert!(ran, "the message was not consumed once the queue existed");
    node.stop_cleanly();
    delete(&channel, &queue).await;
}
