//! A cluster: several `patchbay run` processes sharing one PostgreSQL store
//! (one schema), killed, paused and restarted while they work. What one
//! node guarantees across its own crashes must hold across nodes:
//!
//! - Three nodes take signed webhooks round-robin from several senders
//!   while a killer SIGKILLs one node at a time and restarts it (the
//!   heaviest test). Every acknowledged delivery has exactly one run, every
//!   run succeeded, the upstream applied one side effect per idempotency
//!   key, the keys it saw are exactly those of the runs that reached the
//!   step, and the runs a dead node held were taken over within a bound set
//!   by the lease.
//! - A node paused (SIGSTOP) past its lease loses its runs to the other
//!   node, which finishes them. Resumed, the paused node neither finishes
//!   nor journals them, and logs that it lost them.
//! - A schedule firing every second on three nodes, killed one at a time,
//!   has exactly one run for each second: no duplicate, no gap.
//! - The limits a connector sets hold for the cluster: a rate limit, the
//!   calls in flight at once, a breaker's opening, an OAuth token's refresh.
//!
//! Every test needs the PostgreSQL of `PATCHBAY_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and fails when it cannot
//! reach it. Sized by `PATCHBAY_CLUSTER_WEBHOOKS` (default 10000),
//! `PATCHBAY_CLUSTER_KILLS` (default 10), `PATCHBAY_CLUSTER_SENDERS`
//! (default 6), `PATCHBAY_CLUSTER_CRON_SECONDS` (default 15) and
//! `PATCHBAY_CAMPAIGN_SEED`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use patchbay_store::{JournalEntry, PgStore, Run, RunId, RunStatus, StepStatus, Store};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;
use tokio::sync::watch;

use crate::support::{
    Patchbay, Schema, TestProject, all_runs, assert_all_succeeded, campaign_seed, campaign_setting,
    eventually, order_delivery, panics_in_log, patchbay_run, pg_url, post_signed,
};

const SECRET: &str = "whsec_Y2x1c3Rlci1jYW1wYWlnbi1zaWduaW5nLWtleQ==";

/// Short, so that runs a dead or paused node held are taken over quickly.
const LEASE: Duration = Duration::from_secs(2);
/// How often idle workers look for runs another node left behind.
const POLL: Duration = Duration::from_millis(200);

/// One cluster test at a time: each runs several debug-build nodes, and
/// two clusters on a small machine would starve each other's lease
/// renewals and schedulers, testing the machine rather than Patchbay.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `patchbay.yaml`: connectors `payments` and `chat` that honour
/// idempotency keys and retry a failed call, the short lease, and the
/// store in `schema`, each node's pool kept small so that several nodes
/// stay far below PostgreSQL's connection limit.
fn root(schema: &Schema) -> String {
    format!(
        "\
connectors:
  payments:
    url: \"${{env:PAYMENTS_URL}}\"
    dangerous_allow_private: true
    retry: {{ attempts: 3, backoff: {{ min: 10ms, max: 100ms }} }}
  chat:
    url: \"${{env:CHAT_URL}}\"
    dangerous_allow_private: true
    retry: {{ attempts: 3, backoff: {{ min: 10ms, max: 100ms }} }}
engine:
  lease: {lease}ms
  poll_interval: {poll}ms
  run_retries: [200ms, 500ms, 1s, 2s, 5s]
  # Nodes are killed back to back, faster than any crash loop: a run in
  # flight at three kills in a row would look like a run that takes its
  # node down, which is what this guard is for (hostile_flows tests it).
  max_claims_without_progress: 1000
{store}    max_connections: 8
",
        lease = LEASE.as_millis(),
        poll = POLL.as_millis(),
        store = schema.store_yaml(),
    )
}

/// Charge, then notify: two `POST`s, each carrying the default idempotency
/// key `RUN_ID:STEP_ID`.
const ORDERS_FLOW: &str = "\
trigger:
  webhook:
    path: /hooks/orders
    verify: { standard_webhooks: { secret: \"${env:HOOK_SECRET}\" } }
    dedupe: '$headers[\"webhook-id\"]'
steps:
  - id: charge
    call: payments POST /charges
    body: '{order_id, amount}'
  - id: notify
    call: chat POST /messages
    body: '{text: \"order \\(.order_id) charged as \\($steps.charge.body.id)\"}'
";

/// The same two calls, started by hand through the API.
const CHARGE_FLOW: &str = "\
trigger: { manual: {} }
steps:
  - id: charge
    call: payments POST /charges
    body: '{order_id}'
  - id: notify
    call: chat POST /messages
    body: '{text: \"charged \\($steps.charge.body.id)\"}'
";

/// Every second, one cheap step.
const TICK_FLOW: &str = "\
trigger: { schedule: \"* * * * * *\" }
steps:
  - id: stamp
    transform: '.scheduled_at'
";

/// `payments` charging at `/charges` and `chat` taking `/messages`, both
/// counting side effects per idempotency key. A charge of an order whose id
/// starts with `slow-charge`, and a message naming an order `slow-notify...`,
/// are answered after `slow`.
async fn upstreams(slow: Duration) -> (MockUpstream, MockUpstream) {
    let payments = MockUpstream::start().await;
    payments.route_fn("POST", "/charges", move |req| {
        let order = req
            .json
            .as_ref()
            .and_then(|body| body["order_id"].as_str())
            .unwrap_or_default();
        let reply = Reply::json(201, json!({ "id": format!("ch_{order}") }));
        if order.starts_with("slow-charge") {
            reply.with_delay(slow)
        } else {
            reply
        }
    });
    payments.idempotent("POST", "/charges");
    let chat = MockUpstream::start().await;
    chat.route_fn("POST", "/messages", move |req| {
        let text = req
            .json
            .as_ref()
            .and_then(|body| body["text"].as_str())
            .unwrap_or_default();
        let reply = Reply::json(200, json!({ "ok": true }));
        if text.contains("slow-notify") {
            reply.with_delay(slow)
        } else {
            reply
        }
    });
    chat.idempotent("POST", "/messages");
    (payments, chat)
}

/// The environment of a node of the project: upstreams, secret, database.
fn node_env(
    payments: &MockUpstream,
    chat: &MockUpstream,
    log: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("PAYMENTS_URL", payments.url()),
        ("CHAT_URL", chat.url()),
        ("HOOK_SECRET", SECRET.to_string()),
        ("PG_URL", pg_url()),
        ("PATCHBAY_LOG", log.to_string()),
    ]
}

/// The log of node `node` in the project folder, kept across restarts.
fn node_log(dir: &Path, node: usize) -> PathBuf {
    dir.join(format!("node-{node}.log"))
}

/// Starts node N of the project in `dir` as `patchbay run` with `env`
/// and the extra `args`, logging to [`node_log`].
fn spawner(
    dir: &Path,
    env: Vec<(&'static str, String)>,
    args: &'static [&'static str],
) -> impl Fn(usize) -> Patchbay + Send + Sync + 'static {
    let dir = dir.to_path_buf();
    move |node| {
        let mut command: Command = patchbay_run(&dir, &env);
        command.args(args);
        Patchbay::spawn(command, &node_log(&dir, node))
    }
}

