//! `patchbay run DIR`: serve a project until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use patchbay_config::ProcessEnv;
use patchbay_engine::Roles;
use tracing::info;

use crate::Outcome;
use crate::node::{Node, NodeOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address to listen on (overrides `server.listen`), e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Do not execute runs on this node (it still accepts events).
    #[arg(long)]
    pub no_workers: bool,
    /// Do not fire schedules on this node.
    #[arg(long)]
    pub no_scheduler: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let env = ProcessEnv;
    let (project, plan) = match super::load_checked(&args.dir, &env) {
        Ok(loaded) => loaded,
        Err(report) => {
            eprintln!("{report}");
            eprintln!(
                "not started: fix the configuration first (`patchbay check {}`)",
                args.dir.display()
            );
            return Ok(Outcome::Failure);
        }
    };
    let roles = Roles {
        workers: !args.no_workers,
        scheduler: !args.no_scheduler,
    };
    let node = Node::start(
        &project,
        plan,
        &env,
        NodeOptions {
            listen: args.listen,
            roles,
        },
    )
    .await?;
    info!(address = %node.address, store = %project.store_path().display(), "listening");
    // Printed on stdout too, so scripts (and tests) can read the bound port.
    println!("patchbay listening on http://{}", node.address);
    wait_for_signal().await;
    info!("shutting down");
    node.stop().await?;
    info!("stopped");
    Ok(Outcome::Success)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
