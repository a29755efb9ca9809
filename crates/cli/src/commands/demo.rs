//! `patchbay demo`: the embedded default. Starts mock upstream APIs on
//! loopback, runs the example project shipped in `examples/demo/` against
//! them with a real SQLite store, drives traffic, and reports what happened.
//!
//! A few seconds in, it takes the payment gateway and then the chat down
//! for a while ([`OUTAGES`]), so the report can show the project riding
//! them out: the payments breaker opening and orders charged through the
//! backup gateway, runs rescheduled while chat is down and all of them
//! succeeding once it is back, and no order charged twice. Everything it
//! reports is read from the store's journal and the mocks' own ledgers.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use patchbay_config::{MapEnv, ProcessEnv, Source};
use patchbay_connector::{BreakerState, CallClass};
use patchbay_engine::{Build, Roles};
use patchbay_store::{JournalEntry, Run, RunFilter, RunStatus, StepStatus, Store};
use patchbay_testkit::Reply;
use patchbay_testkit::demo::{self, DemoUpstreams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::node::{Node, NodeOptions, Prepared};

/// The example project, compiled into the binary so the demo needs no files.
const PROJECT_FILES: [(&str, &str); 6] = [
    (
        "patchbay.yaml",
        include_str!("../../../../examples/demo/patchbay.yaml"),
    ),
    (
        "flows/new-order.yaml",
        include_str!("../../../../examples/demo/flows/new-order.yaml"),
    ),
    (
        "flows/sync-contacts.yaml",
        include_str!("../../../../examples/demo/flows/sync-contacts.yaml"),
    ),
    (
        "flows/quote.yaml",
        include_str!("../../../../examples/demo/flows/quote.yaml"),
    ),
    (
        "flows/follow-up.yaml",
        include_str!("../../../../examples/demo/flows/follow-up.yaml"),
    ),
    (
        "flows/alerts.yaml",
        include_str!("../../../../examples/demo/flows/alerts.yaml"),
    ),
];

/// The contracts the project's connectors name (`spec:`), also compiled in.
/// Contracts are read from disk relative to the project folder, so the
/// demo writes them into its data folder before loading the project.
const CONTRACT_FILES: [(&str, &str); 1] = [(
    "specs/crm.yaml",
    include_str!("../../../../examples/demo/specs/crm.yaml"),
)];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop by itself after this long (e.g. `10s`); without it, run until Ctrl-C.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Address of the API and webhooks while the demo runs.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Orders the fake shop sends per second.
    #[arg(long, default_value_t = 20)]
    pub orders_per_second: u32,
    /// Folder for the demo's SQLite store (default: a temporary folder, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Which upstream a scripted outage takes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Payments,
    Chat,
}

impl Target {
    /// The connector that calls it in the demo project.
    fn connector(self) -> &'static str {
        match self {
            Target::Payments => "payments",
            Target::Chat => "chat",
        }
    }
}

/// One scripted outage, in time since traffic started.
struct Outage {
    target: Target,
    from: Duration,
    until: Duration,
    /// How the upstream fails, for people reading the output.
    how: &'static str,
    reply: fn() -> Reply,
}

/// The demo's outages: once, early enough that `--for 20s` also shows the
/// recovery. They overlap, so some orders meet both.
const OUTAGES: [Outage; 2] = [
    Outage {
        target: Target::Payments,
        from: Duration::from_secs(3),
        until: Duration::from_secs(9),
        how: "answers 503",
        reply: || Reply::status(503),
    },
    Outage {
        target: Target::Chat,
        from: Duration::from_secs(7),
        until: Duration::from_secs(12),
        how: "resets every connection",
        reply: Reply::reset,
    },
];

