//! What the broker triggers' tests share: a node started with a broker's
//! address in its environment, SIGKILLed and restarted while messages are
//! published, and the wait for every run to succeed.

use std::time::Duration;

use std::collections::HashMap;

use patchbay_store::{Run, RunStatus, Store};

use crate::support::{Patchbay, TestProject, all_runs, eventually, patchbay_run};

/// Whether `project`'s node logs `text` within 10 s.
pub async fn logs_within(project: &TestProject, text: &str) -> bool {
    let log = project.path().join("node.log");
    eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(text)
    })
    .await
}

/// A node of `project` with `env` set (the broker's address), its log in
/// `node.log`.
pub fn start_node(project: &TestProject, env: &[(&str, String)]) -> Patchbay {
    Patchbay::spawn(
        patchbay_run(project.path(), env),
        &project.path().join("node.log"),
    )
}

/// Runs `publisher` while a node of `project` is SIGKILLed and restarted
/// `kills` times, each kill after the node had a time drawn from
/// `lifetime_ms` (from its start) to take, commit and acknowledge some
/// messages; the node running once every message is published.
pub async fn kill_while_publishing(
    project: &TestProject,
    env: &[(&str, String)],
    kills: usize,
    lifetime_ms: std::ops::Range<u64>,
    publisher: tokio::task::JoinHandle<()>,
) -> Patchbay {
    let mut node = start_node(project, env);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(lifetime_ms.clone()))).await;
        tokio::task::spawn_blocking(move || node.kill())
            .await
            .unwrap();
        node = start_node(project, env);
    }
    publisher.await.expect("every message published");
    node
}

/// Every run of `store` once it holds `count` runs, all succeeded, or
/// after two minutes; whether they came.
pub async fn succeeded_runs(store: &dyn Store, count: usize) -> (bool, Vec<Run>) {
    let done = eventually(Duration::from_secs(120), || async {
        let runs = all_runs(store).await;
        runs.len() >= count && runs.iter().all(|run| run.status == RunStatus::Succeeded)
    })
    .await;
    (done, all_runs(store).await)
}

/// Asserts that `runs` are exactly one succeeded run of `trigger` per
/// message `0..messages`, each with the message's number `n` and its id
/// `m-N` in its output (as the tests' flows write them) and the dedupe key
/// `dedupe_key(n)`.
pub fn assert_one_run_per_message(
    runs: &[Run],
    messages: usize,
    trigger: &str,
    dedupe_key: impl Fn(u64) -> String,
) {
    assert_eq!(runs.len(), messages, "one run per message, no more");
    let mut by_n: HashMap<u64, usize> = HashMap::new();
    for run in runs {
        assert_eq!(run.status, RunStatus::Succeeded, "run {}", run.id);
        assert_eq!(run.trigger, trigger);
        let output = run.output.clone().unwrap_or_default();
        let n = output["n"].as_u64().expect("n");
        assert_eq!(output["id"], format!("m-{n}"));
        assert_eq!(run.dedupe_key.as_deref(), Some(dedupe_key(n).as_str()));
        *by_n.entry(n).or_default() += 1;
    }
    assert_eq!(by_n.len(), messages, "every message has its run");
    assert!(by_n.values().all(|count| *count == 1));
}

/// Asserts that a relay delivered every message `0..messages`, and that
/// the copies of each (sent again after a kill) carry its one message id,
/// a different id per message. `ids_by_n` holds the ids received per
/// message number.
pub fn assert_one_id_per_message(ids_by_n: &HashMap<u64, Vec<String>>, messages: usize) {
    assert_eq!(ids_by_n.len(), messages, "every input relayed");
    for (n, ids) in ids_by_n {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "the copies of message {n} carry different ids: {ids:?}"
        );
    }
    let distinct: std::collections::HashSet<&String> =
        ids_by_n.values().map(|ids| &ids[0]).collect();
    assert_eq!(distinct.len(), messages, "one message id per message");
}
