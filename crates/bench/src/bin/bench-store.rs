//! `bench-store`: the store's throughput and claim latency, measured through
//! the `Store` trait alone (no HTTP, no engine), on SQLite or PostgreSQL.
//!
//! ```text
//! bench-store --store sqlite:PATH | postgres:URL [--schema NAME] [--history N]
//!             [--runs M] [--workers K] [--steps S] [--seconds D]
//! ```
//!
//! 1. Creates a fresh store: a SQLite file that must not exist yet, or a
//!    PostgreSQL schema created for the purpose (`--schema`, or a generated
//!    name; an existing schema is refused). Both are removed at the end,
//!    also when the benchmark fails or gets SIGINT or SIGTERM (`--keep`
//!    leaves them). A SIGKILL leaves them behind.
//! 2. Preloads `N` finished runs of history (status `succeeded`, one
//!    journal entry each) with bulk SQL on the store's own database, the
//!    store closed meanwhile: `INSERT ... SELECT ... FROM generate_series`
//!    on PostgreSQL, a recursive CTE in one transaction on SQLite. Columns
//!    the migrations add later as `NOT NULL` without a default get a
//!    neutral value, read from the schema. Then the load is settled so the
//!    measurement does not pay for it: PostgreSQL runs `VACUUM (ANALYZE)`
//!    on the two tables and a `CHECKPOINT` (what autovacuum and the
//!    checkpointer would do soon after such a load); SQLite checkpoints its
//!    WAL and syncs the file.
//! 3. Enqueues `M` queued runs with [`Store::enqueue`], 256 per batch.
//! 4. Starts `K` workers. Each loops until the queue is empty or `D`
//!    seconds have passed: [`Store::claim`] of one run (timed), then `S`
//!    [`Store::record_step`] calls (small entries whose `attempt` is the
//!    claim's number, which the store fences writes on), then
//!    [`Store::finish_with_step`] with the last step's entry. A run
//!    claimed before the deadline is finished after it; the measurement
//!    ends when every worker has stopped.
//!
//! It prints one JSON object on standard output: the parameters, the
//! preload's and enqueue's times, and for the work phase claims/s, claim
//! latency (p50, p90, p99, mean, min, max in µs, over the claims that
//! returned a run), the latency of `record_step` and `finish_with_step`,
//! durable steps/s (every `record_step` plus the final entry), runs
//! finished/s, and a check that the store holds as many succeeded runs as
//! were finished. On PostgreSQL it adds the server's version and its
//! durability and sizing settings; on SQLite, the writer connection's.
//!
//! Every worker uses an owner of its own, as if each were a node of its
//! own; the store's connections are its defaults (PostgreSQL: a pool of
//! `--max-connections`, 16 like a node's default; SQLite: its one writer
//! thread and 4 readers). The instrument, the database and everything else
//! on the machine share the CPUs: on a small host the figures are those of
//! the whole, not of the database alone.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::stats::Summary;
use patchbay_store::{
    Claim, JournalEntry, NewRun, PgOptions, PgStore, RunOutcome, RunStatus, SqliteOptions,
    SqliteStore, StepStatus, Store,
};
use serde_json::{Value, json};
use sqlx::Connection as _;
use sqlx::Row as _;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs per `Store::enqueue` call, as the intake's default group commit.
const ENQUEUE_BATCH: usize = 256;
/// The flow of the measured runs; the history is split between it and
/// `bench-other` (the preload's SQL names both).
const FLOW: &str = "bench";

#[derive(Parser, Clone, Debug)]
#[command(about = "Claims, durable steps and finished runs per second through the Store trait")]
struct Args {
    /// `sqlite:PATH` (a file that must not exist) or `postgres:URL`
    /// (`postgres:postgres://user@host:5432/db`).
    #[arg(long)]
    store: String,
    /// PostgreSQL: the schema to create, use and drop (must not exist).
    /// Default: `bench_store_<pid>_<unix ms>`.
    #[arg(long)]
    schema: Option<String>,
    /// Finished runs already stored before the measurement.
    #[arg(long, default_value_t = 1000)]
    history: u64,
    /// Queued runs to work through.
    #[arg(long, default_value_t = 20_000)]
    runs: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// `record_step` calls per run before `finish_with_step`.
    #[arg(long, default_value_t = 4)]
    steps: u32,
    /// Stop claiming after this many seconds even if runs are left.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Lease taken by each claim, in seconds.
    #[arg(long, default_value_t = 30)]
    lease_s: u64,
    /// PostgreSQL: most connections of the store's pool.
    #[arg(long, default_value_t = PgOptions::DEFAULT_MAX_CONNECTIONS)]
    max_connections: u32,
    /// Leave the store (SQLite file, PostgreSQL schema) in place.
    #[arg(long)]
    keep: bool,
}

