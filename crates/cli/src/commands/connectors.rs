//! `patchbay connectors [NAME] --url`: how each upstream is doing on a
//! running node (breaker, rate-limit headroom, recent errors and latency).

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, print, segment};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One connector; all when omitted.
    pub name: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let path = match &args.name {
        Some(name) => format!("/api/v1/connectors/{}", segment(name)),
        None => "/api/v1/connectors".to_string(),
    };
    print(&Remote::new(&args.remote)?.get(&path).await?);
    Ok(Outcome::Success)
}
