//! The `patchbay` command line: wiring of the library crates into commands.
//!
//! This is the only crate that uses `anyhow`; every command returns an
//! [`Outcome`] that `main` turns into an exit code.

#![forbid(unsafe_code)]

mod commands;
mod json_log;
mod local;
mod logging;
mod node;
pub mod output;
mod progress;
mod remote;
mod secrets;
mod store_at;
mod telemetry;
mod view;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use node::{Node, NodeOptions, Prepared, ReloadFolder};

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
    /// Run the project's flow tests (`tests/*.yaml`) against fixture upstreams.
    Test(commands::test::Args),
    /// Inspect runs recorded in a project's store.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Flows: list, show as a tree (project or node), trigger a run (`--url`).
    #[command(subcommand)]
    Flows(commands::flows::FlowsCommand),
    /// Dead runs: list (store file or node), replay (`--url`).
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(commands::dead_letters::DeadLettersCommand),
    /// Health of a running node's connectors (`--url`).
    Connectors(commands::connectors::Args),
    /// The configuration: show it (project or node), reload a node's (`--url`).
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Manage the secrets `${secret:NAME}` resolves to (sealed in the store).
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCommand),
    /// Print the JSON Schema of the configuration, for editor completion.
    Schema(commands::schema::Args),
    /// API descriptions: `spec diff OLD NEW` finds the breaking changes
    /// between two versions and the flows they touch.
    #[command(subcommand)]
    Spec(commands::spec::SpecCommand),
    /// The audit log: management API actions and refused tokens, newest
    /// first (store file, or a running node with `--url`).
    Audit(commands::audit::Args),
    /// Contract drift: how upstream replies differed from their connectors'
    /// `spec` (store file, or a running node with `--url`).
    Drift(commands::drift::Args),
    /// Webhook endpoints that `deliver` steps send to: list them (failing,
    /// disabled), enable one again (store file, or a node with `--url`).
    #[command(subcommand)]
    Endpoints(commands::endpoints::EndpointsCommand),
    /// Make management API tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
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
        // Tests fail steps on purpose; the report says what matters.
        Command::Test(_) => "error",
        Command::Check(_)
        | Command::Invoke(_)
        | Command::Runs(_)
        | Command::Secrets(_)
        | Command::Flows(_)
        | Command::DeadLetters(_)
        | Command::Connectors(_)
        | Command::Config(_)
        | Command::Schema(_)
        | Command::Spec(_)
        | Command::Audit(_)
        | Command::Drift(_)
        | Command::Endpoints(_)
        | Command::Token(_) => "warn",
    };
    // Only `run` exports traces: it serves a project for real, and starts
    // logging itself once the project is loaded, since the project's
    // `telemetry` section says where traces go.
    let log_format = cli.log_format;
    let mut log_guard = match &cli.command {
        Command::Run(_) => None,
        _ => Some(logging::init(&log_format, default_level, None)),
    };

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
            Command::Run(args) => {
                let start_logging = |tracing| {
                    log_guard = Some(logging::init(&log_format, default_level, tracing));
                };
                commands::run::execute(args, start_logging).await
            }
            Command::Check(args) => commands::check::execute(args).await,
            Command::Invoke(args) => commands::invoke::execute(args).await,
            Command::Test(args) => commands::test::execute(args).await,
            Command::Runs(command) => commands::runs::execute(command).await,
            Command::Secrets(command) => commands::secrets::execute(command).await,
            Command::Flows(command) => commands::flows::execute(command).await,
            Command::DeadLetters(command) => commands::dead_letters::execute(command).await,
            Command::Connectors(args) => commands::connectors::execute(args).await,
            Command::Config(command) => commands::config::execute(command).await,
            Command::Schema(args) => commands::schema::execute(args),
            Command::Spec(command) => commands::spec::execute(command).await,
            Command::Audit(args) => commands::audit::execute(args).await,
            Command::Drift(args) => commands::drift::execute(args).await,
            Command::Endpoints(command) => commands::endpoints::execute(command).await,
            Command::Token(command) => commands::token::execute(command),
            Command::Demo(args) => commands::demo::execute(args).await,
        }
    });
    drop(runtime);
    if let Some(log_guard) = log_guard {
        log_guard.finish();
    }
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
