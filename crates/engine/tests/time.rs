//! Engine time under tokio's paused clock: durable waits, run-level retries
//! and lease expiry follow the engine's clock, here a [`TokioClock`] shared
//! by the engine and its store, so minutes of engine time take
//! milliseconds.
//!
//! Each test runs real engines on a real SQLite file or, with
//! `PATCHBAY_TEST_STORE=postgres`, on a schema of its own in the test
//! PostgreSQL database, with a project loaded from YAML files in a
//! temporary folder; upstreams are mock HTTP servers on loopback sockets.
//!
//! The clock moves only when a test moves it ([`TestClock`]). Left to
//! itself, paused time jumps to the next timer whenever the runtime waits,
//! and waiting for SQLite's threads counts: how far the clock got during a
//! store call would depend on the disk, and sqlx's acquire timeout could
//! fire while a connection opens. So tests skip ahead while the engine has
//! nothing to do (a run waits, a retry or a lease is far off) and let the
//! clock follow real time while it works, then assert on the times the
//! store recorded. The project's lease is long (10 min), so no lease runs
//! out unless a test means it to, and its poll interval short (100 ms),
//! so a run that comes due is claimed within one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_config::MapEnv;
use patchbay_engine::{Build, Clock, Engine, EngineOptions, EngineTasks, Event, Roles, TokioClock};
use patchbay_store::{
    JournalEntry, PgOptions, PgStore, Run, RunFilter, RunId, RunStatus, SqliteOptions, SqliteStore,
    StepStatus, Store,
};
use patchbay_testkit::pg::{TestSchema, on_postgres};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// One worker, so a run that kept its worker while waiting would hold up
/// every other run.
const ENGINE: &str = "engine:\n  workers: 1\n  lease: 10m\n  poll_interval: 100ms\n";

/// Room between a run coming due (or its lease running out) and its next
/// step starting: the poll interval, and the real time the engine takes
/// to claim the run and read its journal.
const SLACK: TimeDelta = TimeDelta::seconds(1);

/// Room between a run coming due and its next step starting when the
/// dispatcher wakes at the due time: the real time the engine takes to
/// claim the run and start it.
const PROMPT: TimeDelta = TimeDelta::milliseconds(250);

/// Tokio's paused clock, moved by the test alone, and the engine's clock
/// that follows it.
struct TestClock {
    clock: Arc<TokioClock>,
    /// Tokio does not auto-advance paused time while a blocking task runs;
    /// this one runs until the sender is dropped with the clock.
    _hold: std::sync::mpsc::Sender<()>,
}

impl TestClock {
    /// Holds auto-advance off; call first in a `start_paused` test.
    fn hold() -> TestClock {
        let (hold, release) = std::sync::mpsc::channel::<()>();
        drop(tokio::task::spawn_blocking(move || {
            let _ = release.recv();
        }));
        TestClock {
            clock: Arc::new(TokioClock::new()),
            _hold: hold,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Waits for `probe` while the clock stands still, giving the engine
    /// real time to work.
    async fn until<T, F, Fut>(&self, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not reached within 30 s of real time"
            );
            real_pause().await;
        }
    }

    /// Waits for `probe` while the clock follows real time.
    async fn running_until<T, F, Fut>(&self, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut last = std::time::Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not reached within 30 s of real time"
            );
            real_pause().await;
            let now = std::time::Instant::now();
            tokio::time::advance(now - last).await;
            last = now;
        }
    }

    /// Jumps to `at` while the engine has nothing to do. The jump is cut in
    /// steps well below sqlx's 30 s acquire timeout, with a moment of real
    /// time between them for the timers each step fires (polls, samples).
    async fn skip_to(&self, at: DateTime<Utc>) {
        const STEP: TimeDelta = TimeDelta::seconds(10);
        loop {
            let left = at - self.now();
            if left <= TimeDelta::zero() {
                return;
            }
            tokio::time::advance(left.min(STEP).to_std().unwrap()).await;
            real_pause().await;
        }
    }
}

/// A moment of real time, for the engine's tasks and SQLite's threads.
async fn real_pause() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
        .await
        .unwrap();
}

const WAITS: &str = "\
trigger: { manual: {} }
steps:
  - id: before
    transform: '{n: .n}'
  - id: pause
    wait: 5s
  - id: after
    transform: '{n: .n, done: true}'
";

const QUICK: &str = "\
trigger: { manual: {} }
steps:
  - id: only
    transform: '{quick: true}'
";

/// A project folder: `patchbay.yaml` and one file per flow.
fn project(root: &str, flows: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("patchbay.yaml"), root).unwrap();
    std::fs::create_dir(dir.path().join("flows")).unwrap();
    for (name, text) in flows {
        std::fs::write(dir.path().join("flows").join(format!("{name}.yaml")), text).unwrap();
    }
    dir
}

/// `patchbay.yaml` with connector `up` on `upstream`: one attempt per call
/// and no breaker, so each failure goes straight to the run's retries.
fn root_with(upstream: &MockUpstream) -> String {
    format!(
        "connectors:\n  up:\n    url: {}\n    dangerous_allow_private: true\n    \
         retry: {{ attempts: 1 }}\n    circuit_breaker: off\n{ENGINE}",
        upstream.url()
    )
}

