//! Shared helpers: temporary projects, nodes on ephemeral ports, polling.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use patchbay::{Node, NodeOptions, Prepared};
use patchbay_config::MapEnv;
use patchbay_engine::Roles;

/// A project folder in a temporary directory.
///
/// With `PATCHBAY_TEST_STORE=postgres`, every project keeps its store in a
/// PostgreSQL schema of its own instead of the SQLite file (see
/// [`on_postgres`]): the whole suite runs against both stores.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    /// The schema keeping the project's store when the suite runs on
    /// PostgreSQL; dropped with the project.
    pub schema: Option<Schema>,
}

impl TestProject {
    /// Writes `patchbay.yaml` and each `(name, yaml)` as `flows/NAME.yaml`.
    pub fn new(root: &str, flows: &[(&str, &str)]) -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        // A project that names its store keeps it; any other follows the
        // suite's store.
        let schema = (on_postgres() && !root.contains("postgres:")).then(Schema::new);
        let root = match &schema {
            Some(schema) => with_store(root, &schema.literal_store_yaml()),
            None => root.to_string(),
        };
        std::fs::write(dir.path().join("patchbay.yaml"), root).expect("write root");
        std::fs::create_dir_all(dir.path().join("flows")).expect("flows dir");
        for (name, text) in flows {
            std::fs::write(dir.path().join("flows").join(format!("{name}.yaml")), text)
                .expect("write flow");
        }
        TestProject { dir, schema }
    }

    /// Opens the project's store, wherever the suite keeps it.
    pub async fn open_store(&self) -> Box<dyn Store> {
        match &self.schema {
            Some(schema) => Box::new(schema.open().await),
            None => Box::new(
                SqliteStore::open(SqliteOptions::new(store_file(self)))
                    .await
                    .expect("open the store"),
            ),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a node (engine + server on 127.0.0.1:0) for this project.
    pub async fn start(&self, env: &MapEnv) -> Node {
        let prepared = Prepared::load(self.path(), env)
            .unwrap_or_else(|report| panic!("invalid test project:\n{report}"));
        Node::start(
            prepared,
            env,
            NodeOptions {
                listen: Some("127.0.0.1:0".parse().expect("address")),
                roles: Roles::default(),
                master_key: None,
                reload_from: None,
            },
        )
        .await
        .expect("node starts")
    }
}

pub fn env(vars: &[(&str, String)]) -> MapEnv {
    MapEnv::new(vars.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

/// Connectors `payments` (`PAY_URL`) and `chat` (`CHAT_URL`), each trying a
/// call twice with a short backoff. `chat` comes last, so a test can add to
/// its settings by appending lines indented by four spaces.
pub const SHOP_CONNECTORS: &str = "\
connectors:
  payments:
    url: \"${env:PAY_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 2, backoff: { min: 10ms, max: 20ms } }
  chat:
    url: \"${env:CHAT_URL}\"
    dangerous_allow_private: true
    retry: { attempts: 2, backoff: { min: 10ms, max: 20ms } }
";

/// A webhook at `/hooks/order` charges the amount through `payments` (a
/// side effect), then tells `chat`.
pub const ORDER_FLOW: &str = "\
trigger: { webhook: { path: /hooks/order } }
steps:
  - id: charge
    call: payments POST /charges
    body: '{amount}'
  - id: notify
    call: chat POST /messages
    body: '{text: \"charged \\($steps.charge.body.id)\"}'
";

/// A webhook at `/hooks/contacts` pushes the event to the `crm` connector.
pub const CONTACTS_FLOW: &str = "\
trigger:
  webhook:
    path: /hooks/contacts
steps:
  - id: push
    call: crm POST /contacts
    body: '.'
";

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The path of the `patchbay` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_patchbay")
}

/// Runs `patchbay ARGS` to the end, without the caller's `RUST_LOG`.
pub fn patchbay(args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("patchbay runs")
}

/// Runs `command` to the end with `stdin` as its standard input, capturing
/// its output.
pub fn output_with_stdin(mut command: std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run patchbay");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    // Closed, so the child sees the end of its input.
    drop(input);
    child.wait_with_output().expect("patchbay exits")
}

/// POSTs `body` as JSON.
pub async fn post_json(url: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// An event starting a run of `flow` by hand with `input`.
pub fn manual_event(flow: &str, input: serde_json::Value) -> patchbay_engine::Event {
    patchbay_engine::Event {
        flow: flow.into(),
        trigger: "manual",
        input,
        headers: serde_json::json!({}),
        dedupe_key: None,
    }
}

/// Starts a run of `flow` by hand and waits up to 30 s for it to end.
pub async fn run_manually(
    node: &Node,
    flow: &str,
    input: serde_json::Value,
) -> patchbay_store::Run {
    let outcome = node
        .engine
        .trigger(manual_event(flow, input))
        .await
        .expect("run committed");
    node.engine
        .wait_for(outcome.run_id(), Duration::from_secs(30))
        .await
        .expect("store readable")
        .expect("run exists")
}

/// POSTs `body` to the webhook at `base` + `path`, expects it accepted
/// (202) and returns the id of the run it created.
pub async fn post_for_run(base: &str, path: &str, body: serde_json::Value) -> String {
    let response = post_json(&format!("{base}{path}"), &body).await;
    assert_eq!(
        response.status().as_u16(),
        202,
        "{path} did not accept the event"
    );
    let answer: serde_json::Value = response.json().await.expect("JSON answer");
    answer["run_id"].as_str().expect("a run id").to_string()
}

/// GETs `url` and reads its body as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("body read")
}

/// GETs `url` and reads its JSON body.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body")
}

// Campaigns: the real binary under kills and injected faults, sized by
// environment variables so CI runs them short and people run them long.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};

use patchbay_store::{
    PgOptions, PgStore, Run, RunFilter, RunStatus, SqliteOptions, SqliteStore, Store,
};

/// The whole number in environment variable `name`, or `default` when unset.
pub fn campaign_setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The seed of a campaign's randomness: `PATCHBAY_CAMPAIGN_SEED`, or one
/// drawn now. Printed by the campaigns so a failure can be replayed.
pub fn campaign_seed() -> u64 {
    match std::env::var("PATCHBAY_CAMPAIGN_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("PATCHBAY_CAMPAIGN_SEED={text:?} is not a whole number")),
        Err(_) => fastrand::u64(..),
    }
}

/// `patchbay run` on the project in `dir`, listening on an ephemeral
/// loopback port, with `env` added to the environment.
pub fn patchbay_run(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(binary());
    command.args(["run", "--listen", "127.0.0.1:0"]).arg(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A running `patchbay` child process and the base URL it serves.
pub struct Patchbay {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Copies the child's stderr into the log; done once the child exits.
    log_copier: Option<std::thread::JoinHandle<()>>,
    /// The file its stderr is appended to.
    log: std::path::PathBuf,
}

/// The last 20 lines of a node's log.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A test that fails half-way leaves no node behind: whatever still runs
/// (paused included) is killed.
impl Drop for Patchbay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Patchbay {
    /// Spawns `command` (a `patchbay run --listen ...`, possibly wrapped),
    /// appends its stderr to `log` and waits for the address it prints.
    ///
    /// The child writes its log into a pipe that this process copies to the
    /// file, so faults injected into the child's own file writes (a file
    /// size limit) reach its store but not its log.
    pub fn spawn(mut command: Command, log: &Path) -> Patchbay {
        let mut log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log file");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start patchbay");
        let mut stderr = child.stderr.take().expect("stderr");
        let log_copier = std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut log_file);
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        // Keep draining stdout, so a later print never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        match (read, line.trim().strip_prefix("patchbay listening on ")) {
            (Ok(_), Some(base)) => Patchbay {
                base: base.to_string(),
                child,
                log_copier: Some(log_copier),
                log: log.to_path_buf(),
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = log_copier.join();
                let tail = log_tail(log);
                panic!("patchbay did not start (first line {line:?}); end of its log:\n{tail}");
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL patchbay");
        self.child.wait().expect("reap patchbay");
        self.flush_log();
    }

    /// SIGTERM, then asserts that the process stopped cleanly (status 0),
    /// quoting the end of its log when it did not.
    pub fn stop_cleanly(self) {
        let log = self.log.clone();
        let status = self.terminate();
        assert!(
            status.success(),
            "SIGTERM did not stop patchbay cleanly ({status}); end of its log:\n{}",
            log_tail(&log)
        );
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        let status = self.child.wait().expect("reap patchbay");
        self.flush_log();
        status
    }

    /// SIGSTOP: the process is frozen where it is, its sockets open, as a
    /// node stalled by a long pause (swapping, a stopped VM) would be.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT: a paused process goes on from where it was.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIG{name} not delivered");
    }

    /// Waits until everything the exited child wrote is in the log.
    fn flush_log(&mut self) {
        if let Some(copier) = self.log_copier.take() {
            let _ = copier.join();
        }
    }
}

/// The `webhook-signature` value of a Standard Webhooks delivery:
/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
/// key that `secret` (`whsec_` and base64) encodes.
pub fn sign_standard_webhook(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let base64 = base64::engine::general_purpose::STANDARD;
    let key = base64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .expect("the secret is base64");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64.encode(mac.finalize().into_bytes()))
}

