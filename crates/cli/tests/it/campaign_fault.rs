//! The fault campaign: the real `patchbay` process against an upstream that
//! misbehaves in a seeded random mix (500s, reset connections, stalls past
//! the connector's timeout, 429 with `Retry-After`, malformed JSON, a body
//! over `max_response_bytes`, and successes). Every run must end `succeeded`
//! or `dead` with a reason naming the fault, nothing may stay queued or
//! running, the process must not panic and its memory must stay bounded.
//!
//! A second campaign makes the store unable to write (the process's file
//! size limit drops to zero, so every write to the database or its WAL
//! fails as on a full disk): intake must answer 503 with `Retry-After` for
//! as long as it lasts, accept again afterwards, and lose nothing it
//! acknowledged.
//!
//! Sized by `PATCHBAY_CAMPAIGN_FAULT_WEBHOOKS` (default 500),
//! `PATCHBAY_CAMPAIGN_SENDERS` (default 8) and `PATCHBAY_CAMPAIGN_SEED`;
//! see `docs/campaigns.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_store::RunStatus;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{
    Patchbay, TestProject, campaign_seed, campaign_setting, drains_within, integrity_check,
    memory_kib, panics_in_log, patchbay_run, store_file, stored_runs,
};

/// Largest response body the connector accepts.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

const ROOT: &str = "\
connectors:
  flaky:
    url: \"${env:FLAKY_URL}\"
    dangerous_allow_private: true
    timeout: 300ms
    max_response_bytes: 65536
    retry: { attempts: 2, backoff: { min: 10ms, max: 50ms } }
    circuit_breaker: off
engine: { lease: 5s, poll_interval: 100ms, run_retries: [150ms] }
";

/// Two calls to the faulty upstream, so a run can fail after a success.
const FLOW: &str = "\
trigger: { webhook: { path: /hooks/faulty } }
steps:
  - id: first
    call: flaky POST /first/{.n}
    body: '.'
  - id: second
    call: flaky POST /second/{.n}
    body: '{n, first: $steps.first.body.ok}'
";

/// One kind of answer the upstream gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Fault {
    Success,
    ServerError,
    Reset,
    Stall,
    TooManyRequests,
    MalformedJson,
    HugeBody,
}

/// The mix, in percent.
const MIX: [(Fault, u32); 7] = [
    (Fault::Success, 48),
    (Fault::ServerError, 18),
    (Fault::Reset, 10),
    (Fault::Stall, 10),
    (Fault::TooManyRequests, 2),
    (Fault::MalformedJson, 6),
    (Fault::HugeBody, 6),
];

impl Fault {
    /// The fault for the `attempt`-th request to `path`: a function of the
    /// seed, the path and the attempt alone, so the same seed injects the
    /// same faults whatever the interleaving of requests.
    fn pick(seed: u64, path: &str, attempt: u32) -> Fault {
        // FNV-1a over the path, then the seed and the attempt, each folded
        // in with SplitMix64's finaliser so that nearby inputs scatter.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in path.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let hash = mix(mix(hash ^ seed) ^ u64::from(attempt));
        let mut roll = (hash % 100) as u32;
        for (fault, weight) in MIX {
            if roll < weight {
                return fault;
            }
            roll -= weight;
        }
        Fault::Success
    }

    fn reply(self, huge: &Reply) -> Reply {
        match self {
            Fault::Success => Reply::json(200, json!({ "ok": true })),
            Fault::ServerError => Reply::json(500, json!({ "error": "boom" })),
            Fault::Reset => Reply::reset(),
            // Three times the connector's timeout.
            Fault::Stall => {
                Reply::json(200, json!({ "ok": true })).with_delay(Duration::from_millis(900))
            }
            Fault::TooManyRequests => Reply::too_many_requests(Duration::from_secs(1)),
            Fault::MalformedJson => Reply::malformed_json(200),
            Fault::HugeBody => huge.clone(),
        }
    }