/// How long queued work may take to finish after the traffic stops.
const DRAIN: Duration = Duration::from_secs(15);

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let upstreams = DemoUpstreams::start()
        .await
        .context("cannot start the mock upstreams")?;
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let env = MapEnv::new(
        [
            ("DEMO_PAYMENTS_URL", upstreams.payments.url()),
            ("DEMO_PAYMENTS_KEY", demo::PAYMENTS_API_KEY.to_string()),
            ("DEMO_PAYMENTS_BACKUP_URL", upstreams.payments_backup.url()),
            (
                "DEMO_PAYMENTS_BACKUP_KEY",
                demo::PAYMENTS_BACKUP_API_KEY.to_string(),
            ),
            ("DEMO_CRM_URL", upstreams.crm.url()),
            ("DEMO_CRM_KEY", demo::CRM_API_KEY.to_string()),
            ("DEMO_ERP_URL", upstreams.erp.url()),
            ("DEMO_ERP_USER", demo::ERP_USERNAME.to_string()),
            ("DEMO_ERP_PASSWORD", demo::ERP_PASSWORD.to_string()),
            ("DEMO_CHAT_URL", upstreams.chat.url()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    )
    .with_fallback(ProcessEnv);
    let prepared = embedded_project(&dir, &env)?;
    let project = prepared.build.project.clone();
    let master_key =
        crate::secrets::node_key(&crate::store_at::StoreAt::of(&project, &env)?).await?;

    let node = match Node::start(
        prepared,
        &env,
        NodeOptions {
            listen: Some(args.listen),
            roles: Roles::default(),
            master_key: Some(master_key.clone()),
            reload_from: None,
        },
    )
    .await
    {
        Ok(node) => node,
        Err(e) if args.listen.port() != 0 => {
            // The default port may be taken; the demo should still run.
            eprintln!("note: {e:#}; using a free port instead");
            let mut any = args.listen;
            any.set_port(0);
            Node::start(
                embedded_project(&dir, &env)?,
                &env,
                NodeOptions {
                    listen: Some(any),
                    roles: Roles::default(),
                    master_key: Some(master_key),
                    reload_from: None,
                },
            )
            .await?
        }
        Err(e) => return Err(e),
    };
    let base = format!("http://{}", node.address);
    crate::outln!("Patchbay demo");
    crate::outln!("  dashboard    {base}/ui");
    crate::outln!("  API          {base}/api/v1/runs   (flows: {base}/api/v1/flows)");
    crate::outln!("  health       {base}/healthz");
    crate::outln!(
        "  webhooks     POST {base}/hooks/shop/orders, POST {base}/hooks/shop/events, POST {base}/hooks/quote (sync)"
    );
    crate::outln!("  store        {}", project.store_path().display());
    crate::outln!(
        "  upstreams    payments {}  payments_backup {}",
        upstreams.payments.url(),
        upstreams.payments_backup.url(),
    );
    crate::outln!(
        "               crm {}  erp {}  chat {}",
        upstreams.crm.url(),
        upstreams.erp.url(),
        upstreams.chat.url()
    );
    crate::outln!("  outages      {}", describe_outages());
    match args.duration {
        Some(d) => crate::outln!("Sending traffic for {}…", humantime::format_duration(d)),
        None => crate::outln!("Sending traffic until Ctrl-C…"),
    }

    let store = node.engine.store().clone();
    let clock = Clock::start();
    let stop_outages = CancellationToken::new();
    let work = async {
        let quotes = drive_traffic(&base, args.orders_per_second, args.duration).await;
        let drained = drain(store.as_ref(), DRAIN).await;
        stop_outages.cancel();
        drained.map(|()| quotes)
    };
    let watched: Vec<&str> = OUTAGES.iter().map(|o| o.target.connector()).collect();
    let (quotes, seen, breakers) = tokio::join!(
        work,
        play_outages(&upstreams, clock, &stop_outages),
        watch_breakers(&node.engine, &watched, clock, &stop_outages)
    );
    let quotes = quotes?;

    let counts = store.count_runs().await?;
    let mut table: BTreeMap<String, BTreeMap<RunStatus, u64>> = BTreeMap::new();
    for count in &counts {
        *table
            .entry(count.flow.clone())
            .or_default()
            .entry(count.status)
            .or_default() += count.count;
    }
    crate::outln!();
    crate::outln!("Runs per flow:");
    crate::outln!(
        "  {:<15} {:>9} {:>7} {:>8} {:>7}",
        "FLOW",
        "SUCCEEDED",
        "DEAD",
        "SKIPPED",
        "QUEUED"
    );
    let mut every_flow_succeeded = true;
    let mut dead = 0;
    for flow in project.flows.keys() {
        let by_status = table.get(flow).cloned().unwrap_or_default();
        let get = |s: RunStatus| by_status.get(&s).copied().unwrap_or(0);
        let pending = get(RunStatus::Queued) + get(RunStatus::Running);
        crate::outln!(
            "  {:<15} {:>9} {:>7} {:>8} {:>7}",
            flow,
            get(RunStatus::Succeeded),
            get(RunStatus::Dead),
            get(RunStatus::Skipped),
            pending
        );
        every_flow_succeeded &= get(RunStatus::Succeeded) > 0;
        dead += get(RunStatus::Dead);
    }
    crate::outln!(
        "Upstreams: {} charges created ({} by payments, {} by payments_backup), {} ERP customers, {} chat messages; {quotes} shipping quotes answered synchronously",
        upstreams.payments.charges_created() + upstreams.payments_backup.charges_created(),
        upstreams.payments.charges_created(),
        upstreams.payments_backup.charges_created(),
        upstreams.erp.customer_count(),
        upstreams.chat.message_count()
    );

    let follow_ups = FollowUps::load(store.as_ref()).await?;
    crate::outln!(
        "Follow-ups: {} refund requests announced, {} reminders sent after their 3 s wait, {} still waiting (each branch chosen once and journalled)",
        follow_ups.refunds,
        follow_ups.reminders,
        follow_ups.waiting
    );

    let orders = OrderRuns::load(store.as_ref()).await?;
    let charges = ChargeCheck::of(&upstreams, &orders.runs);
    let has_breaker = |connector: &str| {
        project
            .config
            .connectors
            .get(connector)
            .is_some_and(|c| c.circuit_breaker.enabled)
    };
    crate::outln!();
    crate::outln!("Outages, and how new-order rode them out:");
    if seen.is_empty() {
        crate::outln!(
            "  none: the demo stopped before the first one (at {}s)",
            OUTAGES[0].from.as_secs()
        );
    }
    for outage in &OUTAGES {
        let Some(window) = seen.iter().find(|w| w.target == outage.target) else {
            continue;
        };
        let until = window
            .until
            .map_or_else(|| "the end".to_string(), |t| format!("t={}", seconds(t)));
        crate::outln!(
            "  {:<9} down from t={} to {until} ({}; {} requests refused)",
            outage.target.connector(),
            seconds(window.from),
            outage.how,
            match outage.target {
                Target::Payments => upstreams.payments.outage_replies(),
                Target::Chat => upstreams.chat.outage_replies(),
            }
        );
        match outage.target {
            Target::Payments => {
                let c = &orders.charge;
                crate::outln!(
                    "    charged by payments: {}, charged by payments_backup: {} ({} after the call's retries failed, {} refused by the open breaker)",
                    upstreams.payments.charges_created(),
                    upstreams.payments_backup.charges_created(),
                    c.failed_upstream,
                    c.failed_fast,
                );
            }
            Target::Chat => {
                let r = &orders.retried;
                crate::outln!(
                    "    runs rescheduled: {}, recovered: {}, dead: {}, still waiting: {}  (succeeded after {})",
                    r.rescheduled,
                    r.recovered,
                    r.dead,
                    r.waiting,
                    r.histogram()
                );
                let how = if orders.charge_repeated == 0 {
                    " (each resumed at the failed step, reusing its journalled charge)"
                } else {
                    ""
                };
                crate::outln!(
                    "    charges repeated by rescheduled runs: {}{how}",
                    orders.charge_repeated
                );
            }
        }
        if has_breaker(outage.target.connector()) {
            print_breaker(
                breakers
                    .get(outage.target.connector())
                    .map_or(&[][..], Vec::as_slice),
            );
        }
    }
    crate::outln!(
        "  side effects: charges: {}, orders charged: {}, charged twice: {}, not charged: {}, replayed by idempotency key: {}",
        charges.charges,
        charges.orders_charged,
        charges.twice,
        charges.missing,
        upstreams.payments.idempotent_replays() + upstreams.payments_backup.idempotent_replays()
    );

    if let Some(run) = orders.sample() {
        let story = if run.retries > 0 {
            " that was rescheduled"
        } else {
            ""
        };
        crate::outln!();
        crate::outln!(
            "A sample run of new-order{story} ({}), step by step (#N: the run's Nth attempt):",
            run.id
        );
        for entry in store.journal(run.id).await? {
            print_entry(&entry);
        }
    }
    node.stop().await?;
    upstreams.shutdown().await;
    drop(temp);
    let mut problems = Vec::new();
    if !every_flow_succeeded {
        problems.push("some demo flows had no successful run".to_string());
    }
    if dead > 0 {
        problems.push(format!("{dead} runs are dead"));
    }
    if charges.twice > 0 || charges.missing > 0 || charges.charges != charges.orders_charged {
        problems.push("the charges do not match the orders one to one".to_string());
    }
    if problems.is_empty() {
        Ok(Outcome::Success)
    } else {
        eprintln!("{}", problems.join("; "));
        Ok(Outcome::Failure)
    }
}

/// Times in the demo, as offsets from the start of traffic.
#[derive(Clone, Copy)]
struct Clock {
    started: Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            started: Instant::now(),
        }
    }

    /// Milliseconds since the start of traffic.
    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// `12.3s` for an offset in milliseconds.