/// Delivery `n` of an order campaign: its `webhook-id` (`wh_NNNNNN`) and
/// its body, an order `oN` with an amount.
pub fn order_delivery(n: usize) -> (String, String) {
    let body = serde_json::json!({ "order_id": format!("o{n}"), "amount": 100 + n % 50 });
    (format!("wh_{n:06}"), body.to_string())
}

/// POSTs `body` to `url` as a Standard Webhooks delivery `id` signed with
/// `secret`, stamped now: a sender repeating a delivery signs each attempt
/// afresh, as providers do.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    body: &str,
) -> reqwest::Result<reqwest::Response> {
    let timestamp = unix_seconds();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            sign_standard_webhook(secret, id, timestamp, body),
        )
        .body(body.to_string())
        .send()
        .await
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Polls the node at `base` until its queue is drained (see
/// [`queue_is_drained`]); false if it is not within `timeout`.
pub async fn drains_within(base: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    eventually(timeout, || queue_is_drained(&client, base)).await
}

/// Whether the node at `base` has no run queued or running, seen twice in a
/// row (a run can move between the two statuses between two queries).
pub async fn queue_is_drained(client: &reqwest::Client, base: &str) -> bool {
    for _ in 0..2 {
        for status in ["running", "queued"] {
            let listed: serde_json::Value = match client
                .get(format!("{base}/api/v1/runs?status={status}&limit=1"))
                .send()
                .await
            {
                Ok(response) => match response.json().await {
                    Ok(listed) => listed,
                    Err(_) => return false,
                },
                Err(_) => return false,
            };
            if listed["items"]
                .as_array()
                .is_none_or(|runs| !runs.is_empty())
            {
                return false;
            }
        }
    }
    true
}

/// Every run in the store of `project`, read after the node stopped.
pub async fn stored_runs(project: &TestProject) -> Vec<Run> {
    all_runs(&*project.open_store().await).await
}

/// Every run in `store`, newest first, read page by page.
pub async fn all_runs(store: &dyn Store) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    loop {
        let page = store
            .list_runs(&RunFilter {
                before: runs.last().map(|run| run.id),
                limit: 1000,
                ..RunFilter::default()
            })
            .await
            .expect("list runs");
        let done = page.len() < 1000;
        runs.extend(page);
        if done {
            break;
        }
    }
    runs
}