    /// Words a dead run's error contains when this fault killed it.
    fn reasons(self) -> &'static [&'static str] {
        match self {
            Fault::Success => &[],
            Fault::ServerError => &["answered 500"],
            Fault::Reset => &["cannot reach upstream"],
            Fault::Stall => &["timed out"],
            Fault::TooManyRequests => &["answered 429", "rate limited"],
            Fault::MalformedJson => &["not JSON"],
            Fault::HugeBody => &["larger than the limit"],
        }
    }
}

/// SplitMix64's output function: a bijection that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fault that a dead run's error names, if any.
fn named_fault(error: &str) -> Option<Fault> {
    MIX.iter()
        .map(|(fault, _)| *fault)
        .find(|fault| fault.reasons().iter().any(|reason| error.contains(reason)))
}

/// POSTs deliveries `range` to `url`, each until it gets a 2xx, from
/// `senders` tasks; 503s and connection errors are retried after
/// `Retry-After` (or 50 ms). Returns the acknowledged `n`s.
async fn deliver_all(
    url: String,
    range: std::ops::Range<usize>,
    senders: usize,
    patience: Duration,
) -> Vec<usize> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let next = Arc::clone(&next);
            let url = url.clone();
            let end = range.end;
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .expect("client");
                let mut acknowledged = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= end {
                        return acknowledged;
                    }
                    let deadline = Instant::now() + patience;
                    loop {
                        let wait = match client.post(&url).json(&json!({ "n": n })).send().await {
                            Ok(response) if response.status().is_success() => break,
                            Ok(response) if response.status() == 503 => {
                                let after = response
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse().ok())
                                    .expect("a 503 carries Retry-After in seconds");
                                Duration::from_secs(after)
                            }
                            Ok(response) => {
                                let status = response.status();
                                let text = response.text().await.unwrap_or_default();
                                panic!("delivery {n} answered {status}: {text}");
                            }
                            Err(_) => Duration::from_millis(50),
                        };
                        assert!(Instant::now() < deadline, "delivery {n} got no 2xx in time");
                        tokio::time::sleep(wait).await;
                    }
                    acknowledged.push(n);
                }
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("a sender failed"));
    }
    acknowledged
}