fn seconds(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn describe_outages() -> String {
    OUTAGES
        .iter()
        .map(|o| {
            format!(
                "{} {} from t={}s to t={}s",
                o.target.connector(),
                o.how,
                o.from.as_secs(),
                o.until.as_secs()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An outage as it happened, in milliseconds since the start of traffic.
struct Window {
    target: Target,
    from: i64,
    /// `None` when the demo stopped first.
    until: Option<i64>,
}

/// Starts and ends [`OUTAGES`] on time, printing a line for each, until they
/// are over or `stop` is cancelled; any outage still in force then ends.
async fn play_outages(
    upstreams: &DemoUpstreams,
    clock: Clock,
    stop: &CancellationToken,
) -> Vec<Window> {
    let set = |target: Target, reply: Option<Reply>| match (target, reply) {
        (Target::Payments, Some(reply)) => upstreams.payments.start_outage(reply),
        (Target::Payments, None) => upstreams.payments.end_outage(),
        (Target::Chat, Some(reply)) => upstreams.chat.start_outage(reply),
        (Target::Chat, None) => upstreams.chat.end_outage(),
    };
    let mut changes: Vec<(Duration, usize, bool)> = OUTAGES
        .iter()
        .enumerate()
        .flat_map(|(i, o)| [(o.from, i, true), (o.until, i, false)])
        .collect();
    changes.sort_by_key(|(at, _, _)| *at);
    let mut seen: Vec<Window> = Vec::new();
    let elapsed_ms = || clock.elapsed_ms();
    for (at, i, begins) in changes {
        let outage = &OUTAGES[i];
        tokio::select! {
            () = tokio::time::sleep_until((clock.started + at).into()) => {}
            () = stop.cancelled() => break,
        }
        let now = elapsed_ms();
        if begins {
            set(outage.target, Some((outage.reply)()));
            crate::outln!(
                "  t={:>5}  {} is down: it {}",
                seconds(now),
                outage.target.connector(),
                outage.how
            );
            seen.push(Window {
                target: outage.target,
                from: now,
                until: None,
            });
        } else {
            set(outage.target, None);
            crate::outln!(
                "  t={:>5}  {} is back",
                seconds(now),
                outage.target.connector()
            );
            if let Some(window) = seen.iter_mut().find(|w| w.target == outage.target) {
                window.until = Some(now);
            }
        }
    }
    for outage in &OUTAGES {
        set(outage.target, None);
    }
    seen
}

/// Waits until no run is queued or running, at most `limit`.
async fn drain(store: &dyn Store, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let counts = store.count_runs().await?;
        if counts.iter().all(|c| c.status.is_final() || c.count == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// What the journals of the new-order runs say.
struct OrderRuns {
    runs: Vec<Run>,
    charge: StepCalls,
    retried: Retried,
    /// Runs whose charge (or its fallback) ran in more than one claim.
    charge_repeated: usize,
    /// The run to show step by step: one that met both outages if any.
    sample: Option<usize>,
}

/// Failed and succeeded calls of one step, from the journal.
#[derive(Default)]
struct StepCalls {
    /// Failed after reaching the upstream (its retries spent).
    failed_upstream: usize,
    /// Failed because the breaker was open (the last attempt not sent).
    failed_fast: usize,
}

/// Runs rescheduled at least once, by how they ended.
#[derive(Default)]
struct Retried {
    rescheduled: usize,
    recovered: usize,
    dead: usize,
    waiting: usize,
    /// Recovered runs by the number of retries they took.
    by_retries: BTreeMap<u32, usize>,
}

impl Retried {
    fn histogram(&self) -> String {
        if self.by_retries.is_empty() {
            return "no retry".to_string();
        }
        self.by_retries
            .iter()
            .map(|(retries, runs)| {
                let plural = if *retries == 1 { "retry" } else { "retries" };
                format!("{retries} {plural}: {runs}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every run of `flow`, newest first, a page at a time.
async fn runs_of(store: &dyn Store, flow: &str) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_runs(&RunFilter {
                flow: Some(flow.into()),
                before,
                limit: 1000,
                ..RunFilter::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        runs.extend(page);
    }
    Ok(runs)
}

/// What the `follow-up` flow's branches did, read from the journal.
#[derive(Default)]
struct FollowUps {
    refunds: usize,
    reminders: usize,
    /// Runs still in their wait when the demo stopped.
    waiting: usize,
}

impl FollowUps {
    async fn load(store: &dyn Store) -> anyhow::Result<FollowUps> {
        let mut found = FollowUps::default();
        for run in runs_of(store, "follow-up").await? {
            if !run.status.is_final() {
                found.waiting += 1;
            }
            for entry in store.journal(run.id).await? {
                if entry.status != StepStatus::Succeeded || !entry.current {
                    continue;
                }
                match entry.step_id.as_str() {
                    "refund-note" => found.refunds += 1,
                    "reminder" => found.reminders += 1,
                    _ => {}
                }
            }
        }
        Ok(found)
    }
}

impl OrderRuns {
    async fn load(store: &dyn Store) -> anyhow::Result<OrderRuns> {
        let mut runs = runs_of(store, "new-order").await?;
        runs.reverse();
        let mut charge = StepCalls::default();
        let mut retried = Retried::default();
        let mut charge_repeated = 0;
        let mut sample = None;
        for (index, run) in runs.iter().enumerate() {
            let journal = store.journal(run.id).await?;
            let mut charge_claims = BTreeSet::new();
            let mut fell_back = false;
            for entry in &journal {
                match entry.step_id.as_str() {
                    "charge" => {
                        charge_claims.insert(entry.attempt);
                        charge.record(entry);
                    }
                    "charge-backup" => {
                        charge_claims.insert(entry.attempt);
                        fell_back = true;
                    }
                    _ => {}
                }
            }
            if charge_claims.len() > 1 {
                charge_repeated += 1;
            }
            if run.retries > 0 {
                retried.rescheduled += 1;
                match run.status {
                    RunStatus::Succeeded => {
                        retried.recovered += 1;
                        *retried.by_retries.entry(run.retries).or_default() += 1;
                    }
                    RunStatus::Dead => retried.dead += 1,
                    _ => retried.waiting += 1,
                }
            }
            if run.status == RunStatus::Succeeded {
                // Tuples of flags compare in order: a rescheduled run first,
                // then one charged through the backup.
                let rank = (run.retries > 0, fell_back);
                if sample.is_none_or(|(_, best)| rank > best) {
                    sample = Some((index, rank));
                }
            }
        }
        Ok(OrderRuns {
            runs,
            charge,
            retried,
            charge_repeated,
            sample: sample.map(|(index, _)| index),
        })
    }

    fn sample(&self) -> Option<&Run> {
        self.runs.get(self.sample?)
    }
}

impl StepCalls {
    fn record(&mut self, entry: &JournalEntry) {
        if entry.status != StepStatus::Failed {
            return;
        }
        if entry.error_class.as_deref() == Some(CallClass::CircuitOpen.as_str()) {
            self.failed_fast += 1;
        } else {
            self.failed_upstream += 1;
        }
    }
}

/// How often the breakers are looked at. Their changes come seconds apart.
const BREAKER_SAMPLE: Duration = Duration::from_millis(10);

/// Follows the circuit breakers of `connectors` while the demo runs and
/// returns each one's changes of state, in milliseconds from `clock`'s
/// start. Watching the breaker itself (rather than inferring its state from
/// the calls it refused) keeps the story right however slow the machine:
/// calls refused while a probe is out look like a fresh opening.
async fn watch_breakers(
    engine: &patchbay_engine::Engine,
    connectors: &[&str],
    clock: Clock,
    stop: &CancellationToken,
) -> BTreeMap<String, Vec<(i64, String)>> {
    let live = engine.connectors();
    let mut last: BTreeMap<String, (BreakerState, Option<Duration>)> = BTreeMap::new();
    let mut events: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut tick = tokio::time::interval(BREAKER_SAMPLE);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let at = clock.elapsed_ms();
        for name in connectors {
            let Some(connector) = live.get(name) else {
                continue;
            };
            let health = connector.health();
            let now = (health.breaker, health.breaker_retry_in);
            let before = last.insert((*name).to_string(), now);
            let what = match (before.map(|b| b.0), now.0) {
                (None | Some(BreakerState::Closed), BreakerState::Open) => {
                    Some("opened: calls fail fast, none reaches the upstream")
                }
                (Some(BreakerState::HalfOpen), BreakerState::Open) => {
                    Some("half-open: the probe failed, open again")
                }
                // A probe that failed between two looks: the wait before
                // the next one started over.
                (Some(BreakerState::Open), BreakerState::Open)
                    if now.1 > before.and_then(|b| b.1).map(|r| r + BREAKER_SAMPLE * 5) =>
                {
                    Some("half-open: the probe failed, open again")
                }
                (Some(BreakerState::Open | BreakerState::HalfOpen), BreakerState::Closed) => {
                    Some("half-open: the probe succeeded, closed")
                }
                _ => None,
            };
            if let Some(what) = what {
                events
                    .entry((*name).to_string())
                    .or_default()
                    .push((at, what.to_string()));
            }
        }
    }
    let at = clock.elapsed_ms();
    for (name, (state, _)) in &last {
        if matches!(state, BreakerState::Open | BreakerState::HalfOpen) {
            events.entry(name.clone()).or_default().push((
                at,
                "probe due, but the demo had stopped: still open".to_string(),
            ));
        }
    }
    events
}

fn print_breaker(events: &[(i64, String)]) {
    if events.is_empty() {
        crate::outln!("    breaker stayed closed");
    }
    for (i, (at, what)) in events.iter().enumerate() {
        let label = if i == 0 { "breaker" } else { "" };
        crate::outln!("    {label:<8} t={:>5}  {what}", seconds(*at));
    }
}

/// Every order charged exactly once across both gateways.
struct ChargeCheck {
    charges: usize,
    orders_charged: usize,
    /// Orders with a charge on both gateways.
    twice: usize,
    /// Succeeded runs whose order has no charge anywhere.
    missing: usize,
}

impl ChargeCheck {
    fn of(upstreams: &DemoUpstreams, runs: &[Run]) -> ChargeCheck {
        let main: HashSet<String> = upstreams.payments.charge_keys().into_iter().collect();
        let backup: HashSet<String> = upstreams
            .payments_backup
            .charge_keys()
            .into_iter()
            .collect();
        let missing = runs
            .iter()
            .filter(|run| run.status == RunStatus::Succeeded)
            .filter_map(|run| run.input["order_id"].as_str())
            .map(|order| format!("charge-{order}"))
            .filter(|key| !main.contains(key) && !backup.contains(key))
            .count();
        ChargeCheck {
            charges: upstreams.payments.charges_created()
                + upstreams.payments_backup.charges_created(),
            orders_charged: main.union(&backup).count(),
            twice: main.intersection(&backup).count(),
            missing,
        }
    }
}

fn print_entry(entry: &JournalEntry) {
    crate::out!("{}", crate::view::runs::entry_lines(entry));
}

fn embedded_project(dir: &std::path::Path, env: &MapEnv) -> anyhow::Result<Prepared> {
    for (path, text) in CONTRACT_FILES {
        let target = dir.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    let mut sources = PROJECT_FILES.iter().map(|(path, text)| Source {
        path: PathBuf::from("examples/demo").join(path),
        text: (*text).to_string(),
    });
    let root = sources
        .next()
        .context("the demo project has no root file")?;
    let invalid = |report| anyhow::anyhow!("the demo project is invalid:\n{report}");
    let build = Build::from_sources(dir, root, sources.collect(), env).map_err(invalid)?;
    Prepared::new(build).map_err(invalid)
}

/// Sends shop orders at a steady rate and a shipping quote every second,
/// until `duration` passes or Ctrl-C. Returns how many quotes were answered.
async fn drive_traffic(base: &str, orders_per_second: u32, duration: Option<Duration>) -> u64 {
    let client = reqwest::Client::new();
    let orders_url = format!("{base}/hooks/shop/orders");
    let quote_url = format!("{base}/hooks/quote");
    let events_url = format!("{base}/hooks/shop/events");
    let period = Duration::from_secs(1) / orders_per_second.max(1);
    let mut ticker = tokio::time::interval(period);
    let stop = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => super::run::wait_for_signal().await,
        }
    };
    tokio::pin!(stop);
    let mut sent: usize = 0;
    let mut quotes = 0;
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticker.tick() => {
                sent += 1;
                let order = demo::shop::order(sent);
                let request = client.post(&orders_url).header("webhook-id", format!("msg_ord_{sent}")).json(&order);
                in_flight.spawn(async move { request.send().await.map(|_| false) });
                // Every fifth order ships (a reminder follows after a wait);
                // every seventh asks for a refund.
                let follow_up = if sent.is_multiple_of(7) {
                    Some(json!({"type": "refund", "order_id": order["order_id"], "reason": "arrived late"}))
                } else if sent.is_multiple_of(5) {
                    Some(json!({"type": "shipped", "order_id": order["order_id"]}))
                } else {
                    None
                };
                if let Some(event) = follow_up {
                    let request = client.post(&events_url).json(&event);
                    in_flight.spawn(async move { request.send().await.map(|_| false) });
                }
                if sent.is_multiple_of(orders_per_second.max(1) as usize) {
                    let items = order["items"].clone();
                    let request = client.post(&quote_url).json(&json!({ "country": "DE", "items": items }));
                    in_flight.spawn(async move {
                        match request.send().await {
                            Ok(response) => Ok(response.status().is_success()),
                            Err(e) => Err(e),
                        }
                    });
                }
            }
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(Ok(true)) = done { quotes += 1; }
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        if let Ok(Ok(true)) = done {
            quotes += 1;
        }
    }
    quotes
}