/// The nodes of one project, by number; `None` while a node is down.
/// Dropping the cluster kills the nodes left, so a failing test leaves no
/// process behind, not even a paused one.
struct Cluster {
    nodes: Mutex<Vec<Option<Patchbay>>>,
    spawn: Box<dyn Fn(usize) -> Patchbay + Send + Sync>,
}

impl Cluster {
    /// Starts `count` nodes, one after the other.
    async fn start(
        count: usize,
        spawn: impl Fn(usize) -> Patchbay + Send + Sync + 'static,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            nodes: Mutex::new((0..count).map(|_| None).collect()),
            spawn: Box::new(spawn),
        });
        for node in 0..count {
            cluster.restart(node).await;
        }
        cluster
    }

    fn nodes(&self) -> MutexGuard<'_, Vec<Option<Patchbay>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.nodes().len()
    }

    /// `http://127.0.0.1:PORT` of `node`, unless it is down.
    fn base(&self, node: usize) -> Option<String> {
        self.nodes()[node].as_ref().map(|n| n.base.clone())
    }

    fn pause(&self, node: usize) {
        self.nodes()[node].as_ref().expect("the node is up").pause();
    }

    fn resume(&self, node: usize) {
        self.nodes()[node]
            .as_ref()
            .expect("the node is up")
            .resume();
    }

    /// SIGKILLs `node`.
    async fn kill(&self, node: usize) {
        let process = self.nodes()[node].take().expect("the node is up");
        tokio::task::spawn_blocking(move || process.kill())
            .await
            .expect("kill a node");
    }

    /// Starts `node` (again), on the same store and a new port.
    async fn restart(self: &Arc<Self>, node: usize) {
        let cluster = Arc::clone(self);
        let process = tokio::task::spawn_blocking(move || (cluster.spawn)(node))
            .await
            .expect("start a node");
        let replaced = self.nodes()[node].replace(process);
        assert!(replaced.is_none(), "node {node} was already up");
    }

    /// SIGTERMs every node; each must stop cleanly, exiting with 0
    /// (docs/cli.md), however soon after it started listening.
    async fn stop(&self) {
        let processes: Vec<(usize, Patchbay)> = self
            .nodes()
            .iter_mut()
            .enumerate()
            .filter_map(|(node, process)| Some((node, process.take()?)))
            .collect();
        let statuses = tokio::task::spawn_blocking(move || {
            processes
                .into_iter()
                .map(|(node, process)| (node, process.terminate()))
                .collect::<Vec<_>>()
        })
        .await
        .expect("stop the nodes");
        for (node, status) in statuses {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(
                status.code(),
                Some(0),
                "node {node} did not stop cleanly on SIGTERM: {status}{}",
                match status.signal() {
                    Some(15) => "; its default action killed it: no handler was installed yet",
                    _ => "",
                }
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for mut process in self.nodes().iter_mut().filter_map(Option::take) {
            // SIGKILL ends a stopped process too.
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// Runs in the store that have finished, and runs queued or running.
async fn tally(store: &PgStore) -> (u64, u64) {
    let counts = store.count_runs().await.expect("count runs");
    counts.iter().fold((0, 0), |(finished, unfinished), count| {
        if count.status.is_final() {
            (finished + count.count, unfinished)
        } else {
            (finished, unfinished + count.count)
        }
    })
}

/// The journal of every run in `runs`.
async fn journals(store: &PgStore, runs: &[Run]) -> HashMap<RunId, Vec<JournalEntry>> {
    futures::stream::iter(runs.iter().map(|run| async move {
        let journal = store.journal(run.id).await.expect("read a journal");
        (run.id, journal)
    }))
    .buffer_unordered(8)
    .collect()
    .await
}

/// Panics reported in the logs of nodes `0..nodes` of the project in `dir`.
fn panics_in_logs(dir: &Path, nodes: usize) -> Vec<String> {
    (0..nodes)
        .flat_map(|node| panics_in_log(&node_log(dir, node)))
        .collect()
}

/// The first few of `items`, for a failure message.
fn some<T: std::fmt::Debug>(items: &[T]) -> String {
    format!(
        "{} in all, e.g. {:?}",
        items.len(),
        &items[..items.len().min(5)]
    )
}

fn seconds(duration: chrono::TimeDelta) -> f64 {
    duration.num_milliseconds() as f64 / 1000.0
}

// 1. Kills under load.

/// What the senders and the killer share.
struct Campaign {
    cluster: Arc<Cluster>,
    /// Deliveries acknowledged with a 2xx so far.
    acknowledged: watch::Sender<usize>,
    /// Attempts that got no 2xx and were sent again, to the next node.
    resent: AtomicUsize,
    /// The next delivery to send.
    next: AtomicUsize,
    webhooks: usize,
}

/// Sends deliveries until none is left, delivery N to node N first (round
/// robin), each until some node answers it with a 2xx: an attempt that
/// gets none goes to the next node, as a provider's retry would reach
/// another node behind a load balancer. Returns the ids acknowledged.
async fn sender(campaign: Arc<Campaign>) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let nodes = campaign.cluster.len();
    let mut acknowledged = Vec::new();
    loop {
        let n = campaign.next.fetch_add(1, Ordering::SeqCst);
        if n >= campaign.webhooks {
            return acknowledged;
        }
        let (id, body) = order_delivery(n);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut backoff = Duration::from_millis(10);
        let first = n % nodes;
        let mut node = first;
        loop {
            if let Some(base) = campaign.cluster.base(node) {
                let url = format!("{base}/hooks/orders");
                match post_signed(&client, &url, SECRET, &id, &body).await {
                    Ok(response) if response.status().is_success() => break,
                    // A node stopping, or a store error.
                    Ok(response) if response.status().as_u16() == 503 => {}
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        panic!("delivery {id} answered {status} by node {node}: {text}");
                    }
                    // Refused by a dead node, or cut by a kill.
                    Err(_) => {}
                }
                campaign.resent.fetch_add(1, Ordering::SeqCst);
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} got no 2xx from any node for 120 s"
            );
            node = (node + 1) % nodes;
            if node == first {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
        }
        acknowledged.push(id);
        campaign.acknowledged.send_modify(|count| *count += 1);
    }
}

/// A kill, and the restart that followed it.
#[derive(Clone, Copy, Debug)]
struct Kill {
    node: usize,
    at: DateTime<Utc>,
    restarted: DateTime<Utc>,
}

/// Kills a random node `kills` times, each once the acknowledged count
/// reaches a random point of the campaign and after a random extra moment,
/// and starts it again after a random pause. One node at most is down at a
/// time.
async fn killer(campaign: Arc<Campaign>, kills: usize, seed: u64) -> Vec<Kill> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let webhooks = campaign.webhooks;
    let low = (webhooks / 20).max(1);
    let high = (webhooks * 19 / 20).max(low);
    let mut points: Vec<usize> = (0..kills).map(|_| rng.usize(low..=high)).collect();
    points.sort_unstable();
    let mut acknowledged = campaign.acknowledged.subscribe();
    let mut done = Vec::with_capacity(kills);
    for point in points {
        let _ = acknowledged.wait_for(|count| *count >= point).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..80))).await;
        let node = rng.usize(0..campaign.cluster.len());
        let at = Utc::now();
        campaign.cluster.kill(node).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..300))).await;
        campaign.cluster.restart(node).await;
        done.push(Kill {
            node,
            at,
            restarted: Utc::now(),
        });
    }
    done
}

