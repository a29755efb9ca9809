//! Log output: human-readable on a terminal, JSON lines for machines, and
//! (when a project asks) trace export.
//!
//! Two layers, each with its own filter: the log layer follows
//! `PATCHBAY_LOG` (or the command's default level); the trace layer takes
//! Patchbay's own spans at `info` whatever the log level, so quieting logs
//! never thins out traces.
//!
//! Inside a run every line carries the run's span fields (`run_id`, `flow`,
//! `attempt`, and `step` and `kind` inside a step): as `run{...}:step{...}`
//! prefixes in text, as flat keys in JSON (see [`crate::json_log`]).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::json_log::FlatJson;
use crate::telemetry::Tracing;

/// Keeps the trace pipeline alive; [`LogGuard::finish`] flushes it.
#[must_use]
pub struct LogGuard {
    tracing: Option<Tracing>,
}

impl LogGuard {
    /// Exports the spans still queued. Blocking: call it after the runtime
    /// has stopped.
    pub fn finish(self) {
        if let Some(tracing) = self.tracing {
            tracing.shutdown();
        }
    }
}

/// Installs the global subscriber. `PATCHBAY_LOG` (env-filter syntax, e.g.
/// `debug` or `patchbay_engine=trace`) overrides the command's default level.
/// `tracing` adds trace export.
pub fn init(format: &str, default_level: &str, tracing: Option<Tracing>) -> LogGuard {
    let filter =
        EnvFilter::try_from_env("PATCHBAY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only on a terminal, and never with `NO_COLOR` set to anything
    // (no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if format == "json" {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson {
                trace_ids: tracing.is_some(),
            })
            .with_writer(std::io::stderr)
            // When the log cannot be written (its file is on a full disk),
            // the default reports that with `eprintln!`, which panics on the
            // same failure and would take down whichever task was logging. A
            // lost log line must not cost an event.
            .log_internal_errors(false)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .with_filter(filter)
            .boxed()
    };
    let traces = tracing.as_ref().map(|tracing| {
        tracing_opentelemetry::layer()
            .with_tracer(tracing.tracer())
            .with_filter(
                Targets::new()
                    .with_target("patchbay", LevelFilter::INFO)
                    .with_default(LevelFilter::OFF),
            )
    });
    // `try_init`: a second initialisation (tests calling `main` twice) is harmless.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    LogGuard { tracing }
}
