//! The crash campaign: signed webhooks arrive from several senders while the
//! real `patchbay` process is SIGKILLed at random moments and restarted on
//! the same store. Senders behave like webhook providers: a delivery that got
//! no 2xx (refused connection, cut connection, 503) is sent again with the
//! same `webhook-id`. At the end every acknowledged delivery has exactly one
//! run, every run succeeded, every step's side effect reached its upstream
//! exactly once, nothing is left queued or running, and the SQLite file
//! passes `PRAGMA integrity_check`.
//!
//! It runs twice: with an `async` webhook (answered once the run is
//! committed), and with a `sync` one whose caller waits for the flow's
//! `respond`, so that kills also land while callers wait for their answer
//! and while runs go from intake straight to a free worker.
//!
//! Sized by `PATCHBAY_CAMPAIGN_WEBHOOKS` (default 2000),
//! `PATCHBAY_CAMPAIGN_KILLS` (default 10), `PATCHBAY_CAMPAIGN_SENDERS`
//! (default 8) and `PATCHBAY_CAMPAIGN_SEED`; see `docs/campaigns.md`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;
use tokio::sync::watch;

use crate::support::{
    Patchbay, TestProject, assert_all_succeeded, campaign_seed, campaign_setting, drains_within,
    integrity_check, order_delivery, panics_in_log, patchbay_run, post_signed, store_file,
    stored_runs,
};

const SECRET: &str = "whsec_Y3Jhc2gtY2FtcGFpZ24tc2lnbmluZy1rZXk=";

const ROOT: &str = "\
connectors:
  payments:
    url: \"${env:PAYMENTS_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 3, backoff: { min: 10ms, max: 100ms } }
  bookings:
    url: \"${env:BOOKINGS_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 3, backoff: { min: 10ms, max: 100ms } }
  chat:
    url: \"${env:CHAT_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 3, backoff: { min: 10ms, max: 100ms } }
engine:
  lease: 2s
  poll_interval: 200ms
  run_retries: [200ms, 500ms, 1s, 2s, 5s]
  # The campaign kills the node back to back, faster than any crash loop: a
  # run in flight at three kills in a row would look like a run that takes
  # its node down, which is what this guard is for (hostile_flows tests it).
  max_claims_without_progress: 1000
";

