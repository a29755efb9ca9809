//! `patchbay demo`: the embedded default. Starts mock upstream APIs on
//! loopback, runs the example project shipped in `examples/demo/` against
//! them with a real SQLite store, drives traffic, and reports what happened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use patchbay_config::{MapEnv, ProcessEnv, Project, Source};
use patchbay_engine::{Plan, Roles};
use patchbay_store::{RunFilter, RunStatus};
use patchbay_testkit::demo::{self, DemoUpstreams};
use serde_json::json;

use crate::Outcome;
use crate::node::{Node, NodeOptions};

/// The example project, compiled into the binary so the demo needs no files.
const PROJECT_FILES: [(&str, &str); 4] = [
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
];

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
    let (project, plan) = embedded_project(&dir, &env)?;

    let node = match Node::start(
        &project,
        plan.clone(),
        &env,
        NodeOptions {
            listen: Some(args.listen),
            roles: Roles::default(),
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
                &project,
                plan,
                &env,
                NodeOptions {
                    listen: Some(any),
                    roles: Roles::default(),
                },
            )
            .await?
        }
        Err(e) => return Err(e),
    };
    let base = format!("http://{}", node.address);
    println!("Patchbay demo");
    println!("  API          {base}/api/v1/runs   (flows: {base}/api/v1/flows)");
    println!("  health       {base}/healthz");
    println!("  webhooks     POST {base}/hooks/shop/orders, POST {base}/hooks/quote (sync)");
    println!("  store        {}", project.store_path().display());
    println!(
        "  upstreams    payments {}  crm {}  erp {}  chat {}",
        upstreams.payments.url(),
        upstreams.crm.url(),
        upstreams.erp.url(),
        upstreams.chat.url()
    );
    match args.duration {
        Some(d) => println!("Sending traffic for {}…", humantime::format_duration(d)),
        None => println!("Sending traffic until Ctrl-C…"),
    }

    let quotes = drive_traffic(&base, args.orders_per_second, args.duration).await;

    // Let queued work drain before reporting, bounded so the demo always ends.
    let store = node.engine.store().clone();
    let drain_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < drain_deadline {
        let counts = store.count_runs().await?;
        if counts.iter().all(|c| c.status.is_final() || c.count == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let counts = store.count_runs().await?;
    let mut table: BTreeMap<String, BTreeMap<RunStatus, u64>> = BTreeMap::new();
    for count in &counts {
        *table
            .entry(count.flow.clone())
            .or_default()
            .entry(count.status)
            .or_default() += count.count;
    }
    println!();
    println!("Runs per flow:");
    println!(
        "  {:<15} {:>9} {:>7} {:>8} {:>7}",
        "FLOW", "SUCCEEDED", "FAILED", "SKIPPED", "QUEUED"
    );
    let mut every_flow_succeeded = true;
    for flow in project.flows.keys() {
        let by_status = table.get(flow).cloned().unwrap_or_default();
        let get = |s: RunStatus| by_status.get(&s).copied().unwrap_or(0);
        let pending = get(RunStatus::Queued) + get(RunStatus::Running);
        println!(
            "  {:<15} {:>9} {:>7} {:>8} {:>7}",
            flow,
            get(RunStatus::Succeeded),
            get(RunStatus::Failed),
            get(RunStatus::Skipped),
            pending
        );
        every_flow_succeeded &= get(RunStatus::Succeeded) > 0;
    }
    println!(
        "Upstreams: {} charges created, {} ERP customers, {} chat messages; {quotes} shipping quotes answered synchronously",
        upstreams.payments.charges_created(),
        upstreams.erp.customer_count(),
        upstreams.chat.message_count()
    );

    let sample = store
        .list_runs(&RunFilter {
            flow: Some("new-order".into()),
            status: Some(RunStatus::Succeeded),
            before: None,
            limit: 1,
        })
        .await?;
    if let Some(run) = sample.first() {
        println!();
        println!("A sample run of new-order ({}), step by step:", run.id);
        for entry in store.journal(run.id).await? {
            let status = entry
                .request
                .as_ref()
                .and_then(|r| r.get("status"))
                .map(|s| s.to_string())
                .unwrap_or_default();
            let target = entry
                .request
                .as_ref()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["method"].as_str().unwrap_or(""),
                        r["url"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            println!(
                "  {:<9} {:<9} {:>4}ms  {} {}",
                entry.step_id,
                entry.status.as_str(),
                entry.duration_ms,
                target,
                status
            );
        }
    }
    node.stop().await?;
    upstreams.shutdown().await;
    drop(temp);
    if every_flow_succeeded {
        Ok(Outcome::Success)
    } else {
        eprintln!("some demo flows had no successful run");
        Ok(Outcome::Failure)
    }
}

fn embedded_project(dir: &std::path::Path, env: &MapEnv) -> anyhow::Result<(Project, Plan)> {
    let mut sources = PROJECT_FILES.iter().map(|(path, text)| Source {
        path: PathBuf::from("examples/demo").join(path),
        text: (*text).to_string(),
    });
    let root = sources
        .next()
        .context("the demo project has no root file")?;
    let invalid = |report| anyhow::anyhow!("the demo project is invalid:\n{report}");
    let project = Project::from_sources(dir, root, sources.collect(), env).map_err(invalid)?;
    let plan = Plan::compile(&project).map_err(invalid)?;
    Ok((project, plan))
}

/// Sends shop orders at a steady rate and a shipping quote every second,
/// until `duration` passes or Ctrl-C. Returns how many quotes were answered.
async fn drive_traffic(base: &str, orders_per_second: u32, duration: Option<Duration>) -> u64 {
    let client = reqwest::Client::new();
    let orders_url = format!("{base}/hooks/shop/orders");
    let quote_url = format!("{base}/hooks/quote");
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
