//! `patchbay spec diff OLD NEW [--project DIR]`: what changed between two
//! versions of an API description, from the point of view of a project
//! that calls the API, and which of its flows and steps each change
//! touches.
//!
//! The diff is `patchbay_contract::diff`; the project's uses of the spec
//! are recorded by `patchbay check`'s compiler
//! (`patchbay_engine::step::ContractUse`) and matched to the changes by
//! `patchbay_engine::impact`. Output is text (default), JSON or Markdown
//! (for a pull request comment). Exit code 1 when a breaking change
//! touches the project (without `--project`: when there is any breaking
//! change), 0 otherwise; a document or project that cannot be read is an
//! error (exit 1, `error: ...` on standard error and nothing on standard
//! output), as for every command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use patchbay_contract::{Change, Contract, Severity, diff};
use patchbay_engine::impact::{Impact, impact};
use patchbay_engine::step::ContractUse;

use crate::Outcome;
use crate::node::Prepared;

#[derive(Debug, clap::Subcommand)]
pub enum SpecCommand {
    /// Breaking changes between two versions of an OpenAPI description,
    /// mapped to the flows of a project.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The version in use (the file a connector's `spec` names, with
    /// `--project`).
    pub old: PathBuf,
    /// The new version.
    pub new: PathBuf,
    /// Map each change to the flows and steps of this project that use it.
    #[arg(long)]
    pub project: Option<PathBuf>,
    /// `text`, `json` or `markdown`.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown"])]
    pub format: String,
}

pub async fn execute(command: SpecCommand) -> anyhow::Result<Outcome> {
    match command {
        SpecCommand::Diff(args) => diff_command(args).await,
    }
}