/// Charge, book, notify: three calls with side effects. `charge` and
/// `notify` carry the default key (`RUN_ID:STEP_ID`); `book` is a `PUT`,
/// which carries none by default, so it names its key after the delivery.
/// In `sync` mode the caller is answered with the booking at the end.
fn flow(sync: bool) -> String {
    let mode = if sync { "sync" } else { "async" };
    let mut flow = format!(
        "\
trigger:
  webhook:
    path: /hooks/orders
    mode: {mode}
    verify: {{ standard_webhooks: {{ secret: \"${{env:HOOK_SECRET}}\" }} }}
    dedupe: '$headers[\"webhook-id\"]'
steps:
  - id: charge
    call: payments POST /charges
    body: '{{order_id, amount}}'
  - id: book
    call: bookings PUT /bookings/{{.order_id}}
    idempotency_key: '\"book-\\($headers[\"webhook-id\"])\"'
    body: '{{order_id, charge: $steps.charge.body.id}}'
  - id: notify
    call: chat POST /messages
    body: '{{text: \"order \\(.order_id) booked as \\($steps.book.body.booking)\"}}'
"
    );
    if sync {
        flow.push_str("  - respond:\n      status: 200\n      body: '$steps.book.body'\n");
    }
    flow
}

const STEPS: usize = 3;

/// What the senders and the killer share.
struct Campaign {
    /// Base URL of the live process; it changes with every restart.
    base: RwLock<String>,
    /// Deliveries acknowledged with a 2xx so far.
    acknowledged: watch::Sender<usize>,
    /// Requests that got no 2xx and were sent again.
    resent: std::sync::atomic::AtomicUsize,
    /// The next delivery to send.
    next: std::sync::atomic::AtomicUsize,
    webhooks: usize,
}

impl Campaign {
    fn base(&self) -> String {
        self.base.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Sends deliveries until none is left; each one until it gets a 2xx.
/// Returns the ids acknowledged.
async fn sender(campaign: Arc<Campaign>) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let mut acknowledged = Vec::new();
    loop {
        let n = campaign.next.fetch_add(1, Ordering::SeqCst);
        if n >= campaign.webhooks {
            return acknowledged;
        }
        let (id, body) = order_delivery(n);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut backoff = Duration::from_millis(10);
        loop {
            let url = format!("{}/hooks/orders", campaign.base());
            let sent = post_signed(&client, &url, SECRET, &id, &body).await;
            match sent {
                Ok(response) if response.status().is_success() => break,
                // The node is stopping or its store failed (503), or a
                // `sync` run resumed elsewhere never answered (504): the
                // sender tries again, and dedupe finds the committed run.
                Ok(response) if matches!(response.status().as_u16(), 503 | 504) => {}
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    panic!("delivery {id} answered {status}: {text}");
                }
                // Refused while the node is down, or cut by a kill.
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} got no 2xx for 120 s"
            );
            campaign.resent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
        acknowledged.push(id);
        campaign.acknowledged.send_modify(|count| *count += 1);
    }
}

/// Kills the node `kills` times, each once the acknowledged count reaches a
/// random point of the campaign and after a random extra moment, and starts
/// it again after a random pause. Returns the live node.
async fn killer(
    campaign: Arc<Campaign>,
    mut node: Patchbay,
    start: Arc<dyn Fn() -> Patchbay + Send + Sync>,
    kills: usize,
    seed: u64,
) -> Patchbay {
    let mut rng = fastrand::Rng::with_seed(seed);
    let webhooks = campaign.webhooks;
    let low = (webhooks / 20).max(1);
    let high = (webhooks * 19 / 20).max(low);
    let mut points: Vec<usize> = (0..kills).map(|_| rng.usize(low..=high)).collect();
    points.sort_unstable();
    let mut acknowledged = campaign.acknowledged.subscribe();
    for point in points {
        let _ = acknowledged.wait_for(|count| *count >= point).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..80))).await;
        tokio::task::spawn_blocking(move || node.kill())
            .await
            .expect("kill");
        tokio::time::sleep(Duration::from_millis(rng.u64(0..150))).await;
        let start = Arc::clone(&start);
        node = tokio::task::spawn_blocking(move || start())
            .await
            .expect("restart");
        *campaign.base.write().unwrap_or_else(|e| e.into_inner()) = node.base.clone();
    }
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_crash_every_acknowledged_webhook_runs_once_with_each_effect_once() {
    campaign(false, 2000, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_crash_with_callers_waiting_every_acknowledged_run_completes_once() {
    campaign(true, 1000, 6).await;
}

/// The campaign, with a `sync` or `async` webhook; `webhooks` and `kills`
/// are the defaults of its settings.
async fn campaign(sync: bool, webhooks: u64, kills: u64) {
    let webhooks = campaign_setting("PATCHBAY_CAMPAIGN_WEBHOOKS", webhooks) as usize;
    let kills = campaign_setting("PATCHBAY_CAMPAIGN_KILLS", kills) as usize;
    let senders = campaign_setting("PATCHBAY_CAMPAIGN_SENDERS", 8).max(1) as usize;
    let seed = campaign_seed();
    println!(
        "crash campaign ({}): {webhooks} webhooks, {kills} kills, {senders} senders, seed {seed} \
         (PATCHBAY_CAMPAIGN_SEED={seed} repeats the kill schedule)",
        if sync { "sync" } else { "async" }
    );
    let began = Instant::now();

    // Upstreams that honour Idempotency-Key and count side effects per key.
    // Their latency keeps calls in flight, so kills land mid-step.
    let payments = MockUpstream::start().await;
    payments.route_fn("POST", "/charges", |req| {
        let order = req.json.as_ref().and_then(|b| b["order_id"].as_str());
        Reply::json(
            201,
            json!({ "id": format!("ch_{}", order.unwrap_or_default()) }),
        )
    });
    payments.idempotent("POST", "/charges");
    let bookings = MockUpstream::start().await;
    bookings.route_fn("PUT", "/bookings/{order}", |req| {
        Reply::json(
            200,
            json!({ "booking": format!("bk_{}", req.param("order").unwrap_or_default()) }),
        )
    });
    bookings.idempotent("PUT", "/bookings/{order}");
    let chat = MockUpstream::start().await;
    chat.route("POST", "/messages", Reply::json(200, json!({ "ok": true })));
    chat.idempotent("POST", "/messages");
    for upstream in [&payments, &bookings, &chat] {
        upstream.set_latency(Duration::from_millis(5));
        upstream.set_recording(false);
    }

    let flow = flow(sync);
    let project = TestProject::new(ROOT, &[("orders", flow.as_str())]);
    let log = project.path().join("patchbay.log");
    let env = vec![
        ("PAYMENTS_URL", payments.url()),
        ("BOOKINGS_URL", bookings.url()),
        ("CHAT_URL", chat.url()),
        ("HOOK_SECRET", SECRET.to_string()),
        ("PATCHBAY_LOG", "warn".to_string()),
    ];
    let start: Arc<dyn Fn() -> Patchbay + Send + Sync> = {
        let command_env: Vec<(&'static str, String)> = env.clone();
        let dir = project.path().to_path_buf();
        let log = log.clone();
        Arc::new(move || Patchbay::spawn(patchbay_run(&dir, &command_env), &log))
    };
    let node = start();

    let campaign = Arc::new(Campaign {
        base: RwLock::new(node.base.clone()),
        acknowledged: watch::Sender::new(0),
        resent: Default::default(),
        next: Default::default(),
        webhooks,
    });
    let senders: Vec<_> = (0..senders)
        .map(|_| tokio::spawn(sender(Arc::clone(&campaign))))
        .collect();
    let killer = tokio::spawn(killer(
        Arc::clone(&campaign),
        node,
        Arc::clone(&start),
        kills,
        seed,
    ));
    let mut acknowledged = Vec::with_capacity(webhooks);
    for sender in senders {
        acknowledged.extend(sender.await.expect("a sender failed"));
    }
    let node = killer.await.expect("the killer failed");
    let sent_for = began.elapsed();

    // The node restarted after the last kill drains the queue: runs cut off
    // by a kill resume once their lease has expired.
    let drained = drains_within(&node.base, Duration::from_secs(120)).await;
    let drained_after = began.elapsed();
    let status = node.terminate();
    assert!(
        drained,
        "runs still queued or running two minutes after the last delivery"
    );
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");

    let runs = stored_runs(&project).await;
    let acknowledged: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(
        acknowledged.len(),
        webhooks,
        "every delivery was acknowledged once"
    );

    // Exactly one run per acknowledged delivery, and no other run.
    let mut by_delivery: HashMap<String, usize> = HashMap::new();
    for run in &runs {
        let key = run
            .dedupe_key
            .clone()
            .expect("webhook runs carry a dedupe key");
        let id = key
            .strip_prefix("webhook:orders:")
            .unwrap_or_else(|| panic!("unexpected dedupe key {key}"))
            .to_string();
        *by_delivery.entry(id).or_default() += 1;
    }
    for id in &acknowledged {
        assert_eq!(
            by_delivery.get(id).copied().unwrap_or(0),
            1,
            "delivery {id} was acknowledged, so it has exactly one run"
        );
    }
    assert_eq!(
        runs.len(),
        acknowledged.len(),
        "no run without an acknowledged delivery"
    );

    // Every run succeeded; none is stuck.
    assert_all_succeeded(&runs);

    // Every step's side effect reached its upstream exactly once.
    let mut wrong = Vec::new();
    for run in &runs {
        let delivery = &run.dedupe_key.as_deref().unwrap_or_default()["webhook:orders:".len()..];
        for (upstream, key) in [
            (&payments, format!("{}:charge", run.id)),
            (&bookings, format!("book-{delivery}")),
            (&chat, format!("{}:notify", run.id)),
        ] {
            let applied = upstream.side_effects(&key);
            if applied != 1 {
                wrong.push(format!("{key}: {applied}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} side effect(s) not applied exactly once, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let effects =
        payments.side_effects_total() + bookings.side_effects_total() + chat.side_effects_total();
    assert_eq!(effects, runs.len() * STEPS, "side effects = runs × steps");

    let integrity = if crate::support::sqlite_only("PRAGMA integrity_check") {
        "not checked (PostgreSQL)".to_string()
    } else {
        integrity_check(&store_file(&project)).await
    };
    assert!(
        integrity == "ok" || crate::support::on_postgres(),
        "PRAGMA integrity_check: {integrity}"
    );
    let panics = panics_in_log(&log);
    assert!(panics.is_empty(), "the process panicked: {panics:?}");

    let resumed = runs.iter().filter(|run| run.attempts > 1).count();
    let replays = payments.replays() + bookings.replays() + chat.replays();
    let requests = payments.request_count() + bookings.request_count() + chat.request_count();
    println!(
        "crash campaign summary: webhooks sent {webhooks}, acknowledged {}, deliveries resent {}, \
         kills {kills}, runs {} (all succeeded, {resumed} claimed more than once), \
         side effects {effects} (= runs × {STEPS}), upstream requests {requests} \
         ({replays} answered from the idempotency store), integrity {integrity}, \
         sending {:.1} s, drained at {:.1} s, total {:.1} s, seed {seed}",
        acknowledged.len(),
        campaign.resent.load(std::sync::atomic::Ordering::SeqCst),
        runs.len(),
        sent_for.as_secs_f64(),
        drained_after.as_secs_f64(),
        began.elapsed().as_secs_f64(),
    );
}