/// The heaviest test of the module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_no_webhook_and_repeat_no_side_effect_when_nodes_are_killed() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const NODES: usize = 3;
    let webhooks = campaign_setting("PATCHBAY_CLUSTER_WEBHOOKS", 10_000) as usize;
    let kills = campaign_setting("PATCHBAY_CLUSTER_KILLS", 10) as usize;
    let senders = campaign_setting("PATCHBAY_CLUSTER_SENDERS", 6).max(1) as usize;
    let seed = campaign_seed();
    println!(
        "cluster kills: {NODES} nodes, {webhooks} webhooks, {kills} kills, {senders} senders, \
         seed {seed} (PATCHBAY_CAMPAIGN_SEED={seed} repeats the kill schedule)"
    );
    let began = Utc::now();

    let schema = Schema::new();
    let store = schema.open().await;
    // A little latency keeps calls in flight, so that kills land mid-step.
    // Recording stays on: the idempotency keys are read back from it.
    let (payments, chat) = upstreams(Duration::ZERO).await;
    for upstream in [&payments, &chat] {
        upstream.set_latency(Duration::from_millis(5));
    }
    let project = TestProject::new(&root(&schema), &[("orders", ORDERS_FLOW)]);
    let env = node_env(&payments, &chat, "warn");
    let cluster = Cluster::start(NODES, spawner(project.path(), env, &[])).await;

    let campaign = Arc::new(Campaign {
        cluster: Arc::clone(&cluster),
        acknowledged: watch::Sender::new(0),
        resent: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        webhooks,
    });
    let senders: Vec<_> = (0..senders)
        .map(|_| tokio::spawn(sender(Arc::clone(&campaign))))
        .collect();
    let killer = tokio::spawn(killer(Arc::clone(&campaign), kills, seed));
    let mut acknowledged = Vec::with_capacity(webhooks);
    for sender in senders {
        acknowledged.extend(sender.await.expect("a sender failed"));
    }
    let kills = killer.await.expect("the killer failed");

    // From here on nothing is killed and nothing is sent: what is left is
    // the runs a killed node held (resumed once their lease runs out) and
    // the backlog, which the three nodes drain.
    let quiet = Utc::now();
    let (finished_at_quiet, backlog) = tally(&store).await;
    let drained = eventually(Duration::from_secs(120), || async {
        let (finished, unfinished) = tally(&store).await;
        unfinished == 0 && finished as usize >= acknowledged.len()
    })
    .await;
    let drained_at = Utc::now();
    assert!(
        drained,
        "runs still queued or running (or missing) two minutes after the last kill: {:?}",
        tally(&store).await
    );
    cluster.stop().await;

    let runs = all_runs(&store).await;
    let acknowledged: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(
        acknowledged.len(),
        webhooks,
        "every delivery was acknowledged once"
    );

    // Exactly one run per acknowledged delivery, and no other run.
    let mut by_delivery: HashMap<&str, usize> = HashMap::new();
    for run in &runs {
        let key = run.dedupe_key.as_deref().unwrap_or_default();
        let id = key
            .strip_prefix("webhook:orders:")
            .unwrap_or_else(|| panic!("run {} has an unexpected dedupe key {key:?}", run.id));
        *by_delivery.entry(id).or_default() += 1;
    }
    let not_once: Vec<String> = acknowledged
        .iter()
        .filter_map(
            |id| match by_delivery.get(id.as_str()).copied().unwrap_or(0) {
                1 => None,
                n => Some(format!("{id}: {n} runs")),
            },
        )
        .collect();
    assert!(
        not_once.is_empty(),
        "acknowledged deliveries without exactly one run: {}",
        some(&not_once)
    );
    assert_eq!(
        runs.len(),
        acknowledged.len(),
        "no run without an acknowledged delivery"
    );

    assert_all_succeeded(&runs);

    // Per step: the keys the upstream saw are those of the runs that
    // reached the step, and each key took effect once, however often it
    // was sent.
    let journals = journals(&store, &runs).await;
    let mut repeated_keys = BTreeMap::new();
    for (step, upstream, path) in [
        ("charge", &payments, "/charges"),
        ("notify", &chat, "/messages"),
    ] {
        let reached: HashSet<String> = runs
            .iter()
            .filter(|run| journals[&run.id].iter().any(|e| e.step_id == step))
            .map(|run| format!("{}:{step}", run.id))
            .collect();
        let mut sent: HashMap<String, usize> = HashMap::new();
        let mut keyless = 0;
        for request in upstream.requests_to("POST", path) {
            match request.header("idempotency-key") {
                Some(key) => *sent.entry(key.to_string()).or_default() += 1,
                None => keyless += 1,
            }
        }
        assert_eq!(keyless, 0, "every {step} call carries an idempotency key");
        let keys: HashSet<String> = sent.keys().cloned().collect();
        let missing: Vec<&String> = reached.difference(&keys).collect();
        let extra: Vec<&String> = keys.difference(&reached).collect();
        assert!(
            missing.is_empty(),
            "{step}: runs journalled the step, yet the upstream never saw their key: {}",
            some(&missing)
        );
        assert!(
            extra.is_empty(),
            "{step}: keys at the upstream that no run's journal accounts for: {}",
            some(&extra)
        );
        let not_once: Vec<String> = keys
            .iter()
            .filter_map(|key| match upstream.side_effects(key) {
                1 => None,
                n => Some(format!("{key}: {n} effects")),
            })
            .collect();
        assert!(
            not_once.is_empty(),
            "{step}: keys not applied exactly once: {}",
            some(&not_once)
        );
        assert_eq!(
            upstream.side_effects_total(),
            reached.len(),
            "{step}: one side effect per run that reached it"
        );
        // How many keys were sent how many times: repeats are allowed
        // (the upstream answers them from its idempotency store).
        let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
        for count in sent.values() {
            *histogram.entry(*count).or_default() += 1;
        }
        repeated_keys.insert(step, histogram);
    }

    // Takeovers: a run claimed more than once was resumed by another claim
    // after a kill. Its takeover time runs from the last kill before its
    // final claim began work to the start of that claim's first step. The
    // lease (renewed at most a third of it before the kill) must run out
    // first, then a poll finds the run; a node that took runs over and is
    // itself killed before it journals puts a second lease in the way.
    let mut takeovers: Vec<(chrono::TimeDelta, RunId)> = Vec::new();
    let mut unexplained = Vec::new();
    for run in runs.iter().filter(|run| run.attempts > 1) {
        let resumed = journals[&run.id]
            .iter()
            .filter(|e| e.attempt == run.attempts)
            .map(|e| e.started_at)
            .min();
        let kill = resumed.and_then(|resumed| {
            kills
                .iter()
                .map(|kill| kill.at)
                .filter(|at| *at <= resumed)
                .max()
        });
        match (resumed, kill) {
            (Some(resumed), Some(kill)) => takeovers.push((resumed - kill, run.id)),
            _ => unexplained.push(format!(
                "{} ({} claims, final claim began {resumed:?})",
                run.id, run.attempts
            )),
        }
    }
    assert!(
        unexplained.is_empty(),
        "runs claimed more than once with no kill before their final claim: {}",
        some(&unexplained)
    );
    takeovers.sort();
    let slowest = takeovers.last().copied();
    let takeover_bound = chrono::TimeDelta::from_std(2 * LEASE + POLL).expect("bound");
    if let Some((slowest, run)) = slowest {
        assert!(
            slowest <= takeover_bound,
            "run {run} was resumed {:.3} s after the kill that stopped it, more than \
             2 × lease + poll_interval ({:.3} s)",
            seconds(slowest),
            seconds(takeover_bound)
        );
    }

    // The end: once the last kill is restarted and the last delivery
    // acknowledged, the runs left are the killed node's (a lease away from
    // being taken over) and the backlog, which the cluster works off at the
    // rate it kept while the campaign ran. Beyond that bound a run was
    // left behind.
    let last_finished = runs
        .iter()
        .filter_map(|run| run.finished_at)
        .max()
        .expect("runs finished");
    let last_restart = kills.iter().map(|kill| kill.restarted).max();
    let rate = finished_at_quiet as f64 / seconds(quiet - began).max(0.001);
    let backlog_time = Duration::from_secs_f64(backlog as f64 / rate.max(1.0));
    let tail = last_finished - quiet;
    let tail_bound = chrono::TimeDelta::from_std(2 * LEASE + backlog_time + Duration::from_secs(1))
        .expect("bound");
    assert!(
        tail <= tail_bound,
        "the last run finished {:.3} s after the campaign went quiet, more than \
         2 × lease + {backlog} backlog runs at {rate:.0} runs/s + 1 s ({:.3} s)",
        seconds(tail),
        seconds(tail_bound)
    );

    let panics = panics_in_logs(project.path(), NODES);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");

    let resumed = runs.iter().filter(|run| run.attempts > 1).count();
    let nodes_killed: Vec<usize> = kills.iter().map(|kill| kill.node).collect();
    let median = takeovers
        .get(takeovers.len() / 2)
        .map_or(0.0, |(t, _)| seconds(*t));
    println!(
        "cluster kills summary: webhooks {webhooks}, acknowledged {}, attempts resent {}, \
         kills {} (nodes {nodes_killed:?}, last restart {:.1} s in), runs {} (all succeeded, \
         {resumed} taken over after a kill), takeover median {median:.3} s, max {:.3} s \
         (bound {:.3} s), requests per idempotency key (sends: keys) {repeated_keys:?}, \
         replays charge {} notify {}, backlog at quiet {backlog} at {rate:.0} runs/s, last run \
         finished {:.3} s after quiet (bound {:.3} s), drained {:.1} s after quiet, total \
         {:.1} s, seed {seed}",
        acknowledged.len(),
        campaign.resent.load(Ordering::SeqCst),
        kills.len(),
        last_restart.map_or(0.0, |at| seconds(at - began)),
        runs.len(),
        slowest.map_or(0.0, |(t, _)| seconds(t)),
        seconds(takeover_bound),
        payments.replays(),
        chat.replays(),
        seconds(tail),
        seconds(tail_bound),
        seconds(drained_at - quiet),
        seconds(Utc::now() - began),
    );
    store.close().await;
}