/// The SQLite file of a project with the default `store.path`.
pub fn store_file(project: &TestProject) -> std::path::PathBuf {
    project.path().join(".patchbay").join("patchbay.db")
}

/// SQLite's `PRAGMA integrity_check` on `path`, opened read-only: `ok`
/// when the file is sound.
pub async fn integrity_check(path: &Path) -> String {
    use sqlx::ConnectOptions as _;
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("open the store read-only");
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await
        .expect("integrity check runs");
    rows.join("\n")
}

/// `VmRSS` and `VmHWM` (peak resident set) of process `pid`, in KiB, as
/// Linux reports them in `/proc/PID/status`; `None` elsewhere.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Lines of `log` that report a panic.
pub fn panics_in_log(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("panicked"))
        .map(str::to_string)
        .collect()
}

/// The admin token of [`tokened_root`].
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
/// The read-only token of [`tokened_root`].
pub const READ_TOKEN: &str = "read-token-0123456789abcdef";

/// `patchbay.yaml` with a `crm` connector at `${env:CRM_URL}` (no breaker,
/// no run-level retries) and an API guarded by [`ADMIN_TOKEN`] and
/// [`READ_TOKEN`].
pub fn tokened_root() -> String {
    format!(
        "\
connectors:
  crm:
    url: ${{env:CRM_URL}}
    dangerous_allow_private: true
    circuit_breaker: off
api:
  tokens:
    - name: admin
      token: {ADMIN_TOKEN}
      scopes: [admin]
    - name: reader
      token: {READ_TOKEN}
      scopes: [read]
engine:
  run_retries: []
"
    )
}

/// The real binary serving [`CONTACTS_FLOW`] under [`tokened_root`], its
/// `crm` upstream refusing every contact with 400: a permanent refusal, so a
/// triggered run is dead at once, a dead letter to replay.
pub async fn tokened_contacts_node() -> (patchbay_testkit::MockUpstream, TestProject, Patchbay) {
    let crm = patchbay_testkit::MockUpstream::start().await;
    crm.route(
        "POST",
        "/contacts",
        patchbay_testkit::Reply::json(400, serde_json::json!({"error": "bad"})),
    );
    let project = TestProject::new(&tokened_root(), &[("contacts", CONTACTS_FLOW)]);
    let log = project.path().join("patchbay.log");
    let node = Patchbay::spawn(
        patchbay_run(project.path(), &[("CRM_URL", crm.url())]),
        &log,
    );
    (crm, project, node)
}