/// Where a test's store lives, for every node started on it: a SQLite file
/// in the project's folder, or a PostgreSQL schema.
enum Place {
    File(PathBuf),
    Schema(TestSchema),
}

impl Place {
    /// A new place for the store of the project in `project`, of the kind
    /// under test.
    fn of(project: &TempDir) -> Place {
        if on_postgres() {
            Place::Schema(TestSchema::new())
        } else {
            Place::File(project.path().join("patchbay.db"))
        }
    }

    /// Opens the store there on `clock`.
    async fn open(&self, clock: &TestClock) -> NodeStore {
        match self {
            Place::File(path) => NodeStore::Sqlite(
                SqliteStore::open(SqliteOptions::new(path).with_clock(clock.clock.clone()))
                    .await
                    .unwrap(),
            ),
            Place::Schema(schema) => NodeStore::Postgres(
                PgStore::open(PgOptions {
                    schema: Some(schema.name().to_string()),
                    max_connections: 4,
                    clock: clock.clock.clone(),
                    ..PgOptions::new(schema.url())
                })
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}")),
            ),
        }
    }
}

/// A node's own handle on the store, which it can close.
enum NodeStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl NodeStore {
    fn shared(&self) -> Arc<dyn Store> {
        match self {
            NodeStore::Sqlite(store) => Arc::new(store.clone()),
            NodeStore::Postgres(store) => Arc::new(store.clone()),
        }
    }

    async fn close(&self) {
        match self {
            NodeStore::Sqlite(store) => store.close().await,
            NodeStore::Postgres(store) => store.close().await,
        }
    }
}

impl std::ops::Deref for NodeStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            NodeStore::Sqlite(store) => store,
            NodeStore::Postgres(store) => store,
        }
    }
}

/// A running engine and the store it was started on.
struct Node {
    engine: Engine,
    tasks: EngineTasks,
    shutdown: CancellationToken,
    store: NodeStore,
}

impl Node {
    /// Loads the project in `dir` and starts an engine on the store at
    /// `place`, both on `clock`.
    async fn start(dir: &Path, place: &Place, clock: &TestClock) -> Node {
        let build = Build::load(dir, &MapEnv::new([])).unwrap_or_else(|report| panic!("{report}"));
        let store = place.open(clock).await;
        let shutdown = CancellationToken::new();
        let options = EngineOptions {
            roles: Roles::default(),
            secrets: None,
            reload: None,
            clock: clock.clock.clone(),
        };
        let (engine, tasks) =
            Engine::start(build, store.shared(), options, shutdown.clone()).unwrap();
        Node {
            engine,
            tasks,
            shutdown,
            store,
        }
    }

    async fn trigger(&self, flow: &str, input: Value) -> RunId {
        self.engine
            .trigger(Event {
                flow: flow.into(),
                trigger: "manual",
                input,
                headers: json!({}),
                dedupe_key: None,
            })
            .await
            .unwrap()
            .run_id()
    }

    async fn run(&self, run: RunId) -> Run {
        self.store
            .run(run)
            .await
            .unwrap()
            .expect("the run is stored")
    }

    /// The run, once it has ended.
    async fn ended(&self, run: RunId) -> Option<Run> {
        Some(self.run(run).await).filter(|found| found.status.is_final())
    }

    /// The run, once it is queued again after `attempts` claims.
    async fn queued_after(&self, run: RunId, attempts: u32) -> Option<Run> {
        Some(self.run(run).await)
            .filter(|found| found.status == RunStatus::Queued && found.attempts == attempts)
    }

    /// The run once it waits on its `pause` step, with the instant it is
    /// due again (as stored, in whole milliseconds) and the step's journal
    /// entry.
    async fn waiting(&self, run: RunId) -> Option<(Run, DateTime<Utc>, JournalEntry)> {
        self.waiting_after(run, 1).await
    }

    /// As [`Node::waiting`], once the run was claimed `attempts` times.
    async fn waiting_after(
        &self,
        run: RunId,
        attempts: u32,
    ) -> Option<(Run, DateTime<Utc>, JournalEntry)> {
        let found = self.queued_after(run, attempts).await?;
        let pause = step(&self.store.journal(run).await.unwrap(), "pause")?;
        let until = pause.output.as_ref()?["until"].as_str()?;
        let until = DateTime::parse_from_rfc3339(until).unwrap().to_utc();
        Some((found, ms(until), pause))
    }

    /// Stops the engine gracefully and closes its store.
    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.stopped().await;
        self.store.close().await;
    }

    /// Stops the engine as a crash would: nothing is drained or released,
    /// and the store's connections are closed, so nothing the engine still
    /// does reaches the file.
    async fn crash(self) {
        self.shutdown.cancel();
        self.store.close().await;
        drop(self.tasks);
    }
}