async fn diff_command(args: DiffArgs) -> anyhow::Result<Outcome> {
    let old = Contract::load(&args.old)?;
    let new = Contract::load(&args.new)?;
    let changes = diff(&old, &new);
    let uses = match &args.project {
        Some(dir) => Some(project_uses(dir, &args.old).await?),
        None => None,
    };
    let impacts = impact(&changes, uses.as_deref().unwrap_or_default());
    let report = match args.format.as_str() {
        "json" => json(&impacts, uses.is_some())?,
        "markdown" => markdown(&impacts, uses.is_some()),
        _ => text(&impacts, uses.is_some()),
    };
    crate::out!("{report}");
    let breaking = impacts.iter().any(|found| {
        found.change.severity == Severity::Breaking && (uses.is_none() || !found.uses.is_empty())
    });
    Ok(if breaking {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

/// Where the project in `dir` uses the spec in `old`: the uses of every
/// connector whose `spec` is that file.
async fn project_uses(dir: &Path, old: &Path) -> anyhow::Result<Vec<ContractUse>> {
    let env = AnyValue(crate::secrets::project_env(dir).await?);
    let prepared = Prepared::load(dir, &env).map_err(|report| {
        anyhow::anyhow!("cannot load the project in {}:\n{report}", dir.display())
    })?;
    let project = &prepared.build.project;
    let wanted = old
        .canonicalize()
        .with_context(|| format!("cannot read {}", old.display()))?;
    let connectors: Vec<&String> = project
        .config
        .connectors
        .iter()
        .filter(|(_, config)| {
            config.spec.as_ref().is_some_and(|spec| {
                project
                    .dir
                    .join(&spec.value)
                    .canonicalize()
                    .is_ok_and(|path| path == wanted)
            })
        })
        .map(|(name, _)| name)
        .collect();
    if connectors.is_empty() {
        anyhow::bail!(
            "no connector of the project in {} has `spec: {}`",
            dir.display(),
            old.display()
        );
    }
    Ok(prepared
        .build
        .plan
        .contract_uses
        .iter()
        .filter(|use_| connectors.contains(&&use_.connector))
        .cloned()
        .collect())
}

/// The project's variables and secrets where set, and a placeholder for any
/// other: the mapping reads the project's flows and contracts, never its
/// credentials, so it runs where they are not set (a pull request's CI). The
/// placeholder is a URL, since a connector's `url` is often a variable.
struct AnyValue<E>(E);

impl<E: patchbay_config::Env> patchbay_config::Env for AnyValue<E> {
    fn var(&self, name: &str) -> Option<String> {
        Some(
            self.0
                .var(name)
                .unwrap_or_else(|| "http://unset.invalid".to_string()),
        )
    }

    fn secret(&self, name: &str) -> Option<String> {
        Some(
            self.0
                .secret(name)
                .unwrap_or_else(|| "http://unset.invalid".to_string()),
        )
    }
}

fn severity(change: &Change) -> &'static str {
    match change.severity {
        Severity::Breaking => "breaking",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn located(use_: &ContractUse) -> String {
    format!("{}:{}", use_.file.display(), use_.line)
}

fn describe_use(use_: &ContractUse) -> String {
    let what = match &use_.field {
        Some(_) => format!("reads `{}`", use_.shown),
        None => format!("`{}`", use_.shown),
    };
    format!(
        "flow `{}` {}, {what} ({})",
        use_.flow,
        use_.step,
        located(use_)
    )
}

fn where_in(change: &Change) -> String {
    let mut parts = Vec::new();
    if let Some(old) = &change.old {
        parts.push(format!("old {}#{}", old.file, old.pointer));
    }
    if let Some(new) = &change.new {
        parts.push(format!("new {}#{}", new.file, new.pointer));
    }
    parts.join(", ")
}

fn text(impacts: &[Impact<'_>], mapped: bool) -> String {
    let mut out = String::new();
    if impacts.is_empty() {
        out.push_str("no changes\n");
        return out;
    }
    let (touching, untouched): (Vec<_>, Vec<_>) = impacts
        .iter()
        .partition(|found| !mapped || !found.uses.is_empty());
    let line = |out: &mut String, found: &Impact<'_>| {
        let change = found.change;
        let _ = writeln!(
            out,
            "{:<9} {}  {}: {}",
            severity(change),
            change.rule,
            change.operation.as_deref().unwrap_or("(document)"),
            change.message
        );
        let _ = writeln!(out, "          {}", where_in(change));
        for use_ in &found.uses {
            let _ = writeln!(out, "          used by {}", describe_use(use_));
        }
    };
    for found in &touching {
        line(&mut out, found);
    }
    if mapped && !untouched.is_empty() {
        let _ = writeln!(out, "\nChanges that touch nothing this project uses:");
        for found in &untouched {
            line(&mut out, found);
        }
    }
    let breaking = touching
        .iter()
        .filter(|found| found.change.severity == Severity::Breaking)
        .count();
    let _ = writeln!(
        out,
        "\n{} change(s); {breaking} breaking{}",
        impacts.len(),
        if mapped {
            " change(s) touch the project"
        } else {
            ""
        }
    );
    out
}

fn json(impacts: &[Impact<'_>], mapped: bool) -> anyhow::Result<String> {
    let (touching, untouched): (Vec<_>, Vec<_>) = impacts
        .iter()
        .partition(|found| !mapped || !found.uses.is_empty());
    let document = if mapped {
        serde_json::json!({ "touching": touching, "untouched": untouched })
    } else {
        serde_json::json!({ "changes": touching })
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&document)?))
}

fn markdown(impacts: &[Impact<'_>], mapped: bool) -> String {
    let mut out = String::from("### API changes\n\n");
    if impacts.is_empty() {
        out.push_str("No changes.\n");
        return out;
    }
    out.push_str("| severity | rule | operation | change | used by |\n|---|---|---|---|---|\n");
    let cell = |text: &str| text.replace('|', "\\|");
    for found in impacts {
        let change = found.change;
        let used: Vec<String> = found
            .uses
            .iter()
            .map(|use_| cell(&describe_use(use_)))
            .collect();
        let used = if used.is_empty() {
            if mapped {
                "—".to_string()
            } else {
                String::new()
            }
        } else {
            used.join("<br>")
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {} | {} |",
            severity(change),
            change.rule,
            cell(change.operation.as_deref().unwrap_or("(document)")),
            cell(&change.message),
            used
        );
    }
    out
}
