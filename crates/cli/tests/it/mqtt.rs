//! A flow fed by an MQTT topic (Mosquitto). Every message published
//! becomes exactly one run, although the node is SIGKILLed and restarted
//! while it consumes: a message is acknowledged only once its run is
//! committed, the broker keeps the persistent session's unacknowledged and
//! queued messages while the node is down, and the dedupe key (topic and
//! `message-id` user property) turns a second delivery into an
//! acknowledgement. A flow publishing to a topic sends each message with
//! one `message-id`, whatever the kills repeat.
//!
//! Mosquitto queues at most `max_queued_messages` (1000 by default) for a
//! session beyond those in flight and drops the rest, which would be the
//! broker's loss, not the node's; so the messages are not published all at
//! once: never more than 800 wait for their runs. While each node is down,
//! a burst fills that room; the next node starts with it in hand and is
//! killed 100 to 300 ms later, while it takes it in. The rest follow in
//! chunks of 100 as the runs are made.
//!
//! Needs the MQTT broker of `PATCHBAY_TEST_MQTT_URL` (default
//! `mqtt://127.0.0.1:1883`), and fails when it cannot reach it. Each test
//! uses topics and client ids of its own and removes its sessions. Sized by
//! `PATCHBAY_MQTT_MESSAGES` (default 10000) and `PATCHBAY_MQTT_KILLS`
//! (default 5).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use patchbay_store::Store;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;

use crate::brokers::{
    assert_one_id_per_message, assert_one_run_per_message, logs_within, start_node, succeeded_runs,
};
use crate::support::{TestProject, campaign_setting, panics_in_log};

/// Most messages published and not yet made runs: under Mosquitto's
/// default queue of 1000 per session, so that the broker drops none
/// however slow the node is.
const QUEUE_ROOM: usize = 800;
/// How long each node lives before it is killed, in milliseconds from its
/// start (it subscribes within about 100 ms).
const LIFETIME_MS: std::ops::Range<u64> = 100..300;
/// Messages published at a time once the kills are done.
const CHUNK: usize = 100;

fn mqtt_url() -> String {
    std::env::var("PATCHBAY_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

fn node_env() -> [(&'static str, String); 1] {
    [("MQTT_URL", mqtt_url())]
}

/// A name of the test's own: `pbtest-…`.
fn own_name() -> String {
    format!("pbtest-{}", uuid::Uuid::now_v7().simple())
}

/// A client of the test's broker under `client_id`.
fn client(client_id: &str, clean_start: bool) -> (AsyncClient, EventLoop) {
    let url = url::Url::parse(&mqtt_url()).expect("PATCHBAY_TEST_MQTT_URL is a URL");
    let mut options = MqttOptions::new(
        client_id,
        url.host_str().expect("a host"),
        url.port().unwrap_or(1883),
    );
    options
        .set_clean_start(clean_start)
        .set_max_packet_size(Some(1024 * 1024));
    if !clean_start {
        options.set_session_expiry_interval(Some(600));
    }
    AsyncClient::new(options, 1024)
}

/// Publishes messages `{"n": N}` for each N of `numbers`, with the
/// `message-id` user property `m-N`, to `topic` at QoS 1; returns once the
/// broker acknowledged every one.
async fn publish(topic: &str, numbers: std::ops::Range<usize>) {
    let (client, mut events) = client(&own_name(), true);
    let url = mqtt_url();
    let count = numbers.len();
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < count {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => {
                    panic!("this test needs an MQTT broker at {url} (PATCHBAY_TEST_MQTT_URL): {e}")
                }
            }
        }
    });
    for n in numbers {
        let properties = PublishProperties {
            user_properties: vec![("message-id".into(), format!("m-{n}"))],
            ..PublishProperties::default()
        };
        let body = serde_json::to_vec(&serde_json::json!({ "n": n })).unwrap();
        client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, body, properties)
            .await
            .expect("queue the publish");
    }
    tokio::time::timeout(Duration::from_secs(60), acks)
        .await
        .expect("the broker acknowledged every message within a minute")
        .expect("the publisher's connection");
    let _ = client.disconnect().await;
}

/// How many messages of `published` have no run yet in `store`.
async fn backlog(store: &dyn Store, published: usize) -> usize {
    let counts = store.count_runs().await.expect("count the runs");
    let runs: u64 = counts.iter().map(|count| count.count).sum();
    published.saturating_sub(runs as usize)
}