/// The current entry of step `id`; there must be at most one.
fn step(journal: &[JournalEntry], id: &str) -> Option<JournalEntry> {
    let mut entries = journal.iter().filter(|e| e.step_id == id);
    let entry = entries.next().cloned();
    assert!(entries.next().is_none(), "step `{id}` journalled twice");
    entry
}

/// Which steps were journalled, in order, with their status.
fn steps(journal: &[JournalEntry]) -> Vec<(&str, StepStatus)> {
    journal
        .iter()
        .map(|e| (e.step_id.as_str(), e.status))
        .collect()
}

/// `at` is no earlier than `due`, and within [`SLACK`] after it.
fn assert_soon_after(at: DateTime<Utc>, due: DateTime<Utc>, what: &str) {
    assert!(
        due <= at && at - due <= SLACK,
        "{what} at {at}, due at {due}: {} ms after",
        (at - due).num_milliseconds()
    );
}

/// `time` as the store keeps it, in whole milliseconds.
fn ms(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap()
}

/// Just before `due`: a skip stops there, and the run comes due while the
/// clock follows real time.
fn just_before(due: DateTime<Utc>) -> DateTime<Utc> {
    due - TimeDelta::milliseconds(50)
}

#[tokio::test(start_paused = true)]
async fn a_wait_gives_its_worker_back_and_the_run_goes_on_at_its_due_time() {
    let real = std::time::Instant::now();
    let clock = TestClock::hold();
    let dir = project(ENGINE, &[("waits", WAITS), ("quick", QUICK)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;

    let run = node.trigger("waits", json!({"n": 1})).await;
    let (waiting, until, pause) = clock.until(|| node.waiting(run)).await;
    assert_eq!(until, pause.started_at + TimeDelta::seconds(5));
    assert_eq!(waiting.next_attempt_at, until);
    assert_eq!(waiting.lease_owner, None, "a waiting run holds no lease");
    assert_eq!(waiting.error, None);

    // The node's only worker is free: another run goes through meanwhile.
    let quick = node.trigger("quick", json!({})).await;
    let quick = clock.until(|| node.ended(quick)).await;
    assert_eq!(quick.status, RunStatus::Succeeded, "{:?}", quick.error);

    clock.skip_to(just_before(until)).await;
    assert_eq!(node.run(run).await.status, RunStatus::Queued, "ran early");
    let done = clock.running_until(|| node.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.output, Some(json!({"n": 1, "done": true})));
    assert_eq!(done.attempts, 2, "claimed once before the wait, once after");
    let journal = node.store.journal(run).await.unwrap();
    assert_eq!(
        steps(&journal),
        [
            ("before", StepStatus::Succeeded),
            ("pause", StepStatus::Succeeded),
            ("after", StepStatus::Succeeded),
        ]
    );
    let after = step(&journal, "after").unwrap();
    assert_soon_after(after.started_at, until, "the step after the wait started");
    assert_soon_after(done.finished_at.unwrap(), until, "the run finished");
    node.stop().await;

    // Five seconds of waiting took next to none of real time.
    let real = real.elapsed();
    assert!(real < Duration::from_secs(5), "took {real:?} of real time");
}

#[tokio::test(start_paused = true)]
async fn a_wait_survives_a_crash_and_the_run_finishes_once() {
    let clock = TestClock::hold();
    let upstream = MockUpstream::start().await;
    upstream.route("POST", "/after", Reply::json(200, json!({"ok": true})));
    let flow = "\
trigger: { manual: {} }
steps:
  - id: before
    transform: '{n: .n}'
  - id: pause
    wait: 5s
  - id: after
    call: up POST /after
    body: '{n: .n}'
";
    let dir = project(&root_with(&upstream), &[("waits", flow)]);
    let place = Place::of(&dir);
    let first = Node::start(dir.path(), &place, &clock).await;
    let run = first.trigger("waits", json!({"n": 7})).await;
    let (_, until, _) = clock.until(|| first.waiting(run)).await;
    first.crash().await;

    // The same machine's clock, a new engine on the same file.
    let second = Node::start(dir.path(), &place, &clock).await;
    clock.skip_to(just_before(until)).await;
    let done = clock.running_until(|| second.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    let journal = second.store.journal(run).await.unwrap();
    assert_eq!(
        steps(&journal),
        [
            ("before", StepStatus::Succeeded),
            ("pause", StepStatus::Succeeded),
            ("after", StepStatus::Succeeded),
        ],
        "each step journalled once"
    );
    let calls = upstream.requests_to("POST", "/after");
    assert_eq!(calls.len(), 1, "the step after the wait ran once");
    assert_eq!(calls[0].json, Some(json!({"n": 7})));
    let after = step(&journal, "after").unwrap();
    assert_soon_after(after.started_at, until, "the step after the wait started");
    second.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_off_by_a_crash_resumes_once_its_lease_expires() {
    let clock = TestClock::hold();
    let upstream = MockUpstream::start().await;
    // The first call is still out when the node dies; the repeat is
    // answered at once.
    upstream.script(
        "POST",
        "/slow",
        [Reply::json(200, json!({"late": true})).with_delay(Duration::from_secs(7200))],
    );
    upstream.route("POST", "/slow", Reply::json(200, json!({"ok": true})));
    let flow = "\
trigger: { manual: {} }
steps:
  - id: first
    transform: '{n: .n}'
  - id: slow
    call: up POST /slow
  - id: last
    transform: '$steps.slow.body'
";
    let dir = project(&root_with(&upstream), &[("slow", flow)]);
    let place = Place::of(&dir);
    let first = Node::start(dir.path(), &place, &clock).await;
    let run = first.trigger("slow", json!({"n": 1})).await;
    clock
        .until(|| async { (!upstream.requests_to("POST", "/slow").is_empty()).then_some(()) })
        .await;
    let claimed_at = ms(clock.now());
    first.crash().await;

    let second = Node::start(dir.path(), &place, &clock).await;
    let held = second.run(run).await;
    assert_eq!(
        held.status,
        RunStatus::Running,
        "the crash left the run running"
    );
    let expires = held.lease_expires_at.expect("the dead node's lease");
    assert_eq!(expires, claimed_at + TimeDelta::minutes(10));

    clock.skip_to(just_before(expires)).await;
    assert_eq!(
        second.run(run).await.lease_owner,
        held.lease_owner,
        "taken over while the lease held"
    );
    let done = clock.running_until(|| second.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.output, Some(json!({"ok": true})));
    assert_eq!(done.attempts, 2);
    let journal = second.store.journal(run).await.unwrap();
    assert_eq!(
        steps(&journal),
        [
            ("first", StepStatus::Succeeded),
            ("slow", StepStatus::Succeeded),
            ("last", StepStatus::Succeeded),
        ]
    );
    // Taken over once the lease had run out on the clock; the call cut off
    // by the crash was sent again.
    let slow = step(&journal, "slow").unwrap();
    assert_eq!(slow.attempt, 2);
    assert_soon_after(slow.started_at, expires, "the cut-off step started again");
    assert_eq!(upstream.requests_to("POST", "/slow").len(), 2);
    second.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_is_retried_after_each_delay_of_run_retries() {
    let clock = TestClock::hold();
    let upstream = MockUpstream::start().await;
    upstream.script("GET", "/flaky", [Reply::status(503), Reply::status(503)]);
    upstream.route("GET", "/flaky", Reply::json(200, json!({"ok": true})));
    let flow = "\
trigger: { manual: {} }
run_retries: [1m, 10m]
steps:
  - id: fetch
    call: up GET /flaky
";
    let dir = project(&root_with(&upstream), &[("flaky", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let run = node.trigger("flaky", json!({})).await;

    // Each failed attempt puts the run back, due after the next delay
    // (plus up to 10 % of jitter); it is retried then, and not before.
    let mut due = None;
    for (attempt, delay) in [(1, 60), (2, 600)] {
        if let Some(due) = due {
            clock.skip_to(just_before(due)).await;
        }
        let queued = match due {
            None => clock.until(|| node.queued_after(run, attempt)).await,
            Some(_) => {
                clock
                    .running_until(|| node.queued_after(run, attempt))
                    .await
            }
        };
        assert_eq!(queued.retries, attempt);
        let journal = node.store.journal(run).await.unwrap();
        let failed = journal.last().unwrap();
        assert_eq!(
            (failed.attempt, failed.status),
            (attempt, StepStatus::Failed)
        );
        assert_eq!(failed.error_class.as_deref(), Some("server_error"));
        if let Some(due) = due {
            assert_soon_after(failed.started_at, due, "the retry started");
        }
        let delay = TimeDelta::seconds(delay);
        let waits = queued.next_attempt_at - failed.started_at;
        assert!(
            delay <= waits && waits <= delay + delay / 10 + SLACK,
            "due {} ms after the failed attempt, for a delay of {delay}",
            waits.num_milliseconds()
        );
        due = Some(queued.next_attempt_at);
    }
    let due = due.unwrap();
    clock.skip_to(just_before(due)).await;
    let done = clock.running_until(|| node.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!((done.attempts, done.retries), (3, 2));
    let journal = node.store.journal(run).await.unwrap();
    let last = journal.last().unwrap();
    assert_eq!((last.attempt, last.status), (3, StepStatus::Succeeded));
    assert_soon_after(last.started_at, due, "the last retry started");
    assert_eq!(upstream.requests_to("GET", "/flaky").len(), 3);
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_retry_and_a_wait_start_at_their_due_time_not_at_the_next_poll() {
    let clock = TestClock::hold();
    let upstream = MockUpstream::start().await;
    upstream.script("GET", "/flaky", [Reply::status(503)]);
    upstream.route("GET", "/flaky", Reply::json(200, json!({"ok": true})));
    let flow = "\
trigger: { manual: {} }
run_retries: [2s]
steps:
  - id: fetch
    call: up GET /flaky
  - id: pause
    wait: 3s
  - id: after
    transform: '{done: true}'
";
    // A poll a minute apart: only the due times can start the run in time.
    let root = root_with(&upstream).replace("poll_interval: 100ms", "poll_interval: 1m");
    let dir = project(&root, &[("retried", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let run = node.trigger("retried", json!({})).await;

    // The clock jumps to just before each due time, then follows real
    // time: the dispatcher's alarm fires at the due time, and what the
    // test sees after it is the real time the engine takes to claim and
    // start the run (a few milliseconds; more on a loaded machine, hence
    // the margin). Waiting for the next poll, it would be a minute.
    let queued = clock.until(|| node.queued_after(run, 1)).await;
    let due = queued.next_attempt_at;
    clock.skip_to(just_before(due)).await;
    let (_, until, _) = clock.running_until(|| node.waiting_after(run, 2)).await;
    let journal = node.store.journal(run).await.unwrap();
    let retried = journal
        .iter()
        .find(|e| e.step_id == "fetch" && e.attempt == 2);
    let retried = retried.expect("the retry is journalled");
    let lag = retried.started_at - due;
    assert!(
        TimeDelta::zero() <= lag && lag <= PROMPT,
        "the retry started {} ms after its due time",
        lag.num_milliseconds()
    );
    clock.skip_to(just_before(until)).await;
    let done = clock.running_until(|| node.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    let after = step(&node.store.journal(run).await.unwrap(), "after").unwrap();
    let lag = after.started_at - until;
    assert!(
        TimeDelta::zero() <= lag && lag <= PROMPT,
        "the step after the wait started {} ms after it ended",
        lag.num_milliseconds()
    );
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_claimed_in_the_millisecond_its_wait_ends_goes_on() {
    let clock = TestClock::hold();
    let flow = "\
trigger: { manual: {} }
steps:
  - id: pause
    wait: { until: '.at' }
  - id: after
    transform: '{done: true}'
";
    let dir = project(ENGINE, &[("until", flow), ("quick", QUICK)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    // Half a millisecond into a millisecond: the store keeps the run due
    // from the start of it.
    let at = ms(clock.now()) + TimeDelta::seconds(5) + TimeDelta::microseconds(500);
    let input = json!({"at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)});
    let run = node.trigger("until", input).await;
    let (waiting, _, _) = clock.until(|| node.waiting(run)).await;
    assert_eq!(waiting.next_attempt_at, ms(at));

    // The clock stops at the start of that millisecond. A first run takes
    // the only worker at intake; a second finds none free, so it is queued
    // and wakes the dispatcher, which claims the older, due run first once
    // the worker is back: it must go on rather than park again for the
    // rest of the millisecond.
    clock.skip_to(ms(at)).await;
    node.trigger("quick", json!({})).await;
    node.trigger("quick", json!({})).await;
    let done = clock
        .until(|| async {
            let found = node.run(run).await;
            assert!(
                found.attempts <= 2,
                "parked again when claimed at its due time"
            );
            Some(found).filter(|found| found.status.is_final())
        })
        .await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.finished_at, Some(ms(at)));
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_schedule_fires_at_each_instant_of_its_cron_on_the_engine_clock() {
    let clock = TestClock::hold();
    let flow = "\
trigger: { schedule: '*/10 * * * * *' }
steps:
  - transform: '.scheduled_at'
";
    let dir = project(ENGINE, &[("tick", flow), ("quick", QUICK)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    // A run through the whole engine first: by its end the schedule's
    // task has long set its first timer, which a skip must not outrun.
    let quick = node.trigger("quick", json!({})).await;
    clock.until(|| node.ended(quick)).await;
    let tick = RunFilter {
        flow: Some("tick".into()),
        ..RunFilter::default()
    };
    // The instant of the cron after `after`: the next whole ten seconds.
    let next = |after: DateTime<Utc>| {
        DateTime::from_timestamp((after.timestamp() / 10 + 1) * 10, 0).unwrap()
    };
    let mut due = next(clock.now());
    let mut fired = Vec::new();
    for count in 1..=3 {
        assert_eq!(
            node.store.list_runs(&tick).await.unwrap().len(),
            count - 1,
            "fired before {due}"
        );
        // The task set its next timer once the last firing was committed;
        // a few moments of real time see it through. Tokio's timers tick in
        // whole milliseconds: the skip goes a few past the instant.
        for _ in 0..10 {
            real_pause().await;
        }
        clock.skip_to(due + TimeDelta::milliseconds(5)).await;
        let runs = clock
            .until(|| async {
                let runs = node.store.list_runs(&tick).await.unwrap();
                (runs.len() == count && runs.iter().all(|run| run.status.is_final()))
                    .then_some(runs)
            })
            .await;
        let newest = &runs[0];
        assert_eq!(newest.status, RunStatus::Succeeded, "{:?}", newest.error);
        assert_eq!(newest.trigger, "schedule");
        assert_eq!(newest.input, json!({ "scheduled_at": due.to_rfc3339() }));
        assert_eq!(newest.output, Some(json!(due.to_rfc3339())));
        assert_soon_after(newest.created_at, due, "the firing was committed");
        fired.push(due);
        due = next(due);
    }
    assert_eq!(fired[2] - fired[0], TimeDelta::seconds(20));
    node.stop().await;
}

/// A Standard Webhooks secret, as receivers are given it.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `patchbay.yaml` with connector `hooks`, a receiver's endpoint on
/// `upstream` signed as Standard Webhooks; no breaker, so every attempt is
/// sent.
fn hooks_root(upstream: &MockUpstream) -> String {
    format!(
        "connectors:\n  hooks:\n    url: {}\n    dangerous_allow_private: true\n    \
         circuit_breaker: off\n    sign: {{ scheme: standard_webhooks, secret: {WEBHOOK_SECRET} }}\n{ENGINE}",
        upstream.url()
    )
}

/// The journal entries of step `id`, in order.
fn attempts_of(journal: &[JournalEntry], id: &str) -> Vec<JournalEntry> {
    journal
        .iter()
        .filter(|e| e.step_id == id)
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_delivery_is_attempted_on_the_default_schedule_until_the_receiver_takes_it() {
    let clock = TestClock::hold();
    let receiver = MockUpstream::start().await;
    receiver.script(
        "POST",
        "/hooks",
        [Reply::status(503), Reply::status(500), Reply::status(404)],
    );
    // A receiver that accepts with a body that is not JSON.
    receiver.route("POST", "/hooks", Reply::text(202, "text/plain", "thanks"));
    let flow = "\
trigger: { manual: {} }
steps:
  - id: notify
    deliver: hooks
    path: /hooks
    body: '{type: \"order.paid\", data: .}'
";
    let dir = project(&hooks_root(&receiver), &[("notify", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let run = node.trigger("notify", json!({"order": 7})).await;

    // Immediately, then 5 s, 5 min and 30 min after each failed attempt
    // (plus up to 10 % of jitter), and never before.
    let mut due = None;
    for (attempt, delay, class) in [
        (1, 5, "server_error"),
        (2, 300, "server_error"),
        (3, 1800, "client_error"),
    ] {
        if let Some(due) = due {
            clock.skip_to(just_before(due)).await;
        }
        let queued = match due {
            None => clock.until(|| node.queued_after(run, attempt)).await,
            Some(_) => {
                clock
                    .running_until(|| node.queued_after(run, attempt))
                    .await
            }
        };
        let journal = node.store.journal(run).await.unwrap();
        let failed = journal.last().unwrap();
        assert_eq!(
            (failed.attempt, failed.status),
            (attempt, StepStatus::Failed)
        );
        assert_eq!(failed.error_class.as_deref(), Some(class));
        if let Some(due) = due {
            assert_soon_after(failed.started_at, due, "the attempt started");
        }
        let delay = TimeDelta::seconds(delay);
        let waits = queued.next_attempt_at - failed.started_at;
        assert!(
            delay <= waits && waits <= delay + delay / 10 + SLACK,
            "due {} ms after the failed attempt, for a delay of {delay}",
            waits.num_milliseconds()
        );
        due = Some(queued.next_attempt_at);
    }
    clock.skip_to(just_before(due.unwrap())).await;
    let done = clock.running_until(|| node.ended(run)).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    let output = done.output.unwrap();
    assert_eq!(
        (&output["delivered"], &output["status"]),
        (&json!(true), &json!(202))
    );

    // Every attempt carried one message id and a signature a receiver
    // verifies, over the same body.
    let sent = receiver.requests_to("POST", "/hooks");
    assert_eq!(sent.len(), 4);
    let id = sent[0].headers["webhook-id"].clone();
    assert_eq!(output["message_id"], id.to_str().unwrap());
    let scheme = patchbay_signature::Scheme::standard_webhooks();
    let keys = [scheme.key(WEBHOOK_SECRET).unwrap()];
    for request in &sent {
        assert_eq!(request.headers["webhook-id"], id);
        assert_eq!(request.body, sent[0].body);
        let headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let signed_at = request.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let at = std::time::UNIX_EPOCH + Duration::from_secs(signed_at);
        patchbay_signature::verify(&scheme, &keys, &headers, &request.body, at).unwrap();
    }
    assert_eq!(
        sent[0].json.as_ref().unwrap(),
        &json!({"type": "order.paid", "data": {"order": 7}})
    );
    let journal = node.store.journal(run).await.unwrap();
    assert_eq!(attempts_of(&journal, "notify").len(), 4);
    let endpoint = node.store.endpoint("hooks").await.unwrap().unwrap();
    assert_eq!((endpoint.delivered, endpoint.failed), (1, 3));
    assert_eq!((endpoint.failing_since, endpoint.disabled_at), (None, None));
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_failing_for_its_disable_after_period_is_disabled_until_enabled() {
    let clock = TestClock::hold();
    let receiver = MockUpstream::start().await;
    let accepting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let open = accepting.clone();
    receiver.route_fn("POST", "/hooks", move |_| {
        if open.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::status(204)
        } else {
            Reply::status(503)
        }
    });
    let flow = "\
trigger: { manual: {} }
steps:
  - id: notify
    deliver: hooks
    path: /hooks
    retry_schedule: [1h, 1h, 1h, 1h]
    disable_after: 2h
";
    let dir = project(&hooks_root(&receiver), &[("notify", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let first = node.trigger("notify", json!({"n": 1})).await;

    // Attempts at 0 and about 1 h fail; the one at about 2 h finds the
    // endpoint failing for its whole period and disables it.
    let queued = clock.until(|| node.queued_after(first, 1)).await;
    clock.skip_to(just_before(queued.next_attempt_at)).await;
    let queued = clock.running_until(|| node.queued_after(first, 2)).await;
    clock.skip_to(just_before(queued.next_attempt_at)).await;
    let dead = clock.running_until(|| node.ended(first)).await;
    assert_eq!(dead.status, RunStatus::Dead);
    let error = dead.error.unwrap();
    assert!(
        error.contains("endpoint `hooks` is disabled")
            && error.contains("patchbay endpoints enable hooks"),
        "{error}"
    );
    let journal = node.store.journal(first).await.unwrap();
    let classes: Vec<_> = attempts_of(&journal, "notify")
        .iter()
        .map(|e| e.error_class.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        classes,
        ["server_error", "server_error", "endpoint_disabled"]
    );
    let endpoint = node.store.endpoint("hooks").await.unwrap().unwrap();
    assert!(endpoint.is_disabled());
    assert_eq!(endpoint.failed, 3);
    assert_eq!(receiver.requests_to("POST", "/hooks").len(), 3);

    // A disabled endpoint gets no request: the next delivery dies at once.
    let second = node.trigger("notify", json!({"n": 2})).await;
    let dead = clock.running_until(|| node.ended(second)).await;
    assert_eq!(dead.status, RunStatus::Dead);
    assert_eq!(dead.retries, 0);
    assert_eq!(receiver.requests_to("POST", "/hooks").len(), 3);

    // Enabled again and replayed, both messages are delivered.
    accepting.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(node.store.enable_endpoint("hooks").await.unwrap());
    let replayed = node.store.replay(&[first, second], false).await.unwrap();
    assert_eq!(replayed.len(), 2);
    for run in [first, second] {
        let done = clock.running_until(|| node.ended(run)).await;
        assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    }
    let sent = receiver.requests_to("POST", "/hooks");
    assert_eq!(sent.len(), 5);
    // The redelivery of the first message carries its first id.
    assert!(
        sent[3..]
            .iter()
            .any(|request| request.headers["webhook-id"] == sent[0].headers["webhook-id"])
    );
    let endpoint = node.store.endpoint("hooks").await.unwrap().unwrap();
    assert_eq!((endpoint.delivered, endpoint.disabled_at), (2, None));
    node.stop().await;
}

/// A few milliseconds past the `n`th minute after `start`: the `n`th poll
/// of an `every: 1m` poll started then (tokio's timers tick in whole
/// milliseconds, so a skip to the very instant may stop short of it).
fn poll_time(start: DateTime<Utc>, n: i64) -> DateTime<Utc> {
    start + TimeDelta::minutes(n) + TimeDelta::milliseconds(5)
}

/// Runs of `flow`, with their inputs' `id`s, sorted.
/// Waits until `flow`'s poll state holds `value` at `key`: a poll saves it
/// just after committing its runs, so a test that saw the runs and moves
/// on to the next poll at once could find the older state.
async fn saved_poll_state(clock: &TestClock, node: &Node, flow: &str, key: &str, value: Value) {
    let name = format!("{flow}:poll");
    clock
        .running_until(|| async {
            let state = node.store.flow_state(&name).await.unwrap();
            (state[key] == value).then_some(())
        })
        .await;
}

async fn polled_ids(node: &Node, flow: &str) -> Vec<i64> {
    let filter = RunFilter {
        flow: Some(flow.into()),
        limit: 1000,
        ..RunFilter::default()
    };
    let mut ids: Vec<i64> = node
        .store
        .list_runs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|run| run.input["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(start_paused = true)]
async fn a_poll_starts_one_run_per_item_across_overlapping_pages_and_polls() {
    let clock = TestClock::hold();
    let api = MockUpstream::start().await;
    // A contacts API: items since an `updated` mark, inclusive, oldest
    // first, two per page; a page after the first repeats the item before
    // it, as an offset does while the list shifts under it.
    let contacts = Arc::new(std::sync::Mutex::new(
        (1..=5)
            .map(|n| json!({"id": n, "updated": n}))
            .collect::<Vec<Value>>(),
    ));
    let served = contacts.clone();
    api.route_fn("GET", "/contacts", move |request| {
        let param = |name: &str| {
            request
                .query_pairs
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.parse::<i64>().ok())
        };
        let since = param("since").unwrap_or(0);
        let page = param("page").unwrap_or(1);
        let matching: Vec<Value> = served
            .lock()
            .unwrap()
            .iter()
            .filter(|item| item["updated"].as_i64().unwrap() >= since)
            .cloned()
            .collect();
        let start = usize::try_from((page - 1) * 2).unwrap();
        let start = if page > 1 { start - 1 } else { start };
        let items: Vec<Value> = matching.iter().skip(start).take(2).cloned().collect();
        Reply::json(200, json!({ "items": items }))
    });
    let flow = "\
trigger:
  poll:
    connector: up
    path: /contacts
    every: 1m
    query: '{since: .}'
    cursor: 'map(.updated) | max'
    paginate: { page: { size: 2 }, items: .body.items }
steps:
  - transform: '{id: .id}'
";
    let dir = project(&root_with(&api), &[("contacts", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let start = clock.now();

    // The first poll, at start: every item, from all pages, once.
    clock
        .until(|| async { (polled_ids(&node, "contacts").await.len() == 5).then_some(()) })
        .await;
    assert_eq!(polled_ids(&node, "contacts").await, [1, 2, 3, 4, 5]);
    saved_poll_state(&clock, &node, "contacts", "cursor", json!(5)).await;
    let first_poll = api.requests_to("GET", "/contacts");
    assert!(first_poll.len() >= 3, "{} pages", first_poll.len());

    // Two items added and one changed: the next poll asks since the last
    // mark (item 5 comes back: inclusive) and starts a run for each new
    // item only; the changed one keeps its id, so its key, and makes none.
    {
        let mut list = contacts.lock().unwrap();
        list.push(json!({"id": 6, "updated": 6}));
        list.push(json!({"id": 7, "updated": 7}));
        list[1]["updated"] = json!(8);
    }
    let before = api.request_count();
    clock.skip_to(poll_time(start, 1)).await;
    clock
        .running_until(|| async { (polled_ids(&node, "contacts").await.len() == 7).then_some(()) })
        .await;
    saved_poll_state(&clock, &node, "contacts", "cursor", json!(8)).await;
    let asked = api.requests_to("GET", "/contacts");
    assert_eq!(
        asked[before].query_pairs,
        [
            ("since".to_string(), "5".to_string()),
            ("page".to_string(), "1".to_string())
        ]
    );
    // A third poll finds only what it has seen: no run.
    let before = api.request_count();
    clock.skip_to(poll_time(start, 2)).await;
    clock
        .running_until(|| async { (api.request_count() > before).then_some(()) })
        .await;
    for _ in 0..20 {
        real_pause().await;
    }
    assert_eq!(polled_ids(&node, "contacts").await, [1, 2, 3, 4, 5, 6, 7]);
    let filter = RunFilter {
        flow: Some("contacts".into()),
        ..RunFilter::default()
    };
    let runs = node.store.list_runs(&filter).await.unwrap();
    assert!(runs.iter().all(|run| run.trigger == "poll"));
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_answer_is_a_304_and_costs_no_run() {
    let clock = TestClock::hold();
    let api = MockUpstream::start().await;
    let version = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let current = version.clone();
    api.route_fn("GET", "/orders", move |request| {
        let version = current.load(std::sync::atomic::Ordering::SeqCst);
        let etag = format!("\"v{version}\"");
        let sent = request
            .headers
            .get("if-none-match")
            .and_then(|value| value.to_str().ok());
        if sent == Some(etag.as_str()) {
            return Reply::status(304).with_header("etag", &etag);
        }
        let orders: Vec<Value> = (1..=version * 2).map(|id| json!({"id": id})).collect();
        Reply::json(200, json!({ "orders": orders })).with_header("etag", &etag)
    });
    let flow = "\
trigger:
  poll:
    connector: up
    path: /orders
    every: 1m
    items: .orders
steps:
  - transform: '{id: .id}'
";
    let dir = project(&root_with(&api), &[("orders", flow)]);
    let place = Place::of(&dir);
    let node = Node::start(dir.path(), &place, &clock).await;
    let start = clock.now();
    clock
        .until(|| async { (polled_ids(&node, "orders").await.len() == 2).then_some(()) })
        .await;
    saved_poll_state(&clock, &node, "orders", "etag", json!("\"v1\"")).await;

    // Unchanged: the poller sends the ETag back and gets a 304.
    for minute in 1..=2 {
        clock.skip_to(poll_time(start, minute)).await;
        let minute = usize::try_from(minute).unwrap();
        clock
            .running_until(|| async { (api.request_count() > minute).then_some(()) })
            .await;
    }
    for _ in 0..20 {
        real_pause().await;
    }
    let asked = api.requests_to("GET", "/orders");
    assert_eq!(asked.len(), 3);
    assert!(asked[0].headers.get("if-none-match").is_none());
    for request in &asked[1..] {
        assert_eq!(request.headers["if-none-match"], "\"v1\"");
    }
    assert_eq!(polled_ids(&node, "orders").await, [1, 2]);

    // Changed: a 200 with the new ETag, and runs for the new items only.
    version.store(2, std::sync::atomic::Ordering::SeqCst);
    clock.skip_to(poll_time(start, 3)).await;
    clock
        .running_until(|| async { (polled_ids(&node, "orders").await.len() == 4).then_some(()) })
        .await;
    assert_eq!(polled_ids(&node, "orders").await, [1, 2, 3, 4]);
    // Saved once the runs are committed.
    clock
        .running_until(|| async {
            let state = node.store.flow_state("orders:poll").await.unwrap();
            (state["etag"] == "\"v2\"").then_some(())
        })
        .await;
    node.stop().await;
}
