//! `patchbay test [DIR] [FILES...]`: the project's flow tests (`tests/*.yaml`),
//! each run by the real engine against fixture upstreams; `--record` runs
//! them against the real upstreams once and writes their fixtures.

use std::path::PathBuf;

use anyhow::Context;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (holding patchbay.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Test files or folders to run (default: the project's `tests/`).
    #[arg(long = "only", value_name = "PATH")]
    pub only: Vec<PathBuf>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Most tests run at once (default: twice the CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run each test against the real upstreams (the project's variables
    /// and secrets) and write `NAME.recorded.yaml` beside it, credentials
    /// masked; nothing is compared.
    #[arg(long)]
    pub record: bool,
    /// With `--record`: also mask fields of this name (repeatable).
    #[arg(long, value_name = "FIELD", requires = "record")]
    pub redact: Vec<String>,
}

pub async fn execute(args: Args) -> anyhow::Result<Outcome> {
    let files = patchbay_flowtest::select(&args.dir, &args.only)?;
    if files.is_empty() {
        eprintln!(
            "no flow tests: put them in {} (see docs/testing.md)",
            args.dir.join("tests").display()
        );
        return Ok(Outcome::Failure);
    }
    if args.record {
        return record(&args, &files).await;
    }
    let parallel = args.jobs.unwrap_or_else(|| {
        2 * std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    });
    let progress = crate::progress::bar(files.len() as u64, "flow tests");
    let done = |_: &patchbay_flowtest::TestResult| progress.inc(1);
    let suite = patchbay_flowtest::run_suite_with(&args.dir, &files, parallel, &done).await;
    progress.finish_and_clear();
    let suite = match suite {
        Ok(suite) => suite,
        Err(patchbay_flowtest::FlowTestError::Project(report)) => {
            eprintln!("{report}");
            return Ok(Outcome::Failure);
        }
        Err(e) => return Err(e.into()),
    };
    crate::out!(
        "{}",
        patchbay_flowtest::report::text(&suite.results, suite.duration)
    );
    if let Some(path) = &args.junit {
        let xml = patchbay_flowtest::report::junit(&suite.results, suite.duration)?;
        std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if suite.passed() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

async fn record(args: &Args, files: &[PathBuf]) -> anyhow::Result<Outcome> {
    let env = crate::secrets::project_env(&args.dir).await?;
    for path in files {
        let shown = path
            .strip_prefix(&args.dir)
            .map(PathBuf::from)
            .unwrap_or_else(|_| path.clone());
        let test = patchbay_flowtest::file::read(path, &shown)?;
        let written = patchbay_flowtest::record::record(&args.dir, &test, &env, &args.redact)
            .await
            .with_context(|| format!("recording {}", shown.display()))?;
        crate::outln!("recorded {} → {}", shown.display(), written.display());
    }
    Ok(Outcome::Success)
}
