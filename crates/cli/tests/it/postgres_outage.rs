//! A node whose PostgreSQL goes away under load and comes back: while the
//! database is unreachable, intake answers `503` with `Retry-After` and
//! acknowledges nothing; once it is back, the node reconnects by itself,
//! takes webhooks again, and every acknowledged delivery ends in exactly
//! one succeeded run with one side effect upstream, the runs the outage
//! interrupted included.
//!
//! The database goes away in two ways:
//! - the server itself stops as a crash would (`pg_ctl stop -m immediate`)
//!   and starts again, recovering from its write-ahead log: a PostgreSQL
//!   server of the test's own ([`PgServer`]), so that the shared test
//!   server goes on serving the other tests;
//! - the network between the node and the shared server breaks: the node
//!   reaches it through a [`Link`] the test cuts (every connection closed,
//!   new ones refused).
//!
//! Needs the PostgreSQL of `PATCHBAY_TEST_PG_URL` and the machine's
//! PostgreSQL binaries, and fails without them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, Instant};

use patchbay_store::{PgOptions, PgStore, RunStatus};
use patchbay_testkit::pg::PgServer;
use patchbay_testkit::{Link, MockUpstream, Reply};
use serde_json::json;

use crate::support::{
    Patchbay, Schema, TestProject, all_runs, order_delivery, patchbay_run, pg_url, post_signed,
};

const SECRET: &str = "whsec_b3V0YWdlLXRlc3Qtc2lnbmluZy1rZXktMDAwMQ==";

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
";

/// The database's address, and its URL with the host and port of `link`.
fn through(link: &Link) -> String {
    let mut url = reqwest::Url::parse(&pg_url()).expect("PATCHBAY_TEST_PG_URL is a URL");
    url.set_host(Some("127.0.0.1")).expect("a host");
    url.set_port(Some(link.address().port())).expect("a port");
    url.to_string()
}

fn database_address() -> SocketAddr {
    let url = reqwest::Url::parse(&pg_url()).expect("PATCHBAY_TEST_PG_URL is a URL");
    let host = url.host_str().unwrap_or("127.0.0.1");
    (host, url.port().unwrap_or(5432))
        .to_socket_addrs()
        .expect("resolve the database's host")
        .next()
        .expect("an address for the database's host")
}

/// Sends every delivery of `batch` at once; returns each one's status and
/// `Retry-After`.
async fn send(
    client: &reqwest::Client,
    url: &str,
    batch: impl Iterator<Item = usize>,
) -> Vec<(usize, u16, Option<String>)> {
    let sends = batch.map(|n| async move {
        let (id, body) = order_delivery(n);
        match post_signed(client, url, SECRET, &id, &body).await {
            Ok(answer) => {
                let retry_after = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (n, answer.status().as_u16(), retry_after)
            }
            Err(e) => panic!("delivery {n}: no answer from the node: {e}"),
        }
    });
    futures::future::join_all(sends).await
}

/// How the database goes away, and where the node finds it.
enum Outage {
    /// A server of the test's own, stopped as a crash would.
    Restart { server: PgServer, schema: Schema },
    /// The shared server, out of the node's reach.
    Cut { link: Link, schema: Schema },
}

impl Outage {
    /// The database URL the node is given.
    fn node_url(&self) -> String {
        match self {
            Outage::Restart { server, .. } => server.url(),
            Outage::Cut { link, .. } => through(link),
        }
    }

    fn schema(&self) -> &Schema {
        match self {
            Outage::Restart { schema, .. } | Outage::Cut { schema, .. } => schema,
        }
    }

    fn take_away(&self) {
        match self {
            Outage::Restart { server, .. } => server
                .stop_immediately()
                .expect("stop the test's PostgreSQL server"),
            Outage::Cut { link, .. } => link.cut(),
        }
    }

    fn bring_back(&self) {
        match self {
            Outage::Restart { server, .. } => server
                .start_again()
                .expect("start the test's PostgreSQL server again"),
            Outage::Cut { link, .. } => link.restore(),
        }
    }

    /// The node's store, opened by the test itself (straight to the
    /// server, not through the link).
    async fn open(&self) -> PgStore {
        let url = match self {
            Outage::Restart { server, .. } => server.url(),
            Outage::Cut { schema, .. } => schema.url(),
        };
        PgStore::open(PgOptions {
            schema: Some(self.schema().name()),
            ..PgOptions::new(url)
        })
        .await
        .expect("open the node's store")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_while_postgres_restarts_and_nothing_acknowledged_is_lost() {
    let server = tokio::task::spawn_blocking(PgServer::start)
        .await
        .expect("set up")
        .expect("a PostgreSQL server of the test's own (initdb and pg_ctl)");
    let outage = Outage::Restart {
        server,
        schema: Schema::new(),
    };
    outage.open().await.close().await;
    under_load(outage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_while_postgres_is_out_of_reach_and_nothing_acknowledged_is_lost() {
    let schema = Schema::new();
    // Created (and migrated) directly, before the node depends on the link.
    schema.open().await.close().await;
    let link = Link::start(database_address())
        .await
        .expect("start the link");
    under_load(Outage::Cut { link, schema }).await;
}

/// A node takes webhooks; the database goes away and comes back; every
/// acknowledged delivery ends in one succeeded run, charged once.
async fn under_load(outage: Outage) {
    let payments = MockUpstream::start().await;
    payments.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })).with_delay(Duration::from_millis(300)),
    );
    payments.idempotent("POST", "/charges");

