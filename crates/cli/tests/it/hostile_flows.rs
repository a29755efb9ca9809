//! Flows that evaluate hostile jq, against the real binary: every program is stopped by
//! its budget, its run ends dead with an error naming the budget, and the node keeps
//! serving. A run that stops the node itself is declared dead after a bounded number of
//! restarts.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Patchbay, TestProject, eventually, patchbay_run};

const HOSTILE_FLOWS: &[(&str, &str)] = &[
    (
        "nest",
        "trigger: { webhook: { path: /hooks/nest } }\n\
         steps:\n  - transform: 'reduce .items[] as $x (null; {value: $x, next: .})'\n",
    ),
    (
        "forever",
        "trigger: { webhook: { path: /hooks/forever } }\n\
         steps:\n  - transform: '0 | until(. < 0; . + 1)'\n",
    ),
    (
        "huge",
        "trigger: { webhook: { path: /hooks/huge } }\n\
         steps:\n  - transform: '[range(.n) | {value: .}]'\n",
    ),
    (
        "control",
        "trigger: { webhook: { path: /hooks/control, mode: sync } }\n\
         steps:\n  - respond: { status: 200, body: '{echo: .n}' }\n",
    ),
];

fn start(project: &TestProject, log: &Path) -> Patchbay {
    Patchbay::spawn(patchbay_run(project.path(), &[]), log)
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> Value {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("post webhook");
    assert!(
        response.status().is_success(),
        "webhook refused: {}",
        response.status()
    );
    response.json().await.expect("webhook answer")
}

/// A run as the management API shows it: `{run, journal}`.
async fn shown(client: &reqwest::Client, base: &str, id: &str) -> Value {
    client
        .get(format!("{base}/api/v1/runs/{id}"))
        .send()
        .await
        .expect("get run")
        .json::<Value>()
        .await
        .expect("run body")
}

async fn run(client: &reqwest::Client, base: &str, id: &str) -> Value {
    shown(client, base, id).await["run"].clone()
}

async fn ends_dead(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let mut last = Value::Null;
    let dead = eventually(Duration::from_secs(30), || {
        let client = client.clone();
        async move { run(&client, base, id).await["status"] == "dead" }
    })
    .await;
    if dead {
        last = run(client, base, id).await;
    }
    assert!(dead, "run {id} did not end dead: {last}");
    last
}

async fn healthy(client: &reqwest::Client, base: &str) -> bool {
    client
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

#[tokio::test]
async fn hostile_programs_end_as_dead_runs_and_the_node_keeps_serving() {
    // A memory budget small enough to be reached well within the time budget by a
    // debug build on a loaded machine: each item of `huge` holds an object.
    let project = TestProject::new(
        "engine: { expressions: { max_memory_bytes: 8388608 } }\n",
        HOSTILE_FLOWS,
    );
    let log = project.path().join("node.log");
    let node = start(&project, &log);
    let base = node.base.clone();
    let client = reqwest::Client::new();

    // The webhook that used to overflow a worker's stack, and the node's after every
    // restart: 750 KB of items, each nesting the accumulator one level deeper.
    let items: Vec<u8> = vec![7; 375_000];
    let nest = post(
        &client,
        format!("{base}/hooks/nest"),
        &json!({ "items": items }),
    )
    .await;
    let mut forever = Vec::new();
    for _ in 0..2 {
        forever.push(post(&client, format!("{base}/hooks/forever"), &json!({})).await);
    }
    let huge = post(&client, format!("{base}/hooks/huge"), &json!({ "n": 1e9 })).await;

    // While the pool works through them, the node answers.
    assert!(
        healthy(&client, &base).await,
        "/healthz failed under hostile runs"
    );
    let echo = client
        .post(format!("{base}/hooks/control"))
        .json(&json!({ "n": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);

    let nest = ends_dead(&client, &base, nest["run_id"].as_str().unwrap()).await;
    let error = nest["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("nested deeper than") || error.contains("budget"),
        "{error}"
    );
    for run in &forever {
        let run = ends_dead(&client, &base, run["run_id"].as_str().unwrap()).await;
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains("exceeded its time budget of 1s"), "{error}");
    }
    let huge = ends_dead(&client, &base, huge["run_id"].as_str().unwrap()).await;
    let error = huge["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exceeded its memory budget of 8 MiB"),
        "{error}"
    );

    assert!(healthy(&client, &base).await);
    let started = Instant::now();
    let status = node.terminate();
    assert!(status.success(), "patchbay exited with {status}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Nothing is left to resume: a restart serves at once.
    let node = start(&project, &log);
    assert!(healthy(&client, &node.base).await);
    node.terminate();
}

/// Percentile `p` (0..=100) of `samples`, sorted in place.
fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

async fn control_latencies(client: &reqwest::Client, base: &str, count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for n in 0..count {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/hooks/control"))
            .json(&json!({ "n": n }))
            .send()
            .await
            .expect("control webhook");
        assert_eq!(response.status(), 200);
        samples.push(started.elapsed());
    }
    samples
}

#[tokio::test]
async fn twenty_hostile_programs_leave_a_control_webhook_fast() {
    let project = TestProject::new("", HOSTILE_FLOWS);
    let log = project.path().join("node.log");
    let node = start(&project, &log);
    let base = node.base.clone();
    let client = reqwest::Client::new();

    // Warm up connections and caches, then measure the control webhook alone.
    control_latencies(&client, &base, 50).await;
    let mut alone = control_latencies(&client, &base, 200).await;

    let mut hostile = Vec::new();
    for _ in 0..20 {
        hostile.push(post(&client, format!("{base}/hooks/forever"), &json!({})).await);
    }
    let mut loaded = control_latencies(&client, &base, 200).await;

    let (alone_p50, alone_p99) = (percentile(&mut alone, 50), percentile(&mut alone, 99));
    let (loaded_p50, loaded_p99) = (percentile(&mut loaded, 50), percentile(&mut loaded, 99));
    eprintln!(
        "control webhook alone: p50 {alone_p50:?} p99 {alone_p99:?}; \
         beside 20 endless programs: p50 {loaded_p50:?} p99 {loaded_p99:?}"
    );
    // Were the programs evaluated on the async workers, control requests would wait
    // behind them for whole time budgets (1 s each). The ratio of the tails is a
    // benchmark figure (`bench/run --only hostile`), not a test: this machine's
    // noise alone moves a p99 several times over.
    let slowest = loaded.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_millis(900),
        "a control request waited {slowest:?} beside hostile programs"
    );
    assert!(
        loaded_p50 <= alone_p50 * 3 + Duration::from_millis(5),
        "control p50 {loaded_p50:?} beside hostile programs, {alone_p50:?} alone"
    );

    // The hostile runs still end, one budget after another.
    for run in &hostile {
        let run = ends_dead(&client, &base, run["run_id"].as_str().unwrap()).await;
        assert!(
            run["error"]
                .as_str()
                .is_some_and(|e| e.contains("time budget")),
            "{run}"
        );
    }
    node.terminate();
}

#[tokio::test]
async fn a_run_that_keeps_stopping_the_node_is_declared_dead() {
    // One native operation asking for more memory than the address space holds (100 PB)
    // aborts the process before any budget can see it; the poison-run limit bounds the
    // damage.
    let project = TestProject::new(
        "engine: { lease: 1s, poll_interval: 200ms, max_claims_without_progress: 2 }\n",
        &[
            (
                "bomb",
                "trigger: { webhook: { path: /hooks/bomb } }\n\
                 steps:\n  - transform: '\"x\" * .n'\n",
            ),
            HOSTILE_FLOWS[3],
        ],
    );
    let log = project.path().join("node.log");
    let client = reqwest::Client::new();
    let mut node = start(&project, &log);
    let accepted = post(
        &client,
        format!("{}/hooks/bomb", node.base),
        &json!({ "n": 100_000_000_000_000_000_u64 }),
    )
    .await;
    let id = accepted["run_id"].as_str().unwrap().to_string();

    let mut crashes = 0;
    let dead = loop {
        // Each node either dies on the run, or declares it dead and keeps serving.
        let exited = eventually(Duration::from_secs(10), || {
            let exited = node.child.try_wait().ok().flatten().is_some();
            async move { exited }
        })
        .await;
        if !exited {
            break ends_dead(&client, &node.base, &id).await;
        }
        crashes += 1;
        assert!(crashes <= 2, "the node kept crashing: {crashes} times");
        node = start(&project, &log);
    };
    assert_eq!(crashes, 2);
    assert_eq!(
        dead["error"],
        "the run stopped the node 2 times before reaching the end of a step; it is not \
         resumed again (engine.max_claims_without_progress: 2)"
    );
    assert!(healthy(&client, &node.base).await);
    let echo = client
        .post(format!("{}/hooks/control", node.base))
        .json(&json!({ "n": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    node.terminate();
}

#[tokio::test]
async fn oversized_outputs_fail_their_step() {
    let project = TestProject::new(
        "engine: { max_journal_entry_bytes: 10000, max_run_output_bytes: 5000 }\n",
        &[
            (
                "entry",
                "trigger: { webhook: { path: /hooks/entry } }\n\
                 steps:\n  - transform: '[range(3000)] | map(tostring)'\n",
            ),
            (
                "state",
                "trigger: { webhook: { path: /hooks/state } }\n\
                 steps:\n  - set_state: '{s: (\"x\" * 6000)}'\n",
            ),
            (
                "output",
                "trigger: { webhook: { path: /hooks/output } }\n\
                 steps:\n  - transform: '\"x\" * 6000'\n",
            ),
        ],
    );
    let log = project.path().join("node.log");
    let node = start(&project, &log);
    let client = reqwest::Client::new();
    let cases = [
        (
            "entry",
            "step `step-1` (transform): the step's journal entry would be 19891 bytes, more \
             than engine.max_journal_entry_bytes (10000)",
        ),
        (
            "state",
            "step `step-1` (set_state): the flow state would be 6008 bytes, more than \
             engine.max_run_output_bytes (5000)",
        ),
        (
            "output",
            "the run's output would be 6002 bytes, more than engine.max_run_output_bytes (5000)",
        ),
    ];
    for (flow, expected) in cases {
        let accepted = post(&client, format!("{}/hooks/{flow}", node.base), &json!({})).await;
        let run = ends_dead(&client, &node.base, accepted["run_id"].as_str().unwrap()).await;
        assert_eq!(run["error"], expected, "{flow}");
        assert_eq!(run["output"], Value::Null, "{flow}");
        if flow == "output" {
            // The step itself succeeded: its entry, held back to share the
            // run's end, is journalled although the run did not end there.
            let shown = shown(&client, &node.base, run["id"].as_str().unwrap()).await;
            let journal = shown["journal"].as_array().expect("a journal");
            assert!(
                journal
                    .iter()
                    .any(|e| e["step_id"] == "step-1" && e["status"] == "succeeded"),
                "{shown}"
            );
        }
    }
    node.terminate();
    if crate::support::sqlite_only("the store file's size") {
        return;
    }
    let stored = std::fs::metadata(crate::support::store_file(&project))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(stored < 1 << 20, "store grew to {stored} bytes");
}