// 2. A paused node.

/// What the paused node logs when a write of a run it lost is refused:
/// the executor's note when a step's entry is refused, or the store's error
/// when the run's end is.
const LEASE_LOST: [&str; 2] = [
    "no longer held by this node",
    "is no longer leased to this worker",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_cannot_finish_or_journal_the_runs_it_lost() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const RUNS: usize = 4;
    // Longer than the lease: node A's calls are still on the wire when it
    // is paused, and their answers reach it only after it lost the runs.
    // Node B's repeats are answered at once, from the upstreams'
    // idempotency stores. Half the runs are paused in their first step,
    // half in their last, where the step's entry and the run's end are
    // written together.
    const SLOW: Duration = Duration::from_secs(4);
    // Node A is paused; node B takes its runs over.
    let a = 0;

    let schema = Schema::new();
    let store = schema.open().await;
    let (payments, chat) = upstreams(SLOW).await;
    let project = TestProject::new(&root(&schema), &[("charge", CHARGE_FLOW)]);
    let env = node_env(&payments, &chat, "info");
    let cluster = Cluster::start(2, spawner(project.path(), env, &[])).await;
    let a_base = cluster.base(a).expect("node A is up");
    let client = reqwest::Client::new();
    let start_run = |order: String| {
        let (client, url) = (&client, format!("{a_base}/api/v1/flows/charge/runs"));
        async move {
            let response = client
                .post(url)
                .json(&json!({ "order_id": order }))
                .send()
                .await
                .expect("node A answers");
            assert_eq!(response.status().as_u16(), 202, "node A accepts the run");
            let accepted: serde_json::Value = response.json().await.expect("JSON answer");
            accepted["run_id"]
                .as_str()
                .and_then(|id| id.parse::<RunId>().ok())
                .expect("a run id")
        }
    };

    let mut ids = Vec::with_capacity(RUNS);
    let mut in_step = HashMap::new();
    for n in 0..RUNS {
        let (order, step) = if n % 2 == 0 {
            (format!("slow-charge-{n}"), "charge")
        } else {
            (format!("slow-notify-{n}"), "notify")
        };
        let id = start_run(order).await;
        ids.push(id);
        in_step.insert(id, step);
    }
    let on_the_wire = payments
        .wait_for_requests(RUNS, Duration::from_secs(20))
        .await
        && chat
            .wait_for_requests(RUNS / 2, Duration::from_secs(20))
            .await;
    assert!(on_the_wire, "node A's calls did not reach the upstreams");
    let held: Vec<Run> = runs_by_id(&store, &ids).await;
    let owners: HashSet<Option<&str>> = held.iter().map(|run| run.lease_owner.as_deref()).collect();
    assert_eq!(owners.len(), 1, "node A holds every run: {owners:?}");
    assert!(
        held.iter().all(|run| run.status == RunStatus::Running),
        "the runs are running on node A"
    );

    cluster.pause(a);
    let paused = Instant::now();
    // Node A journalled every step before the slow one, and nothing else.
    let journalled = journals(&store, &held).await;
    for (id, journal) in &journalled {
        let steps: Vec<&str> = journal.iter().map(|e| e.step_id.as_str()).collect();
        let expected: &[&str] = match in_step[id] {
            "charge" => &[],
            _ => &["charge"],
        };
        assert_eq!(
            steps, expected,
            "run {id}: node A's journal when it was paused (a step still on the wire after \
             {SLOW:?} means the machine is too slow for this test)"
        );
    }

    // Node B takes the runs over once their lease has run out, and
    // finishes them while node A is still paused.
    let finished = eventually(Duration::from_secs(30), || async {
        runs_by_id(&store, &ids)
            .await
            .iter()
            .all(|run| run.status.is_final())
    })
    .await;
    let finished_after = paused.elapsed();
    assert!(finished, "node B did not finish node A's runs within 30 s");
    let taken: Vec<Run> = runs_by_id(&store, &ids).await;
    let taken_journals = journals(&store, &taken).await;

    // Resumed, node A's calls come back, and its first write of each run
    // is refused: the journal entry of its first step, or the end of the
    // run with the entry of its last.
    cluster.resume(a);
    let paused_for = paused.elapsed();
    let a_log = node_log(project.path(), a);
    let noticed = eventually(Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&a_log).unwrap_or_default();
        ids.iter().all(|id| lease_lost(&text, *id))
    })
    .await;
    let text = std::fs::read_to_string(&a_log).unwrap_or_default();
    assert!(
        noticed,
        "node A did not log that it lost the runs {:?}; its log:\n{text}",
        ids.iter()
            .filter(|id| !lease_lost(&text, **id))
            .collect::<Vec<_>>()
    );
    let notes: Vec<&str> = text
        .lines()
        .filter(|line| ids.iter().any(|id| lease_lost(line, *id)))
        .collect();
    // Node A works on after it noticed: a new run through it succeeds.
    let fresh = start_run("fresh".to_string()).await;
    let fresh_done = eventually(Duration::from_secs(30), || async {
        runs_by_id(&store, &[fresh]).await[0].status.is_final()
    })
    .await;
    assert!(
        fresh_done,
        "node A did not finish a new run after it was resumed"
    );
    cluster.stop().await;

    let after: Vec<Run> = runs_by_id(&store, &ids).await;
    let after_journals = journals(&store, &after).await;
    for (before, run) in taken.iter().zip(&after) {
        let id = run.id;
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "run {id}: {:?}",
            run.error
        );
        assert!(
            run.attempts >= 2,
            "run {id} was taken over by node B ({} claims)",
            run.attempts
        );
        // Node A changed nothing once node B had finished the run.
        assert_eq!(
            (
                run.status,
                run.finished_at,
                run.updated_at,
                run.attempts,
                &run.output
            ),
            (
                before.status,
                before.finished_at,
                before.updated_at,
                before.attempts,
                &before.output
            ),
            "run {id} changed after node B finished it"
        );
        let journal = &after_journals[&id];
        assert_eq!(
            journal.len(),
            taken_journals[&id].len(),
            "run {id}: entries were journalled after node B finished it: {journal:#?}"
        );
        // One succeeded entry per step: the paused node's result of the
        // step it was in never joined the one node B recorded.
        let mut succeeded: BTreeMap<(&str, Option<u32>), usize> = BTreeMap::new();
        for entry in journal.iter().filter(|e| e.status == StepStatus::Succeeded) {
            *succeeded
                .entry((entry.step_id.as_str(), entry.item))
                .or_default() += 1;
        }
        assert_eq!(
            succeeded,
            BTreeMap::from([(("charge", None), 1), (("notify", None), 1)]),
            "run {id}: succeeded entries per step"
        );
        // Node A's lease on the run lasted at least a lease from its commit:
        // node B's claim (a later one) may not have begun before it ran out.
        let expired = run.created_at + chrono::TimeDelta::from_std(LEASE).expect("lease");
        let early: Vec<&JournalEntry> = journal
            .iter()
            .filter(|e| e.attempt > 1 && e.started_at < expired)
            .collect();
        assert!(
            early.is_empty(),
            "run {id}: node B began before node A's lease ran out at {expired}: {early:#?}"
        );
        // Stored instants are whole milliseconds, so an entry's end may
        // read one past the run's.
        let finished_at = run.finished_at.expect("a finished run has an end");
        for entry in journal {
            let ended =
                entry.started_at + chrono::TimeDelta::milliseconds(entry.duration_ms as i64);
            assert!(
                ended <= finished_at + chrono::TimeDelta::milliseconds(1),
                "run {id}: entry {} of claim {} ended at {ended}, after the run finished at \
                 {finished_at}",
                entry.step_id,
                entry.attempt
            );
        }
        for key in [format!("{id}:charge"), format!("{id}:notify")] {
            let upstream = if key.ends_with("charge") {
                &payments
            } else {
                &chat
            };
            assert_eq!(upstream.side_effects(&key), 1, "{key} took effect once");
        }
    }
    let charges_sent = payments.requests_to("POST", "/charges").len();
    let panics = panics_in_logs(project.path(), 2);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");
    println!(
        "paused node summary: {RUNS} runs on node A (half in their first step, half in their \
         last), paused for {:.1} s (lease {:.1} s); \
         node B finished them {:.1} s after the pause; claims per run {:?}; charges sent \
         {charges_sent} ({} answered from the upstream's idempotency store); node A then \
         finished a new run, and had logged each run it lost:\n{}",
        paused_for.as_secs_f64(),
        LEASE.as_secs_f64(),
        finished_after.as_secs_f64(),
        after.iter().map(|run| run.attempts).collect::<Vec<_>>(),
        payments.replays(),
        notes.join("\n"),
    );
    store.close().await;
}

