//! Process-wide settings: HTTP server, store and engine.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60).into(),
        }
    }
}

/// Where runs, the journal and flow state are kept.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database file, relative to the project folder.
    pub path: String,
    /// How long finished runs (succeeded, skipped, dead) and their journal
    /// are kept after they finish (default `30d`); `0s` keeps them forever.
    /// A webhook's dedupe key is remembered as long as its run is.
    pub retention: HumanDuration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: ".patchbay/patchbay.db".into(),
            retention: Duration::from_secs(30 * 24 * 3600).into(),
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
        }
    }
}
