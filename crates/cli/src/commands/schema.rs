//! `patchbay schema`: the configuration's JSON Schema.

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the schema of a flow file (`flows/NAME.yaml`) instead of `patchbay.yaml`.
    #[arg(long)]
    pub flow: bool,
}

pub fn execute(args: Args) -> anyhow::Result<Outcome> {
    // The configuration crate describes a step's shared modifiers; the
    // engine adds the keys of its step kinds.
    let schema = patchbay_engine::step::complete_schema(if args.flow {
        patchbay_config::flow_schema()
    } else {
        patchbay_config::project_schema()
    });
    let text = serde_json::to_string_pretty(&schema)?;
    crate::outln!("{text}");
    Ok(Outcome::Success)
}