/// Samples the resident set of `pid` every 50 ms until `stop`; returns the
/// largest `VmRSS` seen, in KiB.
fn sample_memory(
    pid: u32,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        loop {
            if let Some((rss, _)) = memory_kib(pid) {
                peak = peak.max(rss);
            }
            tokio::select! {
                () = stop.cancelled() => return peak,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_fault_every_run_ends_with_a_named_reason_in_bounded_memory() {
    if crate::support::sqlite_only("faults of the SQLite file's disk") {
        return;
    }
    let webhooks = campaign_setting("PATCHBAY_CAMPAIGN_FAULT_WEBHOOKS", 500) as usize;
    let senders = campaign_setting("PATCHBAY_CAMPAIGN_SENDERS", 8).max(1) as usize;
    let seed = campaign_seed();
    println!(
        "fault campaign: {webhooks} webhooks, {senders} senders, seed {seed} \
         (PATCHBAY_CAMPAIGN_SEED={seed} injects the same faults)"
    );
    let began = Instant::now();

    let upstream = MockUpstream::start().await;
    upstream.set_recording(false);
    let injected: Arc<Mutex<BTreeMap<Fault, usize>>> = Arc::default();
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    // Four times the limit; built once, its bytes are shared by every clone.
    let huge = Reply::huge_json(200, 4 * MAX_RESPONSE_BYTES);
    {
        let injected = Arc::clone(&injected);
        upstream.route_fn("POST", "/{step}/{n}", move |req| {
            let attempt = {
                let mut attempts = attempts.lock().unwrap_or_else(|e| e.into_inner());
                let count = attempts.entry(req.path.clone()).or_default();
                *count += 1;
                *count
            };
            let fault = Fault::pick(seed, &req.path, attempt);
            *injected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(fault)
                .or_default() += 1;
            fault.reply(&huge)
        });
    }

    let project = TestProject::new(ROOT, &[("faulty", FLOW)]);
    let log = project.path().join("patchbay.log");
    let env = [
        ("FLAKY_URL", upstream.url()),
        ("PATCHBAY_LOG", "warn".to_string()),
    ];
    let node = Patchbay::spawn(patchbay_run(project.path(), &env), &log);
    let stop_sampling = tokio_util::sync::CancellationToken::new();
    let sampler = sample_memory(node.pid(), stop_sampling.clone());

    let acknowledged = deliver_all(
        format!("{}/hooks/faulty", node.base),
        0..webhooks,
        senders,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(acknowledged.len(), webhooks);
    let sent_for = began.elapsed();

    let drained = drains_within(&node.base, Duration::from_secs(120)).await;
    let drained_after = began.elapsed();
    stop_sampling.cancel();
    let peak_sampled = sampler.await.expect("sampler");
    let (_, high_water) = memory_kib(node.pid()).expect("/proc/PID/status is readable");
    let status = node.terminate();
    assert!(
        drained,
        "runs still queued or running two minutes after the last delivery"
    );
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");

    let runs = stored_runs(&project).await;
    assert_eq!(runs.len(), webhooks, "one run per acknowledged delivery");
    let mut succeeded = 0;
    let mut dead_by: BTreeMap<Fault, usize> = BTreeMap::new();
    let mut examples: BTreeMap<Fault, String> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut other = Vec::new();
    for run in &runs {
        match run.status {
            RunStatus::Succeeded => succeeded += 1,
            RunStatus::Dead => {
                let error = run.error.clone().unwrap_or_default();
                match named_fault(&error) {
                    Some(fault) => {
                        *dead_by.entry(fault).or_default() += 1;
                        examples.entry(fault).or_insert(error);
                    }
                    None => unexplained.push(error),
                }
            }
            status => other.push(format!("{} {status}", run.id)),
        }
    }
    assert!(
        other.is_empty(),
        "runs neither succeeded nor dead: {other:?}"
    );
    assert!(
        unexplained.is_empty(),
        "{} dead run(s) name no injected fault, e.g. {:?}",
        unexplained.len(),
        &unexplained[..unexplained.len().min(3)]
    );
    let panics = panics_in_log(&log);
    assert!(panics.is_empty(), "the process panicked: {panics:?}");
    let integrity = integrity_check(&store_file(&project)).await;
    assert_eq!(integrity, "ok", "PRAGMA integrity_check");

    let injected = injected.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if webhooks >= 200 {
        // With hundreds of runs every kind of fault comes up, and runs both
        // survive and die of them; otherwise the campaign proved little.
        for (fault, _) in MIX {
            assert!(
                injected.contains_key(&fault),
                "{fault:?} was never injected"
            );
        }
        assert!(
            succeeded > 0 && !dead_by.is_empty(),
            "{succeeded} succeeded, dead {dead_by:?}"
        );
    }
    let peak_mib = high_water.max(peak_sampled) as f64 / 1024.0;
    println!(
        "fault campaign summary: webhooks {webhooks}, runs {} ({succeeded} succeeded, {} dead: \
         {dead_by:?}), upstream requests {} (injected {injected:?}), peak RSS {peak_mib:.1} MiB \
         (VmHWM {} KiB, largest sampled VmRSS {peak_sampled} KiB), integrity {integrity}, \
         sending {:.1} s, drained at {:.1} s, seed {seed}",
        runs.len(),
        runs.len() - succeeded,
        upstream.request_count(),
        high_water,
        sent_for.as_secs_f64(),
        drained_after.as_secs_f64(),
    );
    for (fault, error) in &examples {
        println!("  a run dead of {fault:?}: {error}");
    }
    assert!(peak_mib < 300.0, "peak RSS {peak_mib:.1} MiB");
}

/// Sets the soft file size limit of process `pid` (`unlimited` or bytes),
/// leaving the hard limit alone.
fn set_file_size_limit(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --fsize={soft}: failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_fault_store_that_cannot_write_answers_503_then_loses_nothing() {
    if crate::support::sqlite_only("a SQLite file that cannot be written") {
        return;
    }
    let sink = MockUpstream::start().await;
    sink.route("POST", "/events", Reply::json(200, json!({ "ok": true })));
    sink.idempotent("POST", "/events");
    let project = TestProject::new(
        "connectors:\n  sink: { url: \"${env:SINK_URL}\", dangerous_allow_private: true }\nengine: { lease: 1s, poll_interval: 100ms }\n",
        &[(
            "intake",
            "trigger: { webhook: { path: /hooks/in, dedupe: '.n' } }\n\
             steps:\n  - call: sink POST /events\n    idempotency_key: '\"event-\\(.n)\"'\n    body: '.'\n",
        )],
    );
    let log = project.path().join("patchbay.log");
    // A process over its file size limit gets SIGXFSZ, which kills it;
    // ignored (inherited through exec), the write fails with EFBIG instead,
    // which is what a full disk looks like to SQLite.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' XFSZ; exec \"$0\" run --listen 127.0.0.1:0 \"$1\"")
        .arg(crate::support::binary())
        .arg(project.path())
        .env("SINK_URL", sink.url())
        .env("PATCHBAY_LOG", "warn");
    let node = Patchbay::spawn(command, &log);
    let url = format!("{}/hooks/in", node.base);
    let client = reqwest::Client::new();

    // Before: accepted.
    let before = deliver_all(url.clone(), 0..20, 4, Duration::from_secs(10)).await;
    assert_eq!(before.len(), 20);

    // The store cannot write: every delivery is refused with 503 and
    // Retry-After, and nothing is stored.
    set_file_size_limit(node.pid(), "0");
    for n in 20..30 {
        let response = client
            .post(&url)
            .json(&json!({ "n": n }))
            .send()
            .await
            .expect("the node answers");
        assert_eq!(
            response.status(),
            503,
            "delivery {n} while the store cannot write"
        );
        assert!(response.headers().contains_key("retry-after"));
        let body: serde_json::Value = response.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    // Senders keep trying, as webhook providers do, while the outage lasts
    // a few of their retry intervals.
    let during = tokio::spawn(deliver_all(url.clone(), 20..60, 4, Duration::from_secs(15)));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !during.is_finished(),
        "a delivery was acknowledged while the store could not write"
    );
    set_file_size_limit(node.pid(), "unlimited");

    // After: the same deliveries are accepted, and every acknowledged one
    // runs to the end, once.
    let during = during.await.expect("senders");
    assert_eq!(during.len(), 40);
    let after = deliver_all(url.clone(), 60..80, 4, Duration::from_secs(10)).await;
    assert_eq!(after.len(), 20);
    let drained = drains_within(&node.base, Duration::from_secs(30)).await;
    let status = node.terminate();
    assert!(
        drained,
        "runs still queued or running after the store recovered"
    );
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");

    let runs = stored_runs(&project).await;
    let keys: HashSet<String> = runs.iter().filter_map(|r| r.dedupe_key.clone()).collect();
    assert_eq!(runs.len(), 80, "one run per acknowledged delivery");
    for n in 0..80 {
        assert!(
            keys.contains(&format!("webhook:intake:{n}")),
            "delivery {n} was lost"
        );
        assert_eq!(
            sink.side_effects(&format!("event-{n}")),
            1,
            "event {n} delivered once"
        );
    }
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "every run succeeded"
    );
    assert_eq!(integrity_check(&store_file(&project)).await, "ok");
    let panics = panics_in_log(&log);
    assert!(panics.is_empty(), "the process panicked: {panics:?}");
    let refused = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("not committed") || line.contains("store unavailable"))
        .count();
    println!(
        "store write failure campaign: 80 deliveries acknowledged (40 of them retried through \
         the outage), {refused} refusal(s) logged, 80 runs succeeded, integrity ok"
    );
}
