//! `patchbay test`: a project's flow tests, each a YAML file in its
//! `tests/` folder, run by the real engine against fixture upstreams.
//!
//! - [`file`] is the test format: an event, fixtures per connector, and
//!   expectations;
//! - [`fixture`] serves the fixtures on loopback, one server per connector,
//!   and matches requests;
//! - [`run`] builds the project as `run` does, with every connector
//!   pointed at its fixture server, runs the flow on a real SQLite store
//!   and collects what happened; `expect` compares it with the test;
//! - [`clock`] skips engine time (waits, run retries) while nothing else
//!   can happen, so a flow that waits an hour tests in milliseconds;
//! - [`record`] runs a test against the real upstreams once, through a
//!   recording proxy, and writes its fixtures with credentials masked;
//! - [`report`] prints results as text or JUnit XML.
//!
//! Tests are independent (a store, an engine and fixture servers each),
//! so they run side by side.

#![forbid(unsafe_code)]

pub mod clock;
mod error;
mod expect;
pub mod file;
pub mod fixture;
pub mod record;
pub mod report;
pub mod run;
pub mod subset;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;

pub use error::FlowTestError;
pub use run::{Failure, Outcome, TestResult};

/// Every result of a suite, in file order, and how long it took.
pub struct SuiteResult {
    pub results: Vec<TestResult>,
    pub duration: Duration,
}

impl SuiteResult {
    pub fn passed(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Passed))
    }
}

/// The test files to run: `paths` when given (files or folders), else the
/// project's `tests/` folder.
pub fn select(project_dir: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>, FlowTestError> {
    if paths.is_empty() {
        return file::discover(&project_dir.join("tests"));
    }
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            found.extend(file::discover(path)?);
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

/// Runs the tests in `files` of the project in `project_dir`, at most
/// `parallel` at once.
pub async fn run_suite(
    project_dir: &Path,
    files: &[PathBuf],
    parallel: usize,
) -> Result<SuiteResult, FlowTestError> {
    run_suite_with(project_dir, files, parallel, &|_| {}).await
}

/// [`run_suite`], calling `done` as each test ends (for a progress bar).
pub async fn run_suite_with(
    project_dir: &Path,
    files: &[PathBuf],
    parallel: usize,
    done: &(dyn Fn(&TestResult) + Sync),
) -> Result<SuiteResult, FlowTestError> {
    let started = Instant::now();
    let connectors = run::connector_names(project_dir)?;
    let mut results: Vec<TestResult> = futures::stream::iter(files.iter().cloned())
        .map(|path| {
            let connectors = &connectors;
            async move {
                let shown = shown_path(project_dir, &path);
                let result = match file::read(&path, &shown) {
                    Ok(test) => run::run_test(project_dir, connectors, &test).await,
                    Err(e) => TestResult {
                        name: shown
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        path: shown,
                        description: None,
                        duration: Duration::ZERO,
                        outcome: Outcome::Error(e.to_string()),
                    },
                };
                done(&result);
                result
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    results.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SuiteResult {
        results,
        duration: started.elapsed(),
    })
}

/// `path` relative to the project folder when it is inside it.
fn shown_path(project_dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(project_dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