/// Where the store lives.
#[derive(Clone, Debug)]
enum Target {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Target {
    fn parse(args: &Args) -> Result<Target, Error> {
        let (kind, rest) = args
            .store
            .split_once(':')
            .ok_or("--store must be sqlite:PATH or postgres:URL")?;
        match kind {
            "sqlite" if !rest.is_empty() => {
                if args.schema.is_some() {
                    return Err("--schema is for PostgreSQL only".into());
                }
                Ok(Target::Sqlite(PathBuf::from(rest)))
            }
            "postgres" | "postgresql" if !rest.is_empty() => {
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                let schema = args
                    .schema
                    .clone()
                    .unwrap_or_else(|| format!("bench_store_{}_{millis}", std::process::id()));
                Ok(Target::Postgres {
                    url: rest.to_string(),
                    schema,
                })
            }
            _ => Err(format!(
                "--store `{}`: expected sqlite:PATH or postgres:URL",
                args.store
            )
            .into()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres { .. } => "postgres",
        }
    }

    /// Creates the empty place the store will live in. An error means
    /// nothing was created, so nothing is to be removed.
    async fn create(&self) -> Result<(), Error> {
        match self {
            Target::Sqlite(path) => {
                for file in sqlite_files(path) {
                    if file.exists() {
                        return Err(format!(
                            "{} exists: bench-store wants a fresh store",
                            file.display()
                        )
                        .into());
                    }
                }
                Ok(())
            }
            Target::Postgres { url, schema } => {
                let mut admin = pg_connect(url, None).await?;
                // Without IF NOT EXISTS: an existing schema is refused, never
                // benchmarked in, and never dropped at the end.
                let create = format!("CREATE SCHEMA {}", quoted(schema));
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
                admin.close().await?;
                Ok(())
            }
        }
    }

    /// Removes what [`Target::create`] made and the store wrote.
    async fn remove(&self) -> Result<(), Error> {
        match self {
            Target::Sqlite(path) => {
                for file in sqlite_files(path) {
                    match std::fs::remove_file(&file) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(format!("cannot remove {}: {e}", file.display()).into());
                        }
                    }
                }
                Ok(())
            }
            Target::Postgres { url, schema } => {
                let mut admin = pg_connect(url, None).await?;
                // Connections of an interrupted measurement may still be
                // rolling back; wait for their locks, not forever.
                sqlx::raw_sql("SET lock_timeout = '60s'")
                    .execute(&mut admin)
                    .await?;
                let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(schema));
                sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok(())
            }
        }
    }

    async fn open(&self, args: &Args) -> Result<Opened, Error> {
        match self {
            Target::Sqlite(path) => {
                let store = SqliteStore::open(SqliteOptions::new(path)).await?;
                Ok(Opened::Sqlite(Arc::new(store)))
            }
            Target::Postgres { url, schema } => {
                let mut options = PgOptions::new(url.clone());
                options.schema = Some(schema.clone());
                options.max_connections = args.max_connections;
                Ok(Opened::Postgres(Arc::new(PgStore::open(options).await?)))
            }
        }
    }
}

/// An open store, with its concrete type for closing it.
enum Opened {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Opened {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Opened::Sqlite(store) => Arc::clone(store) as Arc<dyn Store>,
            Opened::Postgres(store) => Arc::clone(store) as Arc<dyn Store>,
        }
    }

    async fn close(&self) {
        match self {
            Opened::Sqlite(store) => store.close().await,
            Opened::Postgres(store) => store.close().await,
        }
    }
}

fn sqlite_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

/// An identifier quoted for PostgreSQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn pg_connect(url: &str, schema: Option<&str>) -> Result<sqlx::PgConnection, Error> {
    let mut options: sqlx::postgres::PgConnectOptions = url.parse()?;
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}").into())
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let code = runtime.block_on(async_main(args));
    std::process::exit(code);
}

fn fail(message: &str) -> ! {
    eprintln!("bench-store: {message}");
    std::process::exit(1);
}

