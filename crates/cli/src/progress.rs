//! Progress bars of long commands (`patchbay test`, a bulk replay), drawn
//! on standard error only when it is a terminal: on a pipe or in a log
//! nothing is written, so scripts read the same output as before.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting to `len`, labelled `what`. Hidden when standard error is
/// not a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    // The template is a constant: it parses, or the default bar stands in.
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}