/// The runs `ids` as stored, in that order.
async fn runs_by_id(store: &PgStore, ids: &[RunId]) -> Vec<Run> {
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        runs.push(
            store
                .run(*id)
                .await
                .expect("read a run")
                .expect("the run exists"),
        );
    }
    runs
}

/// Whether a line of `log` says that run `id` was lost to another node.
fn lease_lost(log: &str, id: RunId) -> bool {
    let id = id.to_string();
    log.lines()
        .any(|line| line.contains(&id) && LEASE_LOST.iter().any(|note| line.contains(note)))
}

// 3. A schedule.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_flow_fires_each_second_exactly_once_across_node_kills() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const NODES: usize = 3;
    let duration = Duration::from_secs(campaign_setting("PATCHBAY_CLUSTER_CRON_SECONDS", 15));
    let seed = campaign_seed();
    println!(
        "cluster schedule: {NODES} nodes for {duration:?}, seed {seed} \
         (PATCHBAY_CAMPAIGN_SEED={seed} repeats the kill schedule)"
    );

    let schema = Schema::new();
    let store = schema.open().await;
    let (payments, chat) = upstreams(Duration::ZERO).await;
    let project = TestProject::new(&root(&schema), &[("tick", TICK_FLOW)]);
    let env = node_env(&payments, &chat, "warn");
    let cluster = Cluster::start(NODES, spawner(project.path(), env.clone(), &[])).await;

    // One node down at a time, for a random moment, so that at every
    // instant some scheduler runs.
    let mut rng = fastrand::Rng::with_seed(seed);
    let until = Instant::now() + duration;
    let mut killed = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.u64(300..1500))).await;
        let node = rng.usize(0..NODES);
        cluster.kill(node).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1000))).await;
        cluster.restart(node).await;
        killed.push(node);
    }

    // The schedulers stop; a node that fires nothing finishes what they
    // fired.
    cluster.stop().await;
    let drainer = Cluster::start(1, {
        let spawn = spawner(project.path(), env, &["--no-scheduler"]);
        move |_| spawn(NODES)
    })
    .await;
    let drained = eventually(Duration::from_secs(60), || async {
        tally(&store).await.1 == 0
    })
    .await;
    drainer.stop().await;
    assert!(drained, "scheduled runs still queued or running after 60 s");

    let runs = all_runs(&store).await;
    let mut by_second: BTreeMap<i64, Vec<RunId>> = BTreeMap::new();
    for run in &runs {
        assert_eq!(run.trigger, "schedule", "run {}", run.id);
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "run {}: {:?}",
            run.id,
            run.error
        );
        let at: DateTime<Utc> = run.input["scheduled_at"]
            .as_str()
            .and_then(|at| at.parse().ok())
            .unwrap_or_else(|| panic!("run {} has no scheduled_at: {}", run.id, run.input));
        assert_eq!(at.timestamp_subsec_millis(), 0, "fires on the second");
        by_second.entry(at.timestamp()).or_default().push(run.id);
    }
    let (first, last) = match (by_second.keys().next(), by_second.keys().last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => panic!("the schedule never fired"),
    };
    let duplicates: Vec<String> = by_second
        .iter()
        .filter(|(_, runs)| runs.len() > 1)
        .map(|(second, runs)| format!("{second}: {runs:?}"))
        .collect();
    let gaps: Vec<i64> = (first..=last)
        .filter(|second| !by_second.contains_key(second))
        .collect();
    assert!(
        duplicates.is_empty(),
        "seconds fired more than once: {}",
        some(&duplicates)
    );
    assert!(
        gaps.is_empty(),
        "seconds between {first} and {last} that never fired (unix seconds): {}; \
         nodes killed in turn: {killed:?}, seed {seed}",
        some(&gaps)
    );
    let fired = last - first + 1;
    assert!(
        fired as u64 >= duration.as_secs(),
        "the schedule fired over {fired} s only, while the nodes ran for {duration:?}"
    );
    let panics = panics_in_logs(project.path(), NODES + 1);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");
    println!(
        "cluster schedule summary: {} runs, one for each of {fired} seconds, no duplicate, \
         no gap; {} kills (nodes {killed:?}), seed {seed}",
        runs.len(),
        killed.len(),
    );
    store.close().await;
}