async fn async_main(args: Args) -> i32 {
    if args.workers == 0 || args.runs == 0 {
        eprintln!("bench-store: --workers and --runs must be at least 1");
        return 2;
    }
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        eprintln!("bench-store: --seconds must be a number of seconds");
        return 2;
    }
    let target = match Target::parse(&args) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("bench-store: {e}");
            return 2;
        }
    };
    if let Err(e) = target.create().await {
        eprintln!("bench-store: {e}");
        return 1;
    }
    let outcome = tokio::select! {
        outcome = measure(&args, &target) => outcome,
        signal = interrupted() => Err(format!("interrupted by {signal}").into()),
    };
    let mut code = 0;
    if !args.keep
        && let Err(e) = target.remove().await
    {
        eprintln!("bench-store: cleaning up failed: {e}");
        code = 1;
    }
    match outcome {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-store: {e}");
            code = 1;
        }
    }
    code
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn measure(args: &Args, target: &Target) -> Result<Value, Error> {
    // Open once so the store creates and migrates its tables, then close it
    // while the history is loaded beside it.
    target.open(args).await?.close().await;
    let preload = match target {
        Target::Sqlite(path) => preload_sqlite(path, args.history).await?,
        Target::Postgres { url, schema } => preload_postgres(url, schema, args.history).await?,
    };
    eprintln!(
        "bench-store: {} history runs loaded in {:.1} s (settled in {:.1} s)",
        args.history, preload["load_s"], preload["settle_s"]
    );

    let opened = target.open(args).await?;
    let result = work(args, target, &opened, preload).await;
    opened.close().await;
    result
}

async fn work(
    args: &Args,
    target: &Target,
    opened: &Opened,
    preload: Value,
) -> Result<Value, Error> {
    let store = opened.store();
    let settings = match (target, opened) {
        (Target::Postgres { url, schema }, _) => pg_settings(url, schema).await?,
        (_, Opened::Sqlite(store)) => {
            let s = store.connection_settings().await?;
            json!({
                "sqlite_version": sqlite_version().await?,
                "journal_mode": s.journal_mode,
                "synchronous": s.synchronous,
                "temp_store": s.temp_store,
            })
        }
        _ => Value::Null,
    };

    // Enqueue the runs to work through.
    let started = Instant::now();
    let mut enqueued = 0usize;
    while enqueued < args.runs {
        let batch: Vec<NewRun> = (enqueued..args.runs.min(enqueued + ENQUEUE_BATCH))
            .map(new_run)
            .collect();
        enqueued += store.enqueue(&batch).await?.len();
    }
    let enqueue_s = started.elapsed().as_secs_f64();

    // The workers.
    let lease = Duration::from_secs(args.lease_s);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    // A JoinSet aborts the workers if this future is dropped (SIGINT), so
    // none of them still writes while the schema is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.workers {
        let store = Arc::clone(&store);
        let steps = args.steps;
        tasks.spawn(async move {
            work_loop(
                store,
                format!("bench-store-{worker}"),
                steps,
                lease,
                deadline,
            )
            .await
        });
    }
    let mut totals = Tally::default();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(tally)) => totals.add(tally),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(e.into())),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = failure {
        return Err(e);
    }

    // What the store says it holds.
    let succeeded: u64 = store
        .count_runs()
        .await?
        .iter()
        .filter(|c| c.flow == FLOW && c.status == RunStatus::Succeeded)
        .map(|c| c.count)
        .sum();
    let history_in_flow = args.history.div_ceil(2);
    let stored_finished = succeeded.saturating_sub(history_in_flow);

    let durable_steps = totals.steps + totals.finished;
    let per_s = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let summary =
        |samples: &[Duration]| Summary::from_samples(samples).map_or(Value::Null, |s| s.to_json());
    let stopped_by = if totals.finished >= args.runs as u64 {
        "empty queue"
    } else {
        "deadline"
    };
    Ok(json!({
        "store": target.kind(),
        "target": match target {
            Target::Sqlite(path) => path.display().to_string(),
            Target::Postgres { url, .. } => shown_url(url),
        },
        "schema": match target {
            Target::Postgres { schema, .. } => Value::from(schema.as_str()),
            Target::Sqlite(_) => Value::Null,
        },
        "parameters": {
            "history": args.history,
            "runs": args.runs,
            "workers": args.workers,
            "steps": args.steps,
            "seconds": args.seconds,
            "lease_s": args.lease_s,
            "enqueue_batch": ENQUEUE_BATCH,
            "max_connections": match target {
                Target::Postgres { .. } => Value::from(args.max_connections),
                Target::Sqlite(_) => Value::Null,
            },
        },
        "settings": settings,
        "preload": preload,
        "enqueue": {
            "runs": enqueued,
            "seconds": round3(enqueue_s),
            "runs_per_s": round1(enqueued as f64 / enqueue_s.max(1e-9)),
        },
        "work": {
            "seconds": round3(elapsed),
            "stopped_by": stopped_by,
            "claims": totals.claimed,
            "empty_claims": totals.empty_claims,
            "claims_per_s": round1(per_s(totals.claimed)),
            "claim_latency_us": summary(&totals.claim),
            "record_step_latency_us": summary(&totals.record),
            "finish_latency_us": summary(&totals.finish),
            "durable_steps": durable_steps,
            "durable_steps_per_s": round1(per_s(durable_steps)),
            "runs_finished": totals.finished,
            "runs_per_s": round1(per_s(totals.finished)),
            "runs_left": args.runs as u64 - totals.finished.min(args.runs as u64),
        },
        "check": {
            "succeeded_runs_stored": stored_finished,
            "ok": stored_finished == totals.finished,
        },
    }))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A queued run of the measured flow, with a small order event.
