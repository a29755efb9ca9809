//! Running one flow test: fixture servers take the place of every
//! connector's host, the project is built as `run` builds it (the same
//! load, validation and compile), the real engine runs the flow on a real
//! SQLite store in a temporary folder, and what happened is compared with
//! the test's expectations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_config::{
    AllowPrivate, AuthConfig, Env, HumanDuration, Located, MapEnv, Project, interpolate,
    suggest_closest,
};
use patchbay_engine::contracts::FixtureVerdict;
use patchbay_engine::{Build, Engine, EngineOptions, Event, Roles};
use patchbay_store::{JournalEntry, Run, RunFilter, RunStatus, SqliteOptions, SqliteStore, Store};
use patchbay_testkit::RecordedRequest;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::clock::SkippingClock;
use crate::error::FlowTestError;
use crate::file::{LoadedTest, TestFile};
use crate::fixture::{self, FixtureServer};

/// How long a test's run may take in wall time unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often idle workers look for due runs in a test: skipped time must
/// be noticed quickly.
const POLL: Duration = Duration::from_millis(10);

/// The result of one test.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub name: String,
    pub path: std::path::PathBuf,
    pub description: Option<String>,
    pub duration: Duration,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Passed,
    /// Expectations that did not hold.
    Failed(Vec<Failure>),
    /// The test could not be run (a broken file, a project that does not build).
    Error(String),
}

/// One expectation that did not hold.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Which part of the test (`expect.steps.charge.output`).
    pub what: String,
    /// Its line in the test file (0: the file as a whole).
    pub line: u64,
    /// What differs, one line each.
    pub details: Vec<String>,
}

impl Failure {
    pub(crate) fn new(what: impl Into<String>, line: u64, details: Vec<String>) -> Failure {
        Failure {
            what: what.into(),
            line,
            details,
        }
    }
}

/// The project's variables as a test sees them: the test's `env:`, and
/// `test-NAME` for any other, so tests never read the machine's
/// environment or store (and never send a real credential anywhere).
struct TestEnv<'a>(&'a BTreeMap<String, String>);

impl Env for TestEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        Some(
            self.0
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("test-{name}")),
        )
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.var(name)
    }
}

/// An environment that reads as empty whatever the inner one does not give.
struct EmptyUnlessKnown<'a>(&'a dyn Env);

impl Env for EmptyUnlessKnown<'_> {
    fn var(&self, name: &str) -> Option<String> {
        Some(self.0.var(name).unwrap_or_default())
    }

    fn secret(&self, name: &str) -> Option<String> {
        Some(self.0.secret(name).unwrap_or_default())
    }
}

/// Upstream URLs per connector, for [`point_connectors`].
pub(crate) type Upstreams = BTreeMap<String, String>;

/// Points each connector at its stand-in (a fixture server or a recording
/// proxy) and lets it reach loopback. The path written in its URL is kept,
/// with the variables `known` does not give read as empty: `url:
/// ${env:CRM_URL}/v2` keeps `/v2` whether or not the test sets `CRM_URL`,
/// so fixtures and recordings see the same paths. An OAuth 2.0 token
/// endpoint goes to the same stand-in, its path kept likewise.
pub(crate) fn point_connectors(project: &mut Project, upstreams: &Upstreams, known: &dyn Env) {
    let known = EmptyUnlessKnown(known);
    let path_of = |written: &str| -> String {
        let resolved = interpolate(written, &known).unwrap_or_default();
        let path = if resolved.starts_with('/') {
            resolved
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            url::Url::parse(&resolved)
                .map(|url| url.path().to_string())
                .unwrap_or_default()
        };
        path.trim_end_matches('/').to_string()
    };
    for (name, connector) in &mut project.config.connectors {
        let Some(base) = upstreams.get(name) else {
            continue;
        };
        let config = &mut connector.value;
        config.url.value = format!("{base}{}", path_of(&config.url));
        config.dangerous_allow_private.value = AllowPrivate::All(true);
        if let Some(auth) = &mut config.auth
            && let AuthConfig::OAuth2(oauth) = &mut auth.value
        {
            oauth.token_url = format!("{base}{}", path_of(&oauth.token_url));
        }
    }
    project.config.engine.poll_interval = HumanDuration(POLL);
}