/// Three nodes of a project whose flow `sync` (webhook `/hooks/sync`)
/// posts its event to connector `partner` at `upstream`. `settings` is
/// appended under the connector (lines indented by four spaces) and may go
/// on with top-level sections. The schema and the project live as long as
/// the returned guards.
async fn partner_cluster(
    upstream: &MockUpstream,
    settings: &str,
) -> (Schema, TestProject, Arc<Cluster>) {
    let schema = Schema::new();
    schema.open().await.close().await;
    let root = format!(
        "\
connectors:
  partner:
    url: \"${{env:PARTNER_URL}}\"
    dangerous_allow_private: true
{settings}{store}",
        store = schema.store_yaml()
    );
    let flow = "\
trigger: { webhook: { path: /hooks/sync } }
steps:
  - call: partner POST /sync
    body: '.'
";
    let project = TestProject::new(&root, &[("sync", flow)]);
    let env = vec![("PARTNER_URL", upstream.url()), ("PG_URL", pg_url())];
    let cluster = Cluster::start(3, spawner(project.path(), env, &[])).await;
    (schema, project, cluster)
}

/// Posts `calls` events to `/hooks/sync`, all queued at once, a third on
/// each node of `cluster`, and waits until `upstream` has heard that many
/// calls.
async fn send_to_every_node(cluster: &Cluster, upstream: &MockUpstream, calls: usize) {
    let client = reqwest::Client::new();
    let sends = (0..calls).map(|n| {
        let base = cluster.base(n % 3).expect("the node is up");
        let client = client.clone();
        async move {
            let answer = client
                .post(format!("{base}/hooks/sync"))
                .json(&json!({ "n": n }))
                .send()
                .await
                .expect("an answer");
            assert_eq!(answer.status(), 202, "call {n}");
        }
    });
    futures::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let done = eventually(Duration::from_secs(60), || async {
        upstream.request_count() >= calls
    })
    .await;
    assert!(done, "{} of {calls} calls made", upstream.request_count());
}

