//! A flow fed by a NATS JetStream stream. Every message published becomes
//! exactly one run, although the node is SIGKILLed and restarted while it
//! consumes: a message is acknowledged only once its run is committed, the
//! server delivers again what was not acknowledged, and the dedupe key
//! (stream and sequence) turns a second delivery into an acknowledgement.
//!
//! Needs the NATS server of `PATCHBAY_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`) with JetStream, and fails when it cannot reach
//! it. Each test makes a stream of its own and deletes it. Sized by
//! `PATCHBAY_NATS_MESSAGES` (default 10000) and `PATCHBAY_NATS_KILLS`
//! (default 5).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures::StreamExt as _;
use patchbay_store::RunStatus;

use crate::brokers::{kill_while_publishing, logs_within, succeeded_runs};
use crate::support::{
    Patchbay, TestProject, all_runs, campaign_setting, eventually, panics_in_log,
};

fn nats_url() -> String {
    std::env::var("PATCHBAY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn jetstream() -> jetstream::Context {
    let url = nats_url();
    let client = async_nats::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "this test needs a NATS server with JetStream at {url} (PATCHBAY_TEST_NATS_URL): {e}"
        )
    });
    jetstream::new(client)
}

/// The name and subject root (`pbtest.ID`) of a stream of the test's own.
fn stream_names() -> (String, String) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    (format!("PBTEST_{id}"), format!("pbtest.{id}"))
}

/// Creates stream `name` on the subjects under `root`.
async fn create_stream(js: &jetstream::Context, name: &str, root: &str) {
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{root}.>")],
        ..Default::default()
    })
    .await
    .expect("create the test's stream");
}

/// A stream of the test's own; its name and subject root.
async fn own_stream(js: &jetstream::Context) -> (String, String) {
    let (name, root) = stream_names();
    create_stream(js, &name, &root).await;
    (name, root)
}

/// A flow of one `transform` fed by stream `name`, with `settings` added
/// to its `nats` trigger.
fn passing_flow(name: &str, settings: &str) -> String {
    format!(
        "trigger: {{ nats: {{ url: \"${{env:NATS_URL}}\", stream: {name}{settings} }} }}\n\
         steps:\n  - transform: '.'\n"
    )
}

