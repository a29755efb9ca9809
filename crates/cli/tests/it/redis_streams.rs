//! A flow fed by a Redis stream through a consumer group. Every entry added
//! becomes exactly one run, although the node is SIGKILLed and restarted
//! while it consumes: an entry is acknowledged only once its run is
//! committed, the entries a dead node read are taken over by the next one
//! (`XAUTOCLAIM`), and the dedupe key (stream and entry id) turns a second
//! delivery into an acknowledgement. A flow publishing to a Redis stream
//! adds each message once, although steps are repeated after kills.
//!
//! Needs the Redis server of `PATCHBAY_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), and fails when it cannot reach it. Each test
//! uses streams of its own and deletes them. Sized by
//! `PATCHBAY_REDIS_MESSAGES` (default 10000) and `PATCHBAY_REDIS_KILLS`
//! (default 5).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use patchbay_store::RunStatus;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply, StreamRangeReply};

use crate::brokers::{kill_while_publishing, logs_within, start_node, succeeded_runs};
use crate::support::{TestProject, all_runs, campaign_setting, eventually, panics_in_log};

fn redis_url() -> String {
    std::env::var("PATCHBAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn node_env() -> [(&'static str, String); 1] {
    [("REDIS_URL", redis_url())]
}

async fn connect() -> MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("a Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("this test needs a Redis server at {url} (PATCHBAY_TEST_REDIS_URL): {e}")
        })
}

/// A stream key of the test's own.
fn stream_name() -> String {
    format!("pbtest:{}", uuid::Uuid::now_v7().simple())
}

/// Adds `count` entries `payload: {"n": N}` to `stream`, 250 at a time in
/// one pipeline, a batch every 20 ms.
async fn add_entries(mut redis: MultiplexedConnection, stream: String, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.xadd(&stream, "*", &[("payload", format!("{{\"n\": {n}}}"))])
                .ignore();
        }
        let () = pipe.query_async(&mut redis).await.expect("entries added");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The entries of `stream`, oldest first.
async fn entries(redis: &mut MultiplexedConnection, stream: &str) -> StreamRangeReply {
    redis.xrange_all(stream).await.expect("read the stream")
}