/// A connector limited to 50 calls a second, called by three nodes at once,
/// against an upstream that answers `429` to anything faster: the limit is
/// the cluster's, kept in the database, so the upstream sees 50 a second
/// between them (within 5 %) and never has to refuse one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_rate_limit_and_the_upstream_refuses_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    const RATE: u32 = 50;
    let calls = campaign_setting("PATCHBAY_CLUSTER_LIMITED_CALLS", 300) as usize;
    let upstream = MockUpstream::start().await;
    upstream.route("POST", "/sync", Reply::json(200, json!({ "ok": true })));
    // The upstream's own limit tolerates calls up to 100 ms early, as real
    // ones do (a GCRA with a burst of 5): a call that the machine's load
    // delayed, followed by one on time, is not a breach of 50 a second.
    // The connector spaces its calls evenly (burst 1).
    upstream.enforce_rate_limit_with_burst(RATE, Duration::from_secs(1), 5);
    let (_schema, _project, cluster) = partner_cluster(
        &upstream,
        &format!("    rate_limit: {{ requests: {RATE}, per: 1s, max_wait: 60s }}\n"),
    )
    .await;

    send_to_every_node(&cluster, &upstream, calls).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let requests = upstream.requests();
    assert_eq!(requests.len(), calls, "one call per run");
    assert_eq!(
        upstream.rejected(),
        0,
        "calls the upstream refused with 429"
    );
    let first = requests.iter().map(|r| r.received_at).min().unwrap();
    let last = requests.iter().map(|r| r.received_at).max().unwrap();
    let rate = (calls - 1) as f64 / (last - first).as_secs_f64();
    // The busiest second, as a window-counting upstream would see it.
    let mut arrivals: Vec<_> = requests.iter().map(|r| r.received_at).collect();
    arrivals.sort();
    let busiest = (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|at| **at - arrivals[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "{calls} calls from 3 nodes in {:?}: {rate:.2}/s against a limit of {RATE}/s, \
         at most {busiest} in any second, 0 refused",
        last - first
    );
    let limit = f64::from(RATE);
    assert!(
        (rate - limit).abs() <= limit * 0.05,
        "{rate:.2} calls a second, not within 5 % of {limit}"
    );
    cluster.stop().await;
}

/// A connector allowing 4 calls in flight, called by three nodes at once
/// against an upstream that takes 100 ms to answer: the slots are the
/// cluster's, kept in the database, so the upstream never sees more than 4
/// at once (each node on its own would send 4, 12 in all), and sees 4 at
/// times: the cap is a limit, not a throttle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_max_in_flight_and_the_upstream_never_sees_more() {
    let _one = ONE_AT_A_TIME.lock().await;
    const LIMIT: usize = 4;
    const CALLS: usize = 120;
    let upstream = MockUpstream::start().await;
    upstream.route(
        "POST",
        "/sync",
        Reply::json(200, json!({ "ok": true })).with_delay(Duration::from_millis(100)),
    );
    let (_schema, _project, cluster) = partner_cluster(
        &upstream,
        &format!(
            "    max_in_flight: {LIMIT}
"
        ),
    )
    .await;

    send_to_every_node(&cluster, &upstream, CALLS).await;

    let most = upstream.max_in_flight();
    println!("{CALLS} calls of 100 ms from 3 nodes, at most {most} in flight at once");
    assert!(
        most <= LIMIT,
        "{most} calls in flight at once, limit {LIMIT}"
    );
    assert!(
        most >= LIMIT - 1,
        "only {most} in flight at once: slots went unused"
    );
    cluster.stop().await;
}