/// The names of the project's connectors, read without building it.
pub fn connector_names(project_dir: &Path) -> Result<Vec<String>, FlowTestError> {
    let no_values = BTreeMap::new();
    let (project, _) =
        Project::load_partial(project_dir, &TestEnv(&no_values)).map_err(FlowTestError::Project)?;
    Ok(project.config.connectors.keys().cloned().collect())
}

/// Runs `test` of the project in `project_dir`.
pub async fn run_test(project_dir: &Path, connectors: &[String], test: &LoadedTest) -> TestResult {
    let started = Instant::now();
    let outcome = match execute(project_dir, connectors, &test.test).await {
        Ok(failures) if failures.is_empty() => Outcome::Passed,
        Ok(failures) => Outcome::Failed(failures),
        Err(e) => Outcome::Error(e.to_string()),
    };
    TestResult {
        name: test.name.clone(),
        path: test.path.clone(),
        description: test.test.description.clone(),
        duration: started.elapsed(),
        outcome,
    }
}

async fn execute(
    project_dir: &Path,
    connectors: &[String],
    test: &TestFile,
) -> Result<Vec<Failure>, FlowTestError> {
    let mut failures = Vec::new();
    for name in test.upstreams.keys() {
        if !connectors.contains(name) {
            let hint = suggest_closest(name, connectors.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            failures.push(Failure::new(
                format!("upstreams.{name}"),
                0,
                vec![format!("the project has no connector `{name}`{hint}")],
            ));
        }
    }
    let no_fixtures = Vec::new();
    let mut servers = BTreeMap::new();
    for name in connectors {
        let fixtures = test.upstreams.get(name).unwrap_or(&no_fixtures);
        servers.insert(name.clone(), FixtureServer::start(fixtures).await?);
    }
    let upstreams: Upstreams = servers
        .iter()
        .map(|(name, server)| (name.clone(), server.url()))
        .collect();
    let env = TestEnv(&test.env);
    let build = Build::load_adjusted(project_dir, &env, |project| {
        point_connectors(project, &upstreams, &MapEnv::new(test.env.clone()));
    })
    .map_err(FlowTestError::Project)?;

    check_fixtures(&build, test, &mut failures);
    let flow = &test.flow;
    if !build.plan.flows.contains_key(&flow.value) {
        let hint = suggest_closest(&flow.value, build.plan.flows.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        failures.push(Failure::new(
            "flow",
            flow.line,
            vec![format!("the project has no flow `{}`{hint}", flow.value)],
        ));
        return Ok(failures);
    }
    let (run, journal, state, timeout) = run_once(build, test).await?;
    let happened = Happened {
        journal,
        state,
        requests: fixture::requests_by_connector(&servers),
        timeout,
        run,
    };
    for (name, server) in &servers {
        let unmatched = server.unmatched();
        if !unmatched.is_empty() {
            failures.push(Failure::new(
                format!("upstreams.{name}"),
                0,
                unmatched
                    .iter()
                    .map(|r| format!("no fixture matches {r} (answered 404)"))
                    .collect(),
            ));
        }
    }
    crate::expect::compare(test, &happened, &mut failures);
    Ok(failures)
}

/// Runs the test's event through `build`'s flow (which must exist) on a
/// fresh store, to its end or the test's timeout: the run as it ended,
/// its journal, the flow's state after it, and the timeout applied.
pub(crate) async fn run_once(
    build: Build,
    test: &TestFile,
) -> Result<(Run, Vec<JournalEntry>, Value, Duration), FlowTestError> {
    let flow = &test.flow;
    let trigger = build
        .plan
        .flows
        .get(&flow.value)
        .map_or("manual", |plan| plan.trigger.kind());

    let dir = tempfile::tempdir().map_err(FlowTestError::TempDir)?;
    let clock = Arc::new(SkippingClock::default());
    let mut options = SqliteOptions::new(dir.path().join("patchbay.db"));
    options.clock = clock.clone();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(options).await?);
    if let Some(state) = &test.state {
        store.put_flow_state(&flow.value, state).await?;
    }
    let shutdown = CancellationToken::new();
    let (engine, tasks) = Engine::start(
        build,
        Arc::clone(&store),
        EngineOptions {
            roles: Roles {
                workers: true,
                scheduler: false,
                alerts: false,
            },
            secrets: None,
            reload: None,
            clock: clock.clone(),
        },
        shutdown.clone(),
    )?;
    let headers: serde_json::Map<String, Value> = test
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .collect();
    let triggered = engine
        .trigger(Event {
            flow: flow.value.clone(),
            trigger,
            input: test.input.clone().unwrap_or_else(|| json!({})),
            headers: Value::Object(headers),
            dedupe_key: None,
        })
        .await;
    let timeout = test.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    let finished = match triggered {
        Ok(outcome) => wait(store.as_ref(), &clock, outcome.run_id(), timeout).await,
        Err(e) => Err(FlowTestError::Engine(e)),
    };
    shutdown.cancel();
    tasks.stopped().await;
    let run = finished?;
    let journal = store.journal(run.id).await?;
    let state = store.flow_state(&flow.value).await?;
    Ok((run, journal, state, timeout))
}

/// What a test's run did, for the expectations.
pub(crate) struct Happened {
    pub run: Run,
    pub journal: Vec<JournalEntry>,
    pub state: Value,
    pub requests: BTreeMap<String, Vec<RecordedRequest>>,
    pub timeout: Duration,
}

/// Waits for the run to end, moving the clock to the next due time
/// whenever every run of the test waits for one (a `wait`, a run retry, a
/// sub-flow's parent): nothing else could happen before it.
async fn wait(
    store: &dyn Store,
    clock: &SkippingClock,
    id: patchbay_store::RunId,
    timeout: Duration,
) -> Result<Run, FlowTestError> {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(run) = store.run(id).await? else {
            return Err(FlowTestError::Fixture(format!("run {id} disappeared")));
        };
        if run.status.is_final() || Instant::now() >= deadline {
            return Ok(run);
        }
        let open = store
            .list_runs(&RunFilter {
                limit: 1000,
                ..RunFilter::default()
            })
            .await?;
        let busy = open.iter().any(|r| r.status == RunStatus::Running);
        let next_due = open
            .iter()
            .filter(|r| r.status == RunStatus::Queued)
            .map(|r| r.next_attempt_at)
            .min();
        if !busy && let Some(due) = next_due {
            clock.skip_to(due);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every fixture reply with a JSON body is checked against its connector's
/// contract: a fixture the provider's description no longer allows makes
/// a test that proves nothing.
fn check_fixtures(build: &Build, test: &TestFile, failures: &mut Vec<Failure>) {
    for (connector, fixtures) in &test.upstreams {
        for (index, fixture) in fixtures.iter().enumerate() {
            for (reply_index, reply) in fixture.sequence().iter().enumerate() {
                let (Some(body), None) = (&reply.body, reply.fault) else {
                    continue;
                };
                let what = format!("upstreams.{connector}[{index}]");
                let line = fixture
                    .replies
                    .get(reply_index)
                    .map_or(fixture.line, |r: &Located<_>| r.line);
                let request = &fixture.request;
                let shown = format!("{} {}", request.method.to_ascii_uppercase(), request.path);
                match build.plan.contracts.check_reply(
                    &build.project,
                    connector,
                    &request.method.to_ascii_uppercase(),
                    &request.path,
                    reply.status(),
                    body,
                ) {
                    FixtureVerdict::NoContract | FixtureVerdict::Fits => {}
                    FixtureVerdict::NoOperation => failures.push(Failure::new(
                        what,
                        line,
                        vec![format!(
                            "`{shown}` is not an operation of {connector}'s contract"
                        )],
                    )),
                    FixtureVerdict::Breaks(problems) => failures.push(Failure::new(
                        what,
                        line,
                        std::iter::once(format!(
                            "the {} reply to `{shown}` does not fit {connector}'s contract:",
                            reply.status()
                        ))
                        .chain(problems.into_iter().map(|p| format!("  {p}")))
                        .collect(),
                    )),
                }
            }
        }
    }
}