    let root = format!(
        "\
connectors:
  payments:
    url: \"${{env:PAYMENTS_URL}}\"
    dangerous_allow_private: true
engine: {{ lease: 2s, poll_interval: 200ms, run_retries: [500ms, 1s, 2s, 5s, 10s] }}
{store}",
        store = outage.schema().store_yaml()
    );
    let project = TestProject::new(&root, &[("orders", ORDERS_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(
            project.path(),
            &[
                ("PG_URL", outage.node_url()),
                ("PAYMENTS_URL", payments.url()),
                ("HOOK_SECRET", SECRET.to_string()),
            ],
        ),
        &log,
    );
    let url = format!("{}/hooks/orders", node.base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut acknowledged = BTreeSet::new();

    // Before: everything is taken; the upstream is slow, so some runs are
    // mid-call when the database goes.
    for (n, status, _) in send(&client, &url, 0..40).await {
        assert_eq!(status, 202, "delivery {n} before the outage");
        acknowledged.insert(n);
    }

    tokio::task::block_in_place(|| outage.take_away());
    let away = Instant::now();
    let mut refused = Vec::new();
    for (n, status, retry_after) in send(&client, &url, 40..70).await {
        assert_eq!(status, 503, "delivery {n} during the outage");
        assert!(
            retry_after
                .as_deref()
                .is_some_and(|v| v.parse::<u64>().is_ok()),
            "delivery {n}: 503 without a Retry-After in seconds: {retry_after:?}"
        );
        refused.push(n);
    }
    let refusing = away.elapsed();
    println!("30 deliveries refused with 503 in {refusing:?} while the database was away");
    assert!(
        refusing < Duration::from_secs(15),
        "refusals took {refusing:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| outage.bring_back());

    // After: the refused deliveries are sent again, as their senders
    // would, with new ones, until every one is taken.
    let back = Instant::now();
    let mut pending: Vec<usize> = refused.into_iter().chain(70..100).collect();
    while !pending.is_empty() {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "deliveries still refused 30 s after the database came back: {pending:?}"
        );
        let mut still = Vec::new();
        for (n, status, _) in send(&client, &url, pending.iter().copied()).await {
            match status {
                202 => {
                    acknowledged.insert(n);
                }
                503 => still.push(n),
                other => panic!("delivery {n}: status {other} after the outage"),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "intake took webhooks again {:?} after the database came back",
        back.elapsed()
    );

    // Every acknowledged delivery: one run, succeeded, charged once.
    let store = outage.open().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs = all_runs(&store).await;
        let done = runs.iter().filter(|run| run.status.is_final()).count();
        if done == runs.len() && runs.len() >= acknowledged.len() {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} runs finished a minute after the outage",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut by_delivery: BTreeMap<String, Vec<RunStatus>> = BTreeMap::new();
    for run in &runs {
        let key = run.dedupe_key.as_deref().unwrap_or_default();
        let id = key
            .strip_prefix("webhook:orders:")
            .unwrap_or_else(|| panic!("run {} has an unexpected dedupe key {key:?}", run.id));
        by_delivery
            .entry(id.to_string())
            .or_default()
            .push(run.status);
    }
    for n in &acknowledged {
        let (id, _) = order_delivery(*n);
        let statuses = by_delivery.get(&id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            statuses,
            [RunStatus::Succeeded],
            "delivery {id}; runs of {:?}…",
            by_delivery.iter().take(5).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        by_delivery.len(),
        acknowledged.len(),
        "runs of deliveries never acknowledged"
    );
    for run in &runs {
        let key = format!("{}:charge", run.id);
        assert_eq!(payments.side_effects(&key), 1, "charges of run {}", run.id);
    }
    assert_eq!(payments.side_effects_total(), runs.len());
    // The outage caught runs mid-call: they were resumed, by a later claim.
    let resumed = runs.iter().filter(|run| run.attempts > 1).count();
    println!("{resumed} runs interrupted by the outage were resumed");
    assert!(resumed > 0, "no run was caught by the outage");
    store.close().await;
    node.terminate();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("panicked"), "the node panicked:\n{text}");
}
