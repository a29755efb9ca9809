//! `patchbay run DIR`: serve a project until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use patchbay_engine::Roles;
use tracing::{info, warn};

use crate::Outcome;
use crate::node::{Node, NodeOptions, Prepared, ReloadFolder};
use crate::telemetry::Tracing;

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
    /// When the store's master key is lost: create a new one and delete the
    /// secrets and stored credentials sealed with the old one (they cannot
    /// be opened again). Without this flag the node refuses to start.
    #[arg(long)]
    pub dangerous_new_master_key: bool,
}

/// Serves the project. Logging starts once the project is loaded, through
/// `start_logging`, with the trace export its `telemetry` section asks for.
pub async fn execute(
    args: Args,
    start_logging: impl FnOnce(Option<Tracing>),
) -> anyhow::Result<Outcome> {
    // First, before secrets are resolved: a missing key beside sealed data
    // stops the node here (or, with the flag, that data is deleted). A new
    // key is created only once the project is known to be valid.
    let store_at = crate::secrets::store_at(&args.dir).ok();
    let found_key = match &store_at {
        Some(at) => {
            Some(crate::secrets::existing_node_key(at, args.dangerous_new_master_key).await?)
        }
        // The load below reports what is wrong with the project.
        None => None,
    };
    let env = crate::secrets::project_env(&args.dir).await?;
    let prepared = match Prepared::load(&args.dir, &env) {
        Ok(prepared) => prepared,
        Err(report) => {
            eprintln!("{report}");
            eprintln!(
                "not started: fix the configuration first (`patchbay check {}`)",
                args.dir.display()
            );
            // Logging has not started: what was deleted is said here.
            if let (Some(found), Some(at)) = (&found_key, &store_at) {
                found.tell(at);
            }
            return Ok(Outcome::Failure);
        }
    };
    let project = &prepared.build.project;
    start_logging(Tracing::start(&project.config.telemetry).map_err(anyhow::Error::msg)?);
    if let (Some(found), Some(at)) = (&found_key, &store_at) {
        found.log(at);
    }
    for warning in &prepared.build.warnings {
        warn!(warning = %warning, "configuration warning");
    }
    let store = crate::store_at::StoreAt::of(project, &env)?;
    let master_key = match found_key.and_then(|found| found.key) {
        Some(key) => key,
        None => crate::secrets::node_key(&store).await?,
    };
    let roles = Roles {
        workers: !args.no_workers,
        scheduler: !args.no_scheduler,
        alerts: true,
    };
    // Listening before the address is printed: a supervisor that reads the
    // address and stops the node at once gets a clean stop, not the
    // signal's default action.
    let signals = ShutdownSignals::listen();
    // Listened for before the node serves: a SIGHUP sent as soon as it
    // answers must not be lost (nor, where SIGHUP was inherited ignored,
    // dropped by that disposition).
    let mut hangups = Hangups::listen();
    let node = Node::start(
        prepared,
        &env,
        NodeOptions {
            listen: args.listen,
            roles,
            master_key: Some(master_key),
            reload_from: Some(ReloadFolder {
                dir: args.dir.clone(),
                secrets_digest: crate::secrets::digest(env.secrets()),
            }),
        },
    )
    .await?;
    info!(address = %node.address, store = %store.shown(), "listening");
    // Printed on stdout too, so scripts (and tests) can read the bound port
    // from the first line. One write, and its failure ignored: a reader
    // that took the first line and left must not stop the node.
    let base = format!("http://{}", node.address);
    let _ = std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        format!(
            "patchbay listening on {base}\n  dashboard  {base}/ui\n  API        {base}/api/v1 \
             (reference at {base}/api/docs)\n  metrics    {base}/metrics\n"
        )
        .as_bytes(),
    );
    let stop = signals.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = hangups.next() => reload_on_hangup(&node.engine).await,
        }
    }
    info!("shutting down");
    node.stop().await?;
    info!("stopped");
    Ok(Outcome::Success)
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the moment they are made,
/// so that a signal arriving before [`ShutdownSignals::wait`] is awaited is
/// kept for it rather than killing the process.
pub struct ShutdownSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    pub fn listen() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(interrupt), Ok(terminate)) => Some((interrupt, terminate)),
                _ => None,
            };
            ShutdownSignals { streams }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    /// Resolves on the first SIGINT or SIGTERM since [`ShutdownSignals::listen`].
    pub async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut interrupt, mut terminate)) = self.streams {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP, the usual request to reload a daemon's configuration.
struct Hangups {
    #[cfg(unix)]
    stream: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn listen() -> Hangups {
        Hangups {
            #[cfg(unix)]
            stream: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Resolves on the next SIGHUP; never where there is none.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(stream) = &mut self.stream
            && stream.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Reloads the configuration as `POST /api/v1/config/reload` does, saying
/// in the log what came of it.
async fn reload_on_hangup(engine: &patchbay_engine::Engine) {
    match engine.reload().await {
        Ok(reloaded) if reloaded.changed => info!(
            version = %reloaded.version,
            previous = %reloaded.previous,
            "SIGHUP: configuration reloaded"
        ),
        Ok(reloaded) => info!(version = %reloaded.version, "SIGHUP: configuration unchanged"),
        Err(patchbay_engine::EngineError::InvalidConfig(report)) => {
            for problem in &report.diagnostics {
                tracing::error!(problem = %problem, "SIGHUP: configuration invalid");
            }
            tracing::error!(
                problems = report.diagnostics.len(),
                "SIGHUP: reload refused; the running configuration stays"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: reload failed; the running configuration stays")
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM received from now on.
pub async fn wait_for_signal() {
    ShutdownSignals::listen().wait().await;
}