// PostgreSQL: a store shared by several nodes, each test in a schema of
// its own in the test database.

use patchbay_testkit::pg::TestSchema;
pub use patchbay_testkit::pg::{on_postgres, pg_url};

/// True, saying so, when the suite runs on PostgreSQL and the test (or the
/// part of it) is about the SQLite file itself: its bytes, its folder, its
/// integrity check, faults of its disk.
pub fn sqlite_only(what: &str) -> bool {
    let skip = on_postgres();
    if skip {
        println!("on PostgreSQL, skipped: {what} (the SQLite file's own behaviour)");
    }
    skip
}

/// `root` with `store` (a top-level `store:` section) merged in: added
/// under an existing block-style `store:` key, or appended.
fn with_store(root: &str, store: &str) -> String {
    let body = store.strip_prefix("store:\n").expect("a store section");
    let mut merged = String::new();
    let mut added = false;
    for line in root.lines() {
        merged.push_str(line);
        merged.push('\n');
        if !added && line.trim_end() == "store:" {
            merged.push_str(body);
            added = true;
        }
    }
    assert!(
        added || !root.lines().any(|line| line.starts_with("store:")),
        "a test root with a flow-style `store:` cannot be moved to PostgreSQL; write it block-style"
    );
    if !added {
        merged.push_str(store);
    }
    merged
}

/// A schema of the test database that keeps one test's store, dropped when
/// the test ends, however it ends (see [`TestSchema`]).
pub struct Schema(TestSchema);

impl Schema {
    /// A schema with a name of its own.
    pub fn new() -> Schema {
        Schema(TestSchema::new())
    }

    /// The URL of the test database, naming this schema as the
    /// connections' `application_name`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The schema's name.
    pub fn name(&self) -> String {
        self.0.name().to_string()
    }

    /// The `store` section of a `patchbay.yaml` keeping the store in this
    /// schema, the database URL read from `${env:PG_URL}` (set it to
    /// [`pg_url`]). It ends inside `store.postgres`, so a test can add to
    /// its settings by appending lines indented by four spaces.
    pub fn store_yaml(&self) -> String {
        format!(
            "store:\n  postgres:\n    url: \"${{env:PG_URL}}?application_name={schema}\"\n    schema: {schema}\n",
            schema = self.0
        )
    }

    /// Like [`Schema::store_yaml`] with the database's URL written out, for
    /// a project that reads no environment for it.
    pub fn literal_store_yaml(&self) -> String {
        format!(
            "store:\n  postgres:\n    url: \"{url}\"\n    schema: {schema}\n    max_connections: 4\n",
            url = self.url(),
            schema = self.0
        )
    }

    /// Opens the store kept in this schema (creating its tables when they
    /// are not there yet). Panics when PostgreSQL cannot be reached: the
    /// tests that need it fail rather than skip.
    pub async fn open(&self) -> PgStore {
        PgStore::open(PgOptions {
            schema: Some(self.0.name().to_string()),
            ..PgOptions::new(self.url())
        })
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed: {e}", pg_url()))
    }
}

/// Asserts that every run succeeded, naming the first few that did not
/// (id, status, error).
pub fn assert_all_succeeded(runs: &[Run]) {
    let not_succeeded: Vec<String> = runs
        .iter()
        .filter(|run| run.status != RunStatus::Succeeded)
        .map(|run| format!("{} {} {:?}", run.id, run.status, run.error))
        .collect();
    assert!(
        not_succeeded.is_empty(),
        "{} run(s) did not succeed, e.g. {:?}",
        not_succeeded.len(),
        &not_succeeded[..not_succeeded.len().min(5)]
    );
}

/// The python of a virtualenv that `scripts/SETUP` installs (once) and
/// prints; `None`, saying so on stdout, outside CI when it cannot be had
/// (no Python, no package index). Under `CI=true` a failure is a failure.
pub fn python_from_setup(setup: &str, what: &str) -> Option<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let installed = Command::new(root.join("scripts").join(setup)).output();
    match installed {
        Ok(out) if out.status.success() => Some(std::path::PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )),
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var("CI").is_err(),
                "scripts/{setup} failed, and CI needs {what}: {why}"
            );
            println!("skipped: no {what} ({why})");
            None
        }
    }
}
