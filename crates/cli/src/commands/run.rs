//! `patchbay run DIR`: serve a project until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use patchbay_engine::Roles;
use patchbay_store::Secrets;
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
    let env = crate::secrets::project_env(&args.dir).await?;
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
    let store_path = project.store_path();
    let secrets = Secrets::new(
        node.engine.store().clone(),
        crate::secrets::master_key(&store_path, true)?,
    );
    node.engine.attach_secrets(secrets.clone());
    node.engine.attach_source(
        Arc::new(crate::secrets::FolderSource {
            dir: args.dir.clone(),
            secrets,
        }),
        crate::secrets::digest(env.secrets()),
    );
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