/// Publishes `messages` to `topic`, which `project`'s flow consumes, while
/// its node is killed `kills` times: a first node subscribes (the session
/// must exist before anything is published), then for each kill a burst
/// is published while no node runs and the next node is killed while it
/// takes it in; the rest is published to the node left running, which is
/// returned. Never more than `QUEUE_ROOM` messages wait for their runs.
async fn publish_across_kills(
    project: &TestProject,
    store: &dyn Store,
    topic: &str,
    messages: usize,
    kills: usize,
) -> crate::support::Patchbay {
    let first = start_node(project, &node_env());
    assert!(
        logs_within(project, "consuming from MQTT topic").await,
        "the node did not subscribe"
    );
    first.kill();
    let mut published = 0;
    for _ in 0..kills {
        let room = QUEUE_ROOM.saturating_sub(backlog(store, published).await);
        let burst = published..(published + room).min(messages);
        published = burst.end;
        publish(topic, burst).await;
        let node = start_node(project, &node_env());
        tokio::time::sleep(Duration::from_millis(fastrand::u64(LIFETIME_MS))).await;
        tokio::task::spawn_blocking(move || node.kill())
            .await
            .unwrap();
    }
    let node = start_node(project, &node_env());
    while published < messages {
        if backlog(store, published).await + CHUNK > QUEUE_ROOM {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let chunk = published..(published + CHUNK).min(messages);
        published = chunk.end;
        publish(topic, chunk).await;
    }
    node
}

/// Ends the broker's session of `client_id`: a clean start discards it,
/// and a session expiring at once ends with the connection. Also how a
/// test finds out first that the broker is there.
async fn remove_session(client_id: &str) {
    let (client, mut events) = client(client_id, true);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "this test needs an MQTT broker at {} (PATCHBAY_TEST_MQTT_URL): {e}",
                mqtt_url()
            ),
        }
    }
    client.disconnect().await.expect("disconnect");
    while events.poll().await.is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_topic_is_one_run_across_kills() {
    let messages = campaign_setting("PATCHBAY_MQTT_MESSAGES", 10_000) as usize;
    let kills = campaign_setting("PATCHBAY_MQTT_KILLS", 5) as usize;
    let topic = format!("{}/orders", own_name());
    let session = own_name();
    remove_session(&session).await;
    let flow = format!(
        "\
trigger:
  mqtt: {{ url: \"${{env:MQTT_URL}}\", topic: \"{topic}\", client_id: \"{session}\" }}
steps:
  - transform: '{{n: .n, id: $headers[\"message-id\"]}}'
"
    );
    // One worker: the node spends its time taking messages in, where a
    // kill finds what an early acknowledgement would lose.
    let project = TestProject::new("engine: { lease: 2s, workers: 1 }\n", &[("orders", &flow)]);
    let log = project.path().join("node.log");

    let store = project.open_store().await;
    let began = Instant::now();
    let node = publish_across_kills(&project, &*store, &topic, messages, kills).await;
    let published_in = began.elapsed();

    let (done, runs) = succeeded_runs(&*store, messages).await;
    println!(
        "{messages} messages published in {published_in:?}, {kills} kills; {} runs after {:?}",
        runs.len(),
        began.elapsed()
    );
    assert!(done, "{} runs of {messages} messages", runs.len());
    assert_one_run_per_message(&runs, messages, "mqtt", |n| format!("mqtt:{topic}:m-{n}"));
    node.stop_cleanly();
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    remove_session(&session).await;
}

/// Collects what arrives on `topic` through a session of its own, made
/// before this returns.
async fn subscribe(topic: &str) -> (String, mpsc::UnboundedReceiver<Publish>) {
    let session = own_name();
    let (client, mut events) = client(&session, false);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("queue the subscription");
    let (arrived, received) = mpsc::unbounded_channel();
    let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed = Some(subscribed);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    if arrived.send(message).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Its session is being removed: the test is done with it.
                Err(_) if arrived.is_closed() => return,
                Err(e) => panic!("the test's subscriber lost its connection: {e}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), is_subscribed)
        .await
        .expect("subscribed within 10 s")
        .expect("subscribed");
    (session, received)
}

/// A flow that takes each message of one topic and publishes one to
/// another, its node SIGKILLed while it works: every input reaches the
/// second topic, and a copy sent again after a kill carries the first
/// one's `message-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_carry_one_id_across_kills() {
    let messages = campaign_setting("PATCHBAY_MQTT_PUBLISHED", 4_000) as usize;
    let kills = campaign_setting("PATCHBAY_MQTT_KILLS", 5) as usize;
    let inbound = format!("{}/in", own_name());
    let outbound = format!("{}/out", own_name());
    let session = own_name();
    remove_session(&session).await;
    let flow = format!(
        "\
trigger:
  mqtt: {{ url: \"${{env:MQTT_URL}}\", topic: \"{inbound}\", client_id: \"{session}\" }}
steps:
  - id: accepted
    publish:
      mqtt: {{ url: \"${{env:MQTT_URL}}\", topic: \"{outbound}\" }}
    body: '{{n: .n}}'
    headers: '{{\"x-order\": (.n | tostring)}}'
"
    );
    let (subscriber, mut received) = subscribe(&outbound).await;
    let project = TestProject::new("engine: { lease: 2s }\n", &[("relay", &flow)]);
    let log = project.path().join("node.log");
    let store = project.open_store().await;
    let node = publish_across_kills(&project, &*store, &inbound, messages, kills).await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    assert!(done, "{} runs of {messages} messages", runs.len());
    node.stop_cleanly();

    // Whatever the broker acknowledged to the node has reached the
    // subscriber's session; a second's grace for the last to arrive.
    let mut ids_by_n: HashMap<u64, Vec<String>> = HashMap::new();
    let mut copies = 0;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(1), received.recv()).await
    {
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        let n = body["n"].as_u64().expect("n");
        let properties = message.properties.expect("user properties");
        let property = |name: &str| {
            properties
                .user_properties
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(property("x-order"), Some(n.to_string()));
        assert_eq!(properties.content_type.as_deref(), Some("application/json"));
        let id = property("message-id").expect("a message-id");
        let ids = ids_by_n.entry(n).or_default();
        copies += usize::from(!ids.is_empty());
        ids.push(id);
    }
    println!(
        "{messages} messages relayed with {kills} kills: {} distinct, {copies} copies",
        ids_by_n.len()
    );
    assert_one_id_per_message(&ids_by_n, messages);
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    drop(received);
    remove_session(&session).await;
    remove_session(&subscriber).await;
}

/// A broker that cannot be reached: the node says so and keeps trying,
/// without a word of the password in its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_retried_without_showing_its_password() {
    let flow = "trigger: { mqtt: { url: \"${env:MQTT_URL}\", topic: t } }\n\
                steps:\n  - transform: '.'\n";
    let project = TestProject::new("", &[("late", flow)]);
    let node = start_node(
        &project,
        &[("MQTT_URL", "mqtt://me:hunter2@127.0.0.1:1".to_string())],
    );
    assert!(
        logs_within(&project, "MQTT consumer stopped; reconnecting").await,
        "no word of the unreachable broker in the log"
    );
    node.stop_cleanly();
    let log = std::fs::read_to_string(project.path().join("node.log")).unwrap();
    assert!(!log.contains("hunter2"), "{log}");
}

/// A node whose flow `orders` takes each message of a topic of its own
/// (through a session of its own) and passes it on, once it has
/// subscribed.
struct Subscribed {
    topic: String,
    session: String,
    project: TestProject,
    node: crate::support::Patchbay,
}

async fn subscribed_node() -> Subscribed {
    let topic = format!("{}/orders", own_name());
    let session = own_name();
    remove_session(&session).await;
    let flow = format!(
        "trigger: {{ mqtt: {{ url: \"${{env:MQTT_URL}}\", topic: \"{topic}\", client_id: \"{session}\" }} }}\n\
         steps:\n  - transform: '.'\n"
    );
    let project = TestProject::new("", &[("orders", &flow)]);
    let node = start_node(&project, &node_env());
    assert!(
        logs_within(&project, "consuming from MQTT topic").await,
        "the node did not subscribe"
    );
    Subscribed {
        topic,
        session,
        project,
        node,
    }
}

/// A message whose run cannot be committed is not acknowledged: with the
/// store's folder deleted under the node, the messages published stay
/// with the broker, and a node started on a new store has a run for each.
/// (A node acknowledging before the commit loses every one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_run_is_not_committed_stays_with_the_broker() {
    if crate::support::sqlite_only("the SQLite file deleted under the node") {
        return;
    }
    let messages = 20;
    let Subscribed {
        topic,
        session,
        project,
        node,
    } = subscribed_node().await;
    let folder = crate::support::store_file(&project)
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::remove_dir_all(&folder).expect("delete the store folder");
    let client = reqwest::Client::new();
    let refusing = crate::support::eventually(Duration::from_secs(10), || async {
        let health = client.get(format!("{}/healthz", node.base)).send().await;
        health.is_ok_and(|answer| answer.status() == 503)
    })
    .await;
    assert!(refusing, "the node did not notice its store was gone");
    publish(&topic, 0..messages).await;
    assert!(
        logs_within(&project, "message's run not committed").await,
        "the node did not try to commit the messages"
    );
    node.kill();

    let node = start_node(&project, &node_env());
    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    assert!(done, "{} runs of {messages} messages", runs.len());
    assert_eq!(runs.len(), messages);
    node.stop_cleanly();
    remove_session(&session).await;
}

/// A message that comes again with the same `message-id` (a publisher's
/// retry, or the broker sending again what a node committed and died
/// before acknowledging) makes no second run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_again_makes_one_run() {
    let messages = 20;
    let Subscribed {
        topic,
        session,
        project,
        node,
    } = subscribed_node().await;
    publish(&topic, 0..messages).await;
    publish(&topic, 0..messages).await;
    // One more, after the copies: once it has its run, so have they.
    publish(&topic, messages..messages + 1).await;
    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages + 1).await;
    assert!(done, "{} runs of {} messages", runs.len(), messages + 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(crate::support::all_runs(&*store).await.len(), messages + 1);
    node.stop_cleanly();
    remove_session(&session).await;
}
