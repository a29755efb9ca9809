//! `patchbay token new`: a fresh API token and the configuration that
//! accepts it.

use std::io::Write;

use patchbay_config::ApiScope;
use patchbay_server::NewToken;

use crate::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new random API token and the `api.tokens` entry (its SHA-256)
    /// to add to patchbay.yaml. The token is shown once; the configuration
    /// keeps only its hash.
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// What the token may do, comma-separated: read, operate, admin (each
    /// includes the ones before it).
    #[arg(long, value_delimiter = ',', default_value = "read", value_parser = parse_scope)]
    pub scopes: Vec<ApiScope>,
    /// The token's name in the configuration (and in logs).
    #[arg(long, default_value = "client")]
    pub name: String,
}

fn parse_scope(text: &str) -> Result<ApiScope, String> {
    ApiScope::parse(text.trim())
        .ok_or_else(|| format!("unknown scope `{text}` (read, operate, admin)"))
}

pub fn execute(command: TokenCommand) -> anyhow::Result<Outcome> {
    let TokenCommand::New(args) = command;
    let token = NewToken::generate()
        .map_err(|e| anyhow::anyhow!("cannot draw random bytes for a token: {e}"))?;
    let mut scopes = args.scopes;
    scopes.sort();
    scopes.dedup();
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let text = format!(
        "{token}\n\n\
         # Give the token above to the client, once: it is not stored anywhere.\n\
         # Add this to patchbay.yaml (the hash alone cannot be used as a token):\n\
         api:\n  tokens:\n    - name: {name}\n      sha256: {sha256}\n      scopes: [{scopes}]\n",
        token = token.token,
        name = args.name,
        sha256 = token.sha256,
        scopes = scopes.join(", "),
    );
    // A closed pipe (`patchbay token new | head -1`) is no error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Ok(Outcome::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Success),
        Err(e) => Err(e.into()),
    }
}
