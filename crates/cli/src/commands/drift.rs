//! `patchbay drift`: how upstream replies differed from their connectors'
//! contracts — one line per kind of difference, with where, what was
//! expected and what came, how often and when.
//!
//! By default it reads the project's store file directly; with `--url` it
//! asks a running node's API (`GET /api/v1/drift`, read scope, token in
//! `PATCHBAY_TOKEN`).

use crate::Outcome;
use crate::local::{self, Place};
use crate::view::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    place: Place,
    #[command(flatten)]
    format: Format,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let document = match args.place.remote()? {
        Some(remote) => remote.get("/api/v1/drift").await?,
        None => local::drift(&args.place.project).await?,
    };
    view::emit(&document, args.format, view::records::drift)?;
    Ok(Outcome::Success)
}