fn new_run(i: usize) -> NewRun {
    NewRun {
        id: uuid::Uuid::now_v7(),
        flow: FLOW.to_string(),
        trigger: "webhook".to_string(),
        input: json!({"order_id": format!("B-{i}"), "amount": 1234, "currency": "EUR",
                      "items": [{"sku": "lamp", "qty": 2}]}),
        headers: json!({"content-type": "application/json"}),
        config_version: "bench".to_string(),
        dedupe_key: None,
        parent: None,
        lease: None,
    }
}

/// What one worker did.
#[derive(Default)]
struct Tally {
    claimed: u64,
    empty_claims: u64,
    steps: u64,
    finished: u64,
    claim: Vec<Duration>,
    record: Vec<Duration>,
    finish: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.claimed += other.claimed;
        self.empty_claims += other.empty_claims;
        self.steps += other.steps;
        self.finished += other.finished;
        self.claim.extend(other.claim);
        self.record.extend(other.record);
        self.finish.extend(other.finish);
    }
}

async fn work_loop(
    store: Arc<dyn Store>,
    owner: String,
    steps: u32,
    lease: Duration,
    deadline: Instant,
) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let t = Instant::now();
        let claimed = store.claim(&owner, 1, lease).await?;
        let took = t.elapsed();
        let Some(run) = claimed.into_iter().next() else {
            // The queue is empty: every run was claimed.
            tally.empty_claims += 1;
            break;
        };
        tally.claimed += 1;
        tally.claim.push(took);
        for step in 0..=steps {
            let entry = JournalEntry {
                run_id: run.id,
                step_index: step,
                step_id: format!("step-{step}"),
                item: None,
                attempt: run.attempts,
                status: StepStatus::Succeeded,
                started_at: chrono::Utc::now(),
                duration_ms: 1,
                request: (step < steps).then(|| {
                    json!({"connector": "up", "method": "POST", "url": "http://127.0.0.1/ok",
                           "status": 200, "attempts": 1})
                }),
                output: Some(json!({"status": 200, "body": {"ok": true}})),
                error: None,
                error_class: None,
                current: true,
            };
            let t = Instant::now();
            if step < steps {
                store.record_step(&owner, &entry, None).await?;
                tally.record.push(t.elapsed());
                tally.steps += 1;
            } else {
                let outcome = RunOutcome {
                    status: RunStatus::Succeeded,
                    output: entry.output.clone(),
                    error: None,
                };
                store
                    .finish_with_step(&owner, Claim::of(&run), &outcome, &entry)
                    .await?;
                tally.finish.push(t.elapsed());
                tally.finished += 1;
            }
        }
    }
    Ok(tally)
}

