//! `patchbay audit`: the audit log — who changed what through the
//! management API, from where, with what outcome, and which requests were
//! refused for their token.
//!
//! By default it reads the project's store file directly (beside a running
//! node, or after it stopped); with `--url` it asks a running node's API
//! (`GET /api/v1/audit`, admin scope, token in `PATCHBAY_TOKEN`).

use crate::Outcome;
use crate::local::{self, Place};
use crate::remote::query;
use crate::view::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    place: Place,
    /// At most this many entries, newest first (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Continue after the previous page: its `next_cursor`.
    #[arg(long, visible_alias = "before")]
    cursor: Option<String>,
    #[command(flatten)]
    format: Format,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let document = match args.place.remote()? {
        Some(remote) => {
            let path = format!(
                "/api/v1/audit{}",
                query(&[
                    ("limit", Some(args.limit.to_string())),
                    ("cursor", args.cursor),
                ])
            );
            remote.get(&path).await?
        }
        None => {
            let before = local::cursor(args.cursor.as_deref())?;
            local::audit(&args.place.project, before, args.limit).await?
        }
    };
    view::emit(&document, args.format, view::records::audit)?;
    view::more(&document, "--cursor");
    Ok(Outcome::Success)
}
