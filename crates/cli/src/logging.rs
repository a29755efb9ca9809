//! Log output: human-readable on a terminal, JSON lines for machines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `PATCHBAY_LOG` (env-filter syntax, e.g.
/// `debug` or `patchbay_engine=trace`) overrides the command's default level.
pub fn init(format: &str, default_level: &str) {
    let filter =
        EnvFilter::try_from_env("PATCHBAY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // When the log cannot be written (its file is on a full disk), the
        // default reports that with `eprintln!`, which panics on the same
        // failure and would take down whichever task was logging. A lost
        // log line must not cost an event.
        .log_internal_errors(false);
    // `try_init`: a second initialisation (tests calling `main` twice) is harmless.
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