/// Three nodes calling an API whose OAuth 2.0 server rotates the refresh
/// token on every refresh and refuses any token it rotated away: with
/// access tokens that live a second, the token is replaced again and
/// again, by one node at a time, each presenting the refresh token the
/// previous refresh saved, and the other nodes take the access token it
/// fetched. No refresh is refused, every call succeeds, and the cluster
/// asks for one token per token life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_rotating_oauth_token_and_refresh_it_one_at_a_time() {
    let _one = ONE_AT_A_TIME.lock().await;
    let calls = campaign_setting("PATCHBAY_CLUSTER_OAUTH_CALLS", 150) as usize;
    let schema = Schema::new();
    schema.open().await.close().await;
    let oauth = patchbay_testkit::oauth::start("cluster-it", "cluster-secret")
        .await
        .unwrap();
    oauth.add_refresh_token("rt-first");
    oauth.set_rotation(true);
    oauth.set_ttl(Duration::from_secs(1));
    let api = MockUpstream::start().await;
    oauth.protect(&api, "GET", "/me", Reply::json(200, json!({ "ok": true })));
    let root = format!(
        "\
connectors:
  api:
    url: \"${{env:API_URL}}\"
    dangerous_allow_private: true
    retry: {{ attempts: 1 }}
    auth:
      oauth2:
        token_url: \"${{env:TOKEN_URL}}\"
        grant: refresh_token
        client_id: cluster-it
        client_secret: cluster-secret
        refresh_token: rt-first
{store}",
        store = schema.store_yaml()
    );
    let flow = "\
trigger: { webhook: { path: /hooks/me, mode: sync, timeout: 20s } }
steps:
  - id: me
    call: api GET /me
  - respond: { body: '$steps.me.body' }
";
    let project = TestProject::new(&root, &[("me", flow)]);
    let env = vec![
        ("API_URL", api.url()),
        ("TOKEN_URL", oauth.token_url()),
        ("PG_URL", pg_url()),
    ];
    let cluster = Cluster::start(3, spawner(project.path(), env, &[])).await;

    // Calls spread over the nodes for longer than several token lives.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let sends = (0..calls).map(|n| {
        let base = cluster.base(n % 3).expect("the node is up");
        let client = client.clone();
        async move {
            // Spread over about four seconds.
            tokio::time::sleep(Duration::from_millis(27 * n as u64)).await;
            let answer = client
                .post(format!("{base}/hooks/me"))
                .json(&json!({}))
                .send()
                .await
                .expect("an answer");
            (n, answer.status().as_u16())
        }
    });
    let answers: Vec<(usize, u16)> = futures::stream::iter(sends)
        .buffer_unordered(64)
        .collect()
        .await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status)| *status != 200)
        .collect();
    let log = oauth.token_log();
    let refused: Vec<_> = log.iter().filter(|r| r.status != 200).collect();
    println!(
        "{calls} calls over {:?} from 3 nodes: {} token requests, {} refused, {} calls failed",
        started.elapsed(),
        log.len(),
        refused.len(),
        failed.len()
    );
    assert!(refused.is_empty(), "refreshes refused: {refused:?}");
    assert!(failed.is_empty(), "calls failed: {failed:?}");
    // The token was replaced several times: the test did exercise the turn
    // taking.
    assert!(log.len() >= 4, "only {} token requests", log.len());
    // One token request per token life for the whole cluster: a token is
    // used for half its life (1 s), and the nodes whose copy runs out take
    // the one fetched by the first of them. Nodes fetching their own would
    // each ask within milliseconds of the others.
    let gaps: Vec<Duration> = log
        .windows(2)
        .map(|pair| pair[1].received.duration_since(pair[0].received))
        .collect();
    let closest = gaps.iter().min().copied().unwrap_or_default();
    println!("shortest time between two token requests: {closest:?}");
    assert!(
        closest >= Duration::from_millis(300),
        "two token requests {closest:?} apart: the nodes did not share the access token \
         (gaps {gaps:?})"
    );
    cluster.stop().await;
}

/// One node's evidence opens every node's breaker: three nodes call an
/// upstream that is down; once the first node's breaker opens on its own
/// failures, the other two open theirs within a heartbeat or two, and their
/// calls are refused without reaching the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_on_one_node_opens_on_every_node() {
    let _one = ONE_AT_A_TIME.lock().await;
    let upstream = MockUpstream::start().await;
    upstream.route(
        "POST",
        "/sync",
        Reply::json(503, json!({ "error": "down" })),
    );
    let (_schema, _project, cluster) = partner_cluster(
        &upstream,
        "    retry: { attempts: 1 }\n    \
         circuit_breaker: { failure_rate: 50%, min_calls: 5, window: 60s, open_for: 30s }\n\
         engine: { run_retries: [1h] }\n",
    )
    .await;
    let client = reqwest::Client::new();
    let breaker = |node: usize| {
        let url = format!(
            "{}/api/v1/connectors/partner",
            cluster.base(node).expect("the node is up")
        );
        async move { crate::support::get_json(&url).await["breaker"]["state"].clone() }
    };
    let send = |node: usize, n: usize| {
        let url = format!("{}/hooks/sync", cluster.base(node).expect("the node is up"));
        let client = client.clone();
        async move {
            let answer = client
                .post(url)
                .json(&json!({ "n": n }))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 202);
        }
    };

    // Node 0 alone meets the failures: its breaker opens.
    for n in 0..5 {
        send(0, n).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            breaker(0).await == "open"
        })
        .await,
        "node 0's breaker did not open"
    );
    let opened = Instant::now();
    for node in [1, 2] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                breaker(node).await == "open"
            })
            .await,
            "node {node}'s breaker did not follow"
        );
    }
    println!(
        "the other nodes' breakers opened {:?} after the first",
        opened.elapsed()
    );

    // Their calls now fail fast: the upstream hears nothing more.
    let heard = upstream.request_count();
    for n in 0..6 {
        send(1 + n % 2, 100 + n).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        upstream.request_count(),
        heard,
        "calls reached the upstream through an open breaker"
    );
    cluster.stop().await;
}