/// A field of an entry as text.
fn field(entry: &redis::streams::StreamId, name: &str) -> String {
    entry
        .get::<String>(name)
        .unwrap_or_else(|| panic!("entry {} has no field {name}", entry.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_of_a_stream_is_one_run_across_kills() {
    let messages = campaign_setting("PATCHBAY_REDIS_MESSAGES", 10_000) as usize;
    let kills = campaign_setting("PATCHBAY_REDIS_KILLS", 5) as usize;
    let mut redis = connect().await;
    let stream = stream_name();
    let flow = format!(
        "\
trigger:
  redis:
    url: \"${{env:REDIS_URL}}\"
    stream: \"{stream}\"
    claim_after: 2s
    batch: 200
steps:
  - transform: '{{n: .n, id: $headers[\"redis-id\"]}}'
"
    );
    // One worker: the node spends its time taking entries in, where a kill
    // finds what an early acknowledgement would lose.
    let project = TestProject::new("engine: { lease: 2s, workers: 1 }\n", &[("orders", &flow)]);
    let log = project.path().join("node.log");

    // The entries are there before the first node starts, and each node
    // lives 50 to 250 ms: every kill finds one taking a backlog in (a
    // node takes in thousands of entries a second), not waiting for the
    // next entry.
    let began = Instant::now();
    add_entries(redis.clone(), stream.clone(), messages).await;
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
        "{messages} entries added in {published_in:?} with {kills} kills; {} runs after {:?}",
        runs.len(),
        began.elapsed()
    );
    assert!(done, "{} runs of {messages} entries", runs.len());

    // Exactly one run per entry, each with its entry's payload and id.
    assert_eq!(runs.len(), messages, "one run per entry, no more");
    let mut by_n: HashMap<u64, usize> = HashMap::new();
    for run in &runs {
        assert_eq!(run.status, RunStatus::Succeeded, "run {}", run.id);
        assert_eq!(run.trigger, "redis");
        let output = run.output.clone().unwrap_or_default();
        let id = output["id"].as_str().expect("the entry id in $headers");
        assert_eq!(
            run.dedupe_key.as_deref(),
            Some(format!("redis:{stream}:{id}").as_str())
        );
        *by_n.entry(output["n"].as_u64().expect("n")).or_default() += 1;
    }
    assert_eq!(by_n.len(), messages, "every entry has its run");
    assert!(by_n.values().all(|count| *count == 1));

    // The group owes nothing, and the dead nodes' consumers, which owe
    // nothing either, are gone once idle for ten times `claim_after`.
    let settled = eventually(Duration::from_secs(60), || {
        let (mut redis, stream) = (redis.clone(), stream.clone());
        async move {
            let groups: StreamInfoGroupsReply = redis.xinfo_groups(&stream).await.unwrap();
            let consumers: StreamInfoConsumersReply = redis
                .xinfo_consumers(&stream, "patchbay-orders")
                .await
                .unwrap();
            groups.groups.len() == 1
                && groups.groups[0].pending == 0
                && consumers.consumers.len() <= 1
        }
    })
    .await;
    let consumers: StreamInfoConsumersReply = redis
        .xinfo_consumers(&stream, "patchbay-orders")
        .await
        .unwrap();
    assert!(
        settled,
        "entries unacknowledged or dead consumers left: {:?}",
        consumers
            .consumers
            .iter()
            .map(|c| (&c.name, c.pending, c.idle))
            .collect::<Vec<_>>()
    );
    node.stop_cleanly();
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    let _: () = redis.del(&stream).await.unwrap();
}

/// A flow that takes each entry of one stream and publishes a message to
/// another, its node SIGKILLed while it works: the second stream ends with
/// exactly one entry per input. A step repeated after a kill publishes
/// again with the same message id, and the step's script does not add it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_reach_the_stream_once_across_kills() {
    let messages = campaign_setting("PATCHBAY_REDIS_PUBLISHED", 2_000) as usize;
    let kills = campaign_setting("PATCHBAY_REDIS_KILLS", 5) as usize;
    let mut redis = connect().await;
    let (inbound, outbound) = (stream_name(), stream_name());
    let flow = format!(
        "\
trigger:
  redis: {{ url: \"${{env:REDIS_URL}}\", stream: \"{inbound}\", claim_after: 2s }}
steps:
  - id: accepted
    publish:
      redis: {{ url: \"${{env:REDIS_URL}}\", stream: \"{outbound}\" }}
    body: '{{n: .n}}'
    headers: '{{\"x-order\": (.n | tostring)}}'
"
    );
    let project = TestProject::new("engine: { lease: 2s }\n", &[("relay", &flow)]);
    let log = project.path().join("node.log");
    // As above: a backlog, and nodes that live 50 to 250 ms, so kills land
    // between a publish and the journal entry that records it.
    add_entries(redis.clone(), inbound.clone(), messages).await;
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
    assert!(done, "{} runs of {messages} entries", runs.len());
    let duplicates = runs
        .iter()
        .filter(|run| {
            run.output
                .as_ref()
                .is_some_and(|out| out["duplicate"] == true)
        })
        .count();

    // The outbound stream holds one entry per input, each with its header
    // and message id, and nothing else.
    let stored = entries(&mut redis, &outbound).await.ids;
    println!(
        "{messages} messages relayed with {kills} kills: {} in the outbound stream, \
         {duplicates} runs told their publish was a duplicate",
        stored.len()
    );
    assert_eq!(stored.len(), messages, "one outbound entry per input");
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut message_ids: HashMap<String, usize> = HashMap::new();
    for entry in &stored {
        let body: serde_json::Value = serde_json::from_str(&field(entry, "payload")).unwrap();
        let n = body["n"].as_u64().expect("n");
        assert_eq!(field(entry, "x-order"), n.to_string());
        *message_ids.entry(field(entry, "message-id")).or_default() += 1;
        *seen.entry(n).or_default() += 1;
    }
    assert_eq!(seen.len(), messages, "every input relayed");
    assert!(seen.values().all(|count| *count == 1));
    assert_eq!(message_ids.len(), messages, "one message id per message");
    node.stop_cleanly();
    assert!(panics_in_log(&log).is_empty(), "{:?}", panics_in_log(&log));
    let _: () = redis.del(&[&inbound, &outbound]).await.unwrap();
}

/// `start: new`: a flow added to a stream that already holds entries takes
/// only those added after its group was created; a server that cannot be
/// reached is retried without stopping the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_starts_new_skips_the_streams_history() {
    let mut redis = connect().await;
    let stream = stream_name();
    add_entries(redis.clone(), stream.clone(), 3).await;
    let flow = |url: &str| {
        format!(
            "trigger: {{ redis: {{ url: \"{url}\", stream: \"{stream}\", start: new }} }}\n\
             steps:\n  - transform: '.'\n"
        )
    };
    let project = TestProject::new(
        "",
        &[
            ("fresh", &flow("${env:REDIS_URL}")),
            ("unreachable", &flow("redis://127.0.0.1:1")),
        ],
    );
    let node = start_node(&project, &node_env());
    assert!(
        logs_within(&project, "consuming from Redis stream").await,
        "the consumer did not start"
    );
    assert!(
        logs_within(&project, "Redis stream consumer stopped; reconnecting").await,
        "no word of the unreachable server"
    );
    let _: String = redis
        .xadd(&stream, "*", &[("payload", "{\"n\": 100}")])
        .await
        .unwrap();
    let store = project.open_store().await;
    let ran = eventually(Duration::from_secs(20), || async {
        !all_runs(&*store).await.is_empty()
    })
    .await;
    assert!(ran, "the new entry was not consumed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let inputs: Vec<serde_json::Value> = all_runs(&*store)
        .await
        .into_iter()
        .map(|run| run.input)
        .collect();
    assert_eq!(inputs, vec![serde_json::json!({ "n": 100 })]);
    node.stop_cleanly();
    let _: () = redis.del(&stream).await.unwrap();
}