/// `url` without its password.
fn shown_url(url: &str) -> String {
    match url.split_once('@') {
        Some((credentials, host)) if credentials.matches(':').count() > 1 => {
            let user = credentials.rsplit_once(':').map_or(credentials, |(u, _)| u);
            format!("{user}:****@{host}")
        }
        _ => url.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Preloading history.
// ---------------------------------------------------------------------------

/// The history's first instant: ten days ago, one millisecond per run, so
/// every preloaded run is older than the measured ones.
fn history_base(n: u64) -> i64 {
    chrono::Utc::now().timestamp_millis() - 10 * 86_400_000 - n as i64
}

/// Adds a neutral value for every `NOT NULL` column without a default
/// that `values` does not name (a column a later migration adds), and
/// drops names the table does not have.
fn fill_required(
    values: &[(&str, &str)],
    columns: &[(String, String, bool)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = values
        .iter()
        .filter(|(name, _)| columns.iter().any(|(c, _, _)| c == name))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for (name, kind, required) in columns {
        if !required || out.iter().any(|(n, _)| n == name) {
            continue;
        }
        let kind = kind.to_ascii_lowercase();
        let neutral = if kind.contains("int") || kind.contains("numeric") {
            "0"
        } else if kind.contains("bool") {
            "false"
        } else {
            "''"
        };
        out.push((name.clone(), neutral.to_string()));
    }
    out
}

fn insert_columns(values: &[(String, String)]) -> (String, String) {
    let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
    let exprs: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
    (names.join(", "), exprs.join(", "))
}

async fn preload_postgres(url: &str, schema: &str, n: u64) -> Result<Value, Error> {
    let mut db = pg_connect(url, Some(schema)).await?;
    let columns = |table: &'static str| {
        sqlx::query(
            "SELECT column_name::text, data_type::text,
                    is_nullable = 'NO' AND column_default IS NULL AS required
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        )
        .bind(schema.to_string())
        .bind(table)
    };
    let decode = |rows: Vec<sqlx::postgres::PgRow>| -> Result<Vec<(String, String, bool)>, Error> {
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    };
    let run_columns = decode(columns("runs").fetch_all(&mut db).await?)?;
    let journal_columns = decode(columns("journal").fetch_all(&mut db).await?)?;
    // A UUIDv7 of the run's instant (`b + x`), unique by `x`.
    let runs = fill_required(
        &[
            (
                "id",
                "(lpad(to_hex(b + x), 12, '0') || '7' || lpad(to_hex(x & 4095), 3, '0') || '8' \
                 || lpad(to_hex((x >> 12) & 4095), 3, '0') || lpad(to_hex(x), 12, '0'))::uuid",
            ),
            (
                "flow",
                "CASE x % 2 WHEN 0 THEN 'bench' ELSE 'bench-other' END",
            ),
            ("status", "'succeeded'"),
            ("trigger", "'webhook'"),
            (
                "input",
                "'{\"order_id\":\"P-' || x || '\",\"amount\":1234}'",
            ),
            ("headers", "'{\"content-type\":\"application/json\"}'"),
            ("output", "'{\"ok\":true}'"),
            ("attempts", "1"),
            ("config_version", "'preload'"),
            ("next_attempt_at", "b + x"),
            ("created_at", "b + x"),
            ("updated_at", "b + x + 5"),
            ("finished_at", "b + x + 5"),
            ("journal_entries", "1"),
            ("claim_mark", "1"),
        ],
        &run_columns,
    );
    let journal = fill_required(
        &[
            ("run_id", "id"),
            ("n", "0"),
            ("step_index", "0"),
            ("step_id", "'step-0'"),
            ("attempt", "1"),
            ("status", "'succeeded'"),
            ("started_at", "created_at"),
            ("duration_ms", "5"),
            ("output", "output"),
        ],
        &journal_columns,
    );
    let (run_names, run_exprs) = insert_columns(&runs);
    let (journal_names, journal_exprs) = insert_columns(&journal);

    let started = Instant::now();
    let mut tx = db.begin().await?;
    if n > 0 {
        let insert_runs = format!(
            "INSERT INTO runs ({run_names}) SELECT {run_exprs} \
             FROM generate_series(0::bigint, $1::bigint - 1) AS x, (SELECT $2::bigint AS b) AS base"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert_runs))
            .bind(n as i64)
            .bind(history_base(n))
            .execute(&mut *tx)
            .await?;
        let insert_journal = format!(
            "INSERT INTO journal ({journal_names}) SELECT {journal_exprs} \
             FROM runs WHERE config_version = 'preload'"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert_journal))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let load_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    // One statement at a time: several in one simple query would be one
    // transaction, where VACUUM cannot run.
    sqlx::raw_sql("VACUUM (ANALYZE) runs, journal")
        .execute(&mut db)
        .await?;
    sqlx::raw_sql("CHECKPOINT").execute(&mut db).await?;
    let settle_s = started.elapsed().as_secs_f64();
    let bytes: i64 = sqlx::query_scalar(
        "SELECT (pg_total_relation_size('runs') + pg_total_relation_size('journal'))::bigint",
    )
    .fetch_one(&mut db)
    .await?;
    db.close().await?;
    Ok(json!({
        "runs": n,
        "load_s": round3(load_s),
        "settle_s": round3(settle_s),
        "settle": "VACUUM (ANALYZE) runs, journal; CHECKPOINT",
        "bytes": bytes,
    }))
}

async fn preload_sqlite(path: &Path, n: u64) -> Result<Value, Error> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let columns = |table: &'static str| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, type, \"notnull\" AND dflt_value IS NULL AND pk = 0 \
             FROM pragma_table_info('{table}')"
        )))
    };
    let decode =
        |rows: Vec<sqlx::sqlite::SqliteRow>| -> Result<Vec<(String, String, bool)>, Error> {
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? != 0)))
                .collect()
        };
    let run_columns = decode(columns("runs").fetch_all(&mut db).await?)?;
    let journal_columns = decode(columns("journal").fetch_all(&mut db).await?)?;
    // A UUIDv7 as the store keeps it, its 16 bytes; a run's journal entries
    // are keyed from `seq * 2^20` (migration 0012).
    let runs = fill_required(
        &[
            (
                "id",
                "unhex(printf('%012x7%03x8%03x%012x', b + x, x & 4095, (x >> 12) & 4095, x))",
            ),
            (
                "flow",
                "CASE x % 2 WHEN 0 THEN 'bench' ELSE 'bench-other' END",
            ),
            ("status", "'succeeded'"),
            ("trigger", "'webhook'"),
            (
                "input",
                "'{\"order_id\":\"P-' || x || '\",\"amount\":1234}'",
            ),
            ("headers", "'{\"content-type\":\"application/json\"}'"),
            ("output", "'{\"ok\":true}'"),
            ("attempts", "1"),
            ("config_version", "'preload'"),
            ("next_attempt_at", "b + x"),
            ("created_at", "b + x"),
            ("updated_at", "b + x + 5"),
            ("finished_at", "b + x + 5"),
        ],
        &run_columns,
    );
    let journal = fill_required(
        &[
            ("key", "seq * 1048576"),
            ("step_index", "0"),
            ("step_id", "'step-0'"),
            ("attempt", "1"),
            ("status", "'succeeded'"),
            ("started_at", "created_at"),
            ("duration_ms", "5"),
            ("output", "output"),
        ],
        &journal_columns,
    );
    let (run_names, run_exprs) = insert_columns(&runs);
    let (journal_names, journal_exprs) = insert_columns(&journal);

    let started = Instant::now();
    let mut tx = db.begin().await?;
    if n > 0 {
        let insert_runs = format!(
            "INSERT INTO runs ({run_names}) \
             WITH RECURSIVE seq(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM seq WHERE x + 1 < ?1) \
             SELECT {run_exprs} FROM seq, (SELECT ?2 AS b)"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert_runs))
            .bind(n as i64)
            .bind(history_base(n))
            .execute(&mut *tx)
            .await?;
        let insert_journal = format!(
            "INSERT INTO journal ({journal_names}) SELECT {journal_exprs} \
             FROM runs WHERE config_version = 'preload'"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert_journal))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let load_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut db)
        .await?;
    db.close().await?;
    // The checkpoint synced the database under synchronous=FULL; syncing
    // once more costs nothing if it did, and keeps the load's dirty pages
    // out of the measurement if it did not.
    std::fs::File::open(path)?.sync_all()?;
    let settle_s = started.elapsed().as_secs_f64();
    let bytes: u64 = sqlite_files(path)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    Ok(json!({
        "runs": n,
        "load_s": round3(load_s),
        "settle_s": round3(settle_s),
        "settle": "PRAGMA wal_checkpoint(TRUNCATE), fsync",
        "bytes": bytes,
    }))
}

// ---------------------------------------------------------------------------
// What the database ran with.
// ---------------------------------------------------------------------------

async fn pg_settings(url: &str, schema: &str) -> Result<Value, Error> {
    let mut db = pg_connect(url, Some(schema)).await?;
    let mut out = serde_json::Map::new();
    for name in [
        "server_version",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "full_page_writes",
        "commit_delay",
        "shared_buffers",
        "max_connections",
        "max_wal_size",
    ] {
        let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(&mut db)
            .await?;
        out.insert(name.to_string(), Value::from(value));
    }
    db.close().await?;
    Ok(Value::Object(out))
}

async fn sqlite_version() -> Result<String, Error> {
    let mut db = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut db)
        .await?;
    db.close().await?;
    Ok(version)
}
