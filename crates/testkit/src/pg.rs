//! The PostgreSQL side of the test suites that run on either store: which
//! store the suite is asked for (`PATCHBAY_TEST_STORE=postgres`), the test
//! server (`PATCHBAY_TEST_PG_URL`, by default database `test` on
//! 127.0.0.1:5432 as user `postgres`), and [`TestSchema`], a schema that
//! keeps one test's store and is dropped when the test ends, however it
//! ends. [`PgServer`] is a PostgreSQL server of a test's own, for a test
//! that stops and restarts the database.
//!
//! Every suite that can run on PostgreSQL (the store's, the engine's, the
//! end-to-end one) takes its schemas from here, so they are named, found
//! and dropped the same way.

use std::fmt;

use crate::TestkitError;

/// The test database when `PATCHBAY_TEST_PG_URL` does not name one.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether the suite runs with every store in PostgreSQL
/// (`PATCHBAY_TEST_STORE=postgres`) rather than on SQLite, the default.
/// Panics on any other value, so that a misspelt setting cannot quietly
/// run the suite on SQLite.
pub fn on_postgres() -> bool {
    match std::env::var("PATCHBAY_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("PATCHBAY_TEST_STORE={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// The URL of the test database: `PATCHBAY_TEST_PG_URL`, or database `test`
/// of the PostgreSQL on 127.0.0.1:5432 as user `postgres`.
pub fn pg_url() -> String {
    std::env::var("PATCHBAY_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A schema of the test database with a name of its own (`test_` and a
/// UUIDv7), dropped with this value. Its name is also the
/// `application_name` of every connection made through [`TestSchema::url`],
/// so the drop can end the sessions still connected to it first: a killed
/// or paused node, or a store whose runtime is gone, never closes its own,
/// and any of them would block `DROP SCHEMA` forever.
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    /// A schema with a name of its own; created by the store that first
    /// opens it.
    pub fn new() -> TestSchema {
        TestSchema {
            name: format!("test_{}", uuid::Uuid::now_v7().simple()),
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the test database, naming this schema as the
    /// connections' `application_name`.
    pub fn url(&self) -> String {
        let base = pg_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}application_name={}", self.name)
    }
}

impl Default for TestSchema {
    fn default() -> TestSchema {
        TestSchema::new()
    }
}

impl fmt::Display for TestSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, schema) = (pg_url(), self.name.clone());
        // Drop cannot await, and it may run inside a runtime, which cannot
        // block on another: a thread of its own with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_schema(&url, &schema))
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("test schema {} was not dropped: {e}", self.name);
        }
    }
}

async fn drop_schema(
    url: &str,
    schema: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema)
    .execute(&mut connection)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut connection)
    .await?;
    connection.close().await?;
    Ok(())
}

/// A PostgreSQL server of its own, in a temporary folder, on a free port of
/// 127.0.0.1, for a test that must stop and restart the database itself
/// while the shared test server goes on serving every other test. Built
/// from the machine's PostgreSQL binaries (`pg_config --bindir`, or
/// `PATCHBAY_TEST_PG_BIN`); as root, it runs as user `postgres`, since
/// PostgreSQL refuses to run as root. Stopped (immediately) when dropped.
pub struct PgServer {
    folder: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
    as_postgres: bool,
}

impl PgServer {
    /// Creates the server's cluster (`initdb`, trust authentication, user
    /// `postgres`) and starts it.
    pub fn start() -> Result<PgServer, TestkitError> {
        let bin = pg_bin()?;
        let as_postgres = running_as_root();
        let folder = tempfile::tempdir().map_err(|e| server_error("temporary folder", e))?;
        if as_postgres {
            run(
                "chown",
                std::process::Command::new("chown")
                    .arg("postgres:")
                    .arg(folder.path()),
            )?;
        }
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|e| server_error("free port", e))?
            .port();
        let server = PgServer {
            folder,
            port,
            bin,
            as_postgres,
        };
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(server.data()).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run("initdb", &mut initdb)?;
        server.start_again()?;
        Ok(server)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`): every
    /// session is cut, nothing is flushed but what was committed, and the
    /// next start recovers from the write-ahead log.
    pub fn stop_immediately(&self) -> Result<(), TestkitError> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run("stop", &mut stop)
    }

    /// Starts the server (again) on the same port and data, and waits until
    /// it accepts connections.
    pub fn start_again(&self) -> Result<(), TestkitError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.folder.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.folder.path().join("server.log"))
            .args(["-w", "start"]);
        run("start", &mut start)
    }

    fn data(&self) -> std::path::PathBuf {
        self.folder.path().join("data")
    }

    fn command(&self, program: &str) -> std::process::Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

fn pg_bin() -> Result<std::path::PathBuf, TestkitError> {
    if let Ok(bin) = std::env::var("PATCHBAY_TEST_PG_BIN") {
        return Ok(bin.into());
    }
    let what = "pg_config --bindir (or set PATCHBAY_TEST_PG_BIN)";
    let output = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|e| server_error(what, e))?;
    let bin = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || bin.is_empty() {
        return Err(TestkitError::PgServer {
            what,
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(bin.into())
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn run(what: &'static str, command: &mut std::process::Command) -> Result<(), TestkitError> {
    let output = command.output().map_err(|e| server_error(what, e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(TestkitError::PgServer {
        what,
        detail: format!(
            "{}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        ),
    })
}

fn server_error(what: &'static str, error: std::io::Error) -> TestkitError {
    TestkitError::PgServer {
        what,
        detail: error.to_string(),
    }
}
