//! The `patchbay` command line: wiring of the library crates into commands.
//!
//! This is the only crate that uses `anyhow`; every command returns an
//! [`Outcome`] that `main` turns into an exit code.

mod commands;
mod logging;
mod node;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use node::{Node, NodeOptions};

/// Patchbay: a self-hosted API integration engine.
///
/// An integration project is a folder with `patchbay.yaml` (connectors and
/// settings) and `flows/*.yaml` (one flow per file). Start with
/// `patchbay demo`, then `patchbay check` and `patchbay run` on your own.
#[derive(Debug, Parser)]
#[command(name = "patchbay", version, propagate_version = true)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an integration project: receive webhooks, fire schedules, execute flows.
    Run(commands::run::Args),
    /// Validate a project (configuration, jq expressions) without running it.
    Check(commands::check::Args),
    /// Start one run of a flow by hand and wait for its result.
    Invoke(commands::invoke::Args),
    /// Inspect runs recorded in a project's store.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Print the JSON Schema of the configuration, for editor completion.
    Schema(commands::schema::Args),
    /// Run the built-in demo: mock upstream APIs, example flows and traffic.
    Demo(commands::demo::Args),
}

/// What a command concluded, mapped to the process exit code.
pub enum Outcome {
    Success,
    /// Invalid configuration, or a run that failed.
    Failure,
}

/// Runs the parsed command line.
pub fn main(cli: Cli) -> ExitCode {
    // Both aws-lc-rs and ring can end up in the dependency tree; rustls then
    // refuses to pick one by itself, so choose before any TLS is used. An
    // error only means a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let default_level = match &cli.command {
        Command::Run(_) => "info",
        // The demo prints its own report; per-run log lines (its scripted
        // outages make warnings by the hundred) would drown it.
        Command::Demo(_) => "error",
        Command::Check(_) | Command::Invoke(_) | Command::Runs(_) | Command::Schema(_) => "warn",
    };
    logging::init(&cli.log_format, default_level);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::execute(args).await,
            Command::Check(args) => commands::check::execute(args),
            Command::Invoke(args) => commands::invoke::execute(args).await,
            Command::Runs(command) => commands::runs::execute(command).await,
            Command::Schema(args) => commands::schema::execute(args),
            Command::Demo(args) => commands::demo::execute(args).await,
        }
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
