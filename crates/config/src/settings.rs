//! Process-wide settings: HTTP server, management API, store and engine.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::located::Located;

/// The HTTP server that receives webhooks and serves the API.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: expose it deliberately.
    pub listen: String,
    /// Largest accepted webhook body, in bytes (1 MiB by default). Larger
    /// bodies are answered 413.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it is answered 408.
    pub request_timeout: HumanDuration,
    /// Longest time a client may take to send a request's headers, counted
    /// from its first byte (or, on a kept-alive connection, from the end of
    /// the previous answer). A connection that is slower is closed without
    /// an answer, so idle or trickling connections cannot pile up.
    pub header_timeout: HumanDuration,
    /// Longest time a client may take to send a request's body once its
    /// headers are in; after that the request is answered 408 and the
    /// connection closed.
    pub body_timeout: HumanDuration,
    /// Most connections open at once. Past it, new connections wait in the
    /// operating system's accept queue until one closes. Keep it below the
    /// process's file descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// Most requests being handled at once on one webhook path. Past it,
    /// the path answers 503 with `Retry-After`, so one busy or slow sender
    /// cannot take every connection and worker from the others.
    pub max_inflight_per_webhook: usize,
    /// Serve HTTPS instead of HTTP, with this certificate and key.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60).into(),
            header_timeout: Duration::from_secs(10).into(),
            body_timeout: Duration::from_secs(30).into(),
            max_connections: 512,
            max_inflight_per_webhook: 256,
            tls: None,
        }
    }
}

/// The certificate and key the server presents for HTTPS. Both files are
/// PEM, relative to the project folder. They are read at start and read
/// again within a few seconds of changing, so a renewed certificate needs
/// no restart; a renewal that cannot be read keeps the previous one (and
/// logs why).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM: the server's certificate first, then
    /// any intermediates.
    pub cert: String,
    /// The private key of the certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// Who may use the management API under `/api/v1`.
///
/// Each caller sends `Authorization: Bearer TOKEN`. Tokens are listed here
/// by name with what they may do; `patchbay token new` makes one and prints
/// its configuration. With no tokens the API is open to every caller, which
/// is only allowed while `server.listen` is a loopback address.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The tokens the API accepts. Empty (the default): no token is needed,
    /// and every caller may do everything.
    pub tokens: Vec<Located<ApiTokenConfig>>,
    /// Serve the API without tokens even though `server.listen` is not a
    /// loopback address: anyone who can reach the port can then replay,
    /// cancel, read run payloads and change secrets. Only for a network
    /// that is private by other means.
    pub dangerous_allow_anonymous: bool,
    /// Host names (as in the URL, without port) that an API without tokens
    /// answers besides `localhost`, `127.0.0.1` and `[::1]`. An open API
    /// refuses every other `Host` (421), so a web page cannot reach it
    /// through a name of its own that resolves to this node (DNS
    /// rebinding). List only names you control. Ignored with tokens.
    pub allowed_hosts: Vec<String>,
}

impl ApiConfig {
    /// Whether serving on `listen` is allowed: with tokens always, without
    /// them only on a loopback address (or when explicitly allowed).
    pub fn allows_listening_on(&self, listen: &std::net::SocketAddr) -> bool {
        !self.tokens.is_empty() || self.dangerous_allow_anonymous || listen.ip().is_loopback()
    }
}

/// One API token: its name, how it is recognised, and its scopes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenConfig {
    /// A name for the token, unique in the project. Logs name the token
    /// that made a request by it; the token itself is never logged.
    pub name: String,
    /// The SHA-256 of the token, as 64 hex digits (`patchbay token new`
    /// prints it). Preferred over `token`: the configuration then holds
    /// nothing that opens the API.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The token itself, normally from the environment: `${env:NAME}`.
    /// At least 16 characters. Give either this or `sha256`.
    #[serde(default)]
    pub token: Option<String>,
    /// What the token may do. `read`: list and show flows, runs, dead
    /// letters and connectors. `operate`: also start, cancel and replay
    /// runs. `admin`: also read the configuration, reload it and manage
    /// secrets. Each scope includes the ones before it.
    pub scopes: Vec<ApiScope>,
}

/// A permission of an API token; each includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    /// Read flows, runs, dead letters, connectors and statistics.
    Read,
    /// Also start, cancel and replay runs.
    Operate,
    /// Also read and reload the configuration and manage secrets.
    Admin,
}

impl ApiScope {
    /// Every scope, lowest first.
    pub const ALL: [ApiScope; 3] = [ApiScope::Read, ApiScope::Operate, ApiScope::Admin];

    /// The name written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Operate => "operate",
            ApiScope::Admin => "admin",
        }
    }

    /// Parses a name produced by [`ApiScope::as_str`].
    pub fn parse(name: &str) -> Option<ApiScope> {
        ApiScope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for ApiScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where runs, the journal and flow state are kept.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database file, relative to the project folder. With
    /// `postgres`, the master key file (`master.key`) is still kept in its
    /// folder.
    pub path: String,
    /// Keep the store in PostgreSQL instead of the SQLite file, so that
    /// several nodes can share it (see `docs/scale-out.md`).
    pub postgres: Option<PostgresConfig>,
    /// How long finished runs (succeeded, skipped, dead) and their journal
    /// are kept after they finish (default `30d`); `0s` keeps them forever.
    /// A webhook's dedupe key is remembered as long as its run is.
    pub retention: HumanDuration,
    /// How long entries of the audit log (management API actions and
    /// refused tokens; see `GET /api/v1/audit`) are kept (default `365d`);
    /// `0s` keeps them forever.
    pub audit_retention: HumanDuration,
}

