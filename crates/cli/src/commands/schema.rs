//! `patchbay schema`: the configuration's JSON Schema.

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the schema of a flow file (`flows/NAME.yaml`) instead of `patchbay.yaml`.
    #[arg(long)]
    pub flow: bool,
}

pub fn execute(args: Args) -> anyhow::Result<Outcome> {
    let schema = if args.flow {
        patchbay_config::flow_schema()
    } else {
        patchbay_config::project_schema()
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Outcome::Success)
}