/// Publishes `count` messages `{"n": N}` on `SUBJECT`, each acknowledged by
/// the server (so stored in the stream) before the next batch of 256 goes.
async fn publish(js: &jetstream::Context, subject: &str, count: usize) {
    let subject = subject.to_string();
    futures::stream::iter(0..count)
        .map(|n| {
            let (js, subject) = (js.clone(), subject.clone());
            async move {
                let body = serde_json::to_vec(&serde_json::json!({ "n": n })).unwrap();
                js.publish(subject, body.into())
                    .await
                    .expect("publish")
                    .await
                    .expect("the stream stored the message");
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
}

/// A node of `project`, with `NATS_URL` set and its log in `node.log`.
fn start_node(project: &TestProject) -> Patchbay {
    crate::brokers::start_node(project, &[("NATS_URL", nats_url())])
}

/// Publishes `messages` on `subject` while a node of `project` is
/// SIGKILLed and restarted `kills` times; the node running once every
/// message is published.
async fn publish_through_kills(
    js: &jetstream::Context,
    subject: &str,
    messages: usize,
    project: &TestProject,
    kills: usize,
) -> Patchbay {
    let publisher = {
        let (js, subject) = (js.clone(), subject.to_string());
        tokio::spawn(async move { publish(&js, &subject, messages).await })
    };
    kill_while_publishing(
        project,
        &[("NATS_URL", nats_url())],
        kills,
        200..700,
        publisher,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_stream_is_one_run_across_kills() {
    let messages = campaign_setting("PATCHBAY_NATS_MESSAGES", 10_000) as usize;
    let kills = campaign_setting("PATCHBAY_NATS_KILLS", 5) as usize;
    let js = jetstream().await;
    let (stream_name, root) = own_stream(&js).await;
    // Another subject of the stream, which the flow's filter leaves alone.
    js.publish(format!("{root}.refunds.1"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let flow = format!(
        "\
trigger:
  nats:
    url: \"${{env:NATS_URL}}\"
    stream: {stream_name}
    subject: \"{root}.orders.*\"
    ack_wait: 2s
    batch: 200
steps:
  - transform: '{{n: .n, subject: $headers[\"nats-subject\"]}}'
"
    );
    let project = TestProject::new("engine: { lease: 2s }\n", &[("orders", &flow)]);
    let log = project.path().join("node.log");

    let began = Instant::now();
    let node = publish_through_kills(
        &js,
        &format!("{root}.orders.new"),
        messages,
        &project,
        kills,
    )
    .await;
    let published_in = began.elapsed();

    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    println!(
        "{messages} messages published in {published_in:?} with {kills} kills; {} runs after {:?}",
        runs.len(),
        began.elapsed()
    );
    assert!(done, "{} runs of {messages} messages", runs.len());

    // Exactly one run per message, each of its own sequence, each with the
    // message's payload and subject.
    assert_eq!(runs.len(), messages, "one run per message, no more");
    let mut by_n: HashMap<u64, usize> = HashMap::new();
    for run in &runs {
        assert_eq!(run.status, RunStatus::Succeeded, "run {}", run.id);
        assert_eq!(run.trigger, "nats");
        let key = run.dedupe_key.as_deref().unwrap_or_default();
        assert!(key.starts_with(&format!("nats:{stream_name}:")), "{key}");
        let output = run.output.clone().unwrap_or_default();
        assert_eq!(output["subject"], format!("{root}.orders.new"));
        *by_n.entry(output["n"].as_u64().expect("n")).or_default() += 1;
    }
    assert_eq!(by_n.len(), messages, "every message has its run");
    assert!(by_n.values().all(|count| *count == 1));

    // The consumer owes nothing: every message acknowledged.
    let stream = js.get_stream(&stream_name).await.unwrap();
    let settled = eventually(Duration::from_secs(20), || {
        let stream = &stream;
        async move {
            let mut consumer: jetstream::consumer::PullConsumer =
                stream.get_consumer("patchbay-orders").await.unwrap();
            let info = consumer.info().await.unwrap();
            info.num_pending == 0 && info.num_ack_pending == 0
        }
    })
    .await;
    assert!(settled, "the consumer still has messages unacknowledged");
    node.stop_cleanly();
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    js.delete_stream(&stream_name).await.unwrap();
}

/// A stream that does not exist, a server that is down: the node says so
/// and keeps trying; it does not stop serving, and consumes once the
/// stream is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_is_waited_for() {
    let js = jetstream().await;
    let (name, root) = stream_names();
    let project = TestProject::new("", &[("late", &passing_flow(&name, ""))]);
    let node = start_node(&project);
    assert!(
        logs_within(&project, "NATS consumer stopped").await,
        "no word of the missing stream in the log"
    );

    create_stream(&js, &name, &root).await;
    js.publish(format!("{root}.x"), r#"{"late": true}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let store = project.open_store().await;
    let ran = eventually(Duration::from_secs(20), || async {
        let runs = all_runs(&*store).await;
        runs.iter().any(|run| run.status == RunStatus::Succeeded)
    })
    .await;
    assert!(ran, "the message was not consumed once the stream existed");
    node.stop_cleanly();
    js.delete_stream(&name).await.unwrap();
}

/// A flow that takes each message of one stream and publishes a message to
/// another, its node SIGKILLed while it works: the second stream ends with
/// exactly one message per input. A step repeated after a kill publishes
/// again, with the same `Nats-Msg-Id`, and the stream drops the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_reach_the_stream_once_across_kills() {
    let messages = campaign_setting("PATCHBAY_NATS_PUBLISHED", 2_000) as usize;
    let kills = campaign_setting("PATCHBAY_NATS_KILLS", 5) as usize;
    let js = jetstream().await;
    let (inbound, in_root) = own_stream(&js).await;
    let (outbound, out_root) = own_stream(&js).await;
    let flow = format!(
        "\
trigger:
  nats: {{ url: \"${{env:NATS_URL}}\", stream: {inbound}, ack_wait: 2s }}
steps:
  - id: accepted
    publish:
      nats: {{ url: \"${{env:NATS_URL}}\", subject: {out_root}.accepted }}
    body: '{{n: .n}}'
    headers: '{{\"x-order\": (.n | tostring)}}'
"
    );
    let project = TestProject::new("engine: { lease: 2s }\n", &[("relay", &flow)]);
    let log = project.path().join("node.log");
    let node =
        publish_through_kills(&js, &format!("{in_root}.orders"), messages, &project, kills).await;

    let store = project.open_store().await;
    let (done, runs) = succeeded_runs(&*store, messages).await;
    assert!(done, "{} runs of {messages} messages", runs.len());
    let duplicates = runs
        .iter()
        .filter(|run| {
            run.output
                .as_ref()
                .is_some_and(|out| out["duplicate"] == true)
        })
        .count();

    // The outbound stream holds one message per input, each with its
    // headers, and nothing else.
    let mut stream = js.get_stream(&outbound).await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    println!(
        "{messages} messages relayed with {kills} kills: {stored} in the outbound stream, \
         {duplicates} runs told their publish was a duplicate"
    );
    assert_eq!(stored, messages as u64, "one outbound message per input");
    let reader: jetstream::consumer::PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut read = Vec::new();
    loop {
        let mut fetched = reader
            .fetch()
            .max_messages(500)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        let before = read.len();
        while let Some(message) = fetched.next().await {
            read.push(message.unwrap());
        }
        if read.len() == before {
            break;
        }
    }
    for message in read {
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        let n = body["n"].as_u64().expect("n");
        let headers = message.headers.clone().expect("headers");
        assert_eq!(
            headers.get("x-order").map(|v| v.as_str()),
            Some(n.to_string().as_str())
        );
        assert!(headers.get("Nats-Msg-Id").is_some());
        *seen.entry(n).or_default() += 1;
    }
    assert_eq!(seen.len(), messages, "every input relayed");
    assert!(seen.values().all(|count| *count == 1));
    node.stop_cleanly();
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    js.delete_stream(&inbound).await.unwrap();
    js.delete_stream(&outbound).await.unwrap();
}

/// `start: new`: a flow added to a stream that already holds messages
/// takes only those published after its consumer was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_starts_new_skips_the_streams_history() {
    let js = jetstream().await;
    let (name, root) = own_stream(&js).await;
    publish(&js, &format!("{root}.old"), 3).await;
    let project = TestProject::new("", &[("fresh", &passing_flow(&name, ", start: new"))]);
    let node = start_node(&project);
    assert!(
        logs_within(&project, "consuming from NATS JetStream").await,
        "the consumer did not start"
    );
    publish(&js, &format!("{root}.new"), 2).await;
    let store = project.open_store().await;
    let ran = eventually(Duration::from_secs(20), || async {
        all_runs(&*store).await.len() >= 2
    })
    .await;
    assert!(ran, "the new messages were not consumed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = all_runs(&*store).await;
    let subjects: Vec<String> = runs
        .iter()
        .map(|run| {
            run.headers["nats-subject"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(runs.len(), 2, "only the new messages: {subjects:?}");
    assert!(subjects.iter().all(|s| s.ends_with(".new")), "{subjects:?}");
    node.stop_cleanly();
    js.delete_stream(&name).await.unwrap();
}
