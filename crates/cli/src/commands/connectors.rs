//! `patchbay connectors [NAME] --url`: how each upstream is doing on a
//! running node (breaker, rate-limit headroom, recent errors and latency).
//! These figures live in the node's memory, so there is no local variant.

use crate::Outcome;
use crate::remote::{Remote, RemoteArgs, segment};
use crate::view::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One connector; all when omitted.
    pub name: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub format: Format,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let remote = Remote::new(&args.remote)?;
    match &args.name {
        Some(name) => {
            let document = remote
                .get(&format!("/api/v1/connectors/{}", segment(name)))
                .await?;
            view::emit(&document, args.format, view::records::connector)?;
        }
        None => {
            let document = remote.get("/api/v1/connectors?limit=500").await?;
            view::emit(&document, args.format, view::records::connectors)?;
        }
    }
    Ok(Outcome::Success)
}