/// The PostgreSQL database of a store.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:5432/database`; may use
    /// `${env:NAME}` (not `${secret:...}`: secrets are kept in the store
    /// itself).
    pub url: Located<String>,
    /// Keep the tables in this schema (created if missing) rather than the
    /// connection's default.
    #[serde(default)]
    pub schema: Option<String>,
    /// Most connections this node opens (default 16).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// How long a store call waits for a connection before it fails
    /// (default 3s), reconnecting to a server that refuses connections
    /// included: while the database is down, intake answers `503` this
    /// soon rather than when the sender has given up.
    #[serde(default)]
    pub acquire_timeout: Option<HumanDuration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: ".patchbay/patchbay.db".into(),
            postgres: None,
            retention: Duration::from_secs(30 * 24 * 3600).into(),
            audit_retention: Duration::from_secs(365 * 24 * 3600).into(),
        }
    }
}

/// How runs are executed.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Most runs executing at once on this node.
    pub workers: usize,
    /// How long a claimed run stays reserved for its worker without renewal.
    /// After a crash, its runs are resumed once this has passed.
    pub lease: HumanDuration,
    /// How often idle workers look for due runs (new runs wake them at once).
    pub poll_interval: HumanDuration,
    /// On shutdown, how long running steps may take to finish.
    pub shutdown_grace: HumanDuration,
    /// Most webhook events committed in one transaction (group commit).
    pub intake_batch: usize,
    /// Delays before each run-level retry: a run whose step failed
    /// transiently is rescheduled after the first delay, then the second, ...;
    /// after the last it is dead. A flow's `run_retries` replaces this.
    pub run_retries: Vec<HumanDuration>,
    /// Budgets of every jq evaluation (see [`ExpressionConfig`]).
    pub expressions: ExpressionConfig,
    /// How many times a run may be claimed without reaching the end of a
    /// step before it is declared dead: a run whose execution stops the node
    /// (a crash, an out-of-memory kill) would otherwise be resumed, and stop
    /// it again, after every restart. Default 3.
    pub max_claims_without_progress: u32,
    /// Largest journal entry (a step's request summary, output and error,
    /// as JSON) in bytes; a step whose entry would be larger fails with an
    /// error saying so. Default 12 MiB, room for the largest response a
    /// connector accepts by default (10 MiB) and its summary.
    pub max_journal_entry_bytes: usize,
    /// Largest output of a run, and largest flow state, in bytes; a run
    /// whose output or `set_state` would be larger fails. Default 12 MiB.
    pub max_run_output_bytes: usize,
}

/// Budgets of one jq evaluation. Flows run jq over what strangers send
/// (webhook bodies, upstream answers), so every evaluation is bounded: past
/// any of these it stops, and its step fails permanently with an error naming
/// the budget. Cheap evaluations run inline; the rest move to a small pool of
/// evaluation threads with large stacks.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExpressionConfig {
    /// Longest one evaluation may run (default `1s`).
    pub time: HumanDuration,
    /// Most memory one evaluation may hold, in bytes (default 64 MiB).
    pub max_memory_bytes: u64,
    /// Largest output of one evaluation, as JSON, in bytes (default 8 MiB).
    pub max_output_bytes: usize,
    /// Threads evaluating expressions too costly to run inline (default:
    /// half the cores, at least one).
    pub threads: Option<usize>,
}

impl Default for ExpressionConfig {
    fn default() -> Self {
        ExpressionConfig {
            time: Duration::from_secs(1).into(),
            max_memory_bytes: 64 << 20,
            max_output_bytes: 8 << 20,
            threads: None,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 64,
            lease: Duration::from_secs(30).into(),
            poll_interval: Duration::from_secs(1).into(),
            shutdown_grace: Duration::from_secs(10).into(),
            intake_batch: 256,
            run_retries: [5, 30, 120, 600, 3600]
                .map(|secs| Duration::from_secs(secs).into())
                .to_vec(),
            expressions: ExpressionConfig::default(),
            max_claims_without_progress: 3,
            max_journal_entry_bytes: 12 << 20,
            max_run_output_bytes: 12 << 20,
        }
    }
}

/// What Patchbay tells the outside about its work: traces sent over
/// OpenTelemetry, and which headers it never records. Metrics need no
/// setting: `GET /metrics` always serves them.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP (protobuf) collector receiving traces, e.g.
    /// `http://127.0.0.1:4318`; spans are posted to `/v1/traces` under it.
    /// Tracing is off when unset. The standard `OTEL_EXPORTER_OTLP_HEADERS`
    /// and `OTEL_EXPORTER_OTLP_TIMEOUT` variables are honoured.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of exported spans.
    pub service_name: String,
    /// Share of runs traced, from 0.0 to 1.0. A run continuing a caller's
    /// trace (an incoming `traceparent`) follows the caller's decision.
    pub sample_ratio: f64,
    /// Header names whose values are replaced by `****` wherever headers
    /// are recorded (a webhook's `$headers`, a call's response headers), in
    /// addition to `Authorization`, `Proxy-Authorization`, `Cookie`,
    /// `Set-Cookie`, `X-Api-Key` and every connector's `api_key` header.
    pub redact_headers: Vec<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "patchbay".into(),
            sample_ratio: 1.0,
            redact_headers: Vec::new(),
        }
    }
}
