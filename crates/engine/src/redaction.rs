//! What the engine keeps out of the journal, run records and logs.
//!
//! By name: the values of sensitive headers are replaced by `****` in a
//! webhook's `$headers` before the run is committed (so a flow cannot read
//! them either: senders are authenticated with `verify`, not by a flow), and
//! in a call's response headers before they become the step's output.
//!
//! By value: every resolved secret (webhook `verify` secrets here, connector
//! credentials in [`patchbay_connector::Connectors::masker`]) is masked in
//! what is written to the journal and the run record, in case an upstream
//! echoed one. The step's in-memory output is left as it was, so later steps
//! of the same run see what the upstream sent.
//!
//! See [`patchbay_connector::redact`] for the rules themselves.

use patchbay_connector::redact::{Masker, SensitiveHeaders};

/// A plan's redaction rules.
#[derive(Clone, Debug, Default)]
pub struct Redaction {
    /// Header names whose values are never recorded.
    pub headers: SensitiveHeaders,
    /// Resolved webhook secrets.
    pub masker: Masker,
}

impl Redaction {
    /// The default sensitive headers plus a project's `redact_headers`.
    pub fn new(redact_headers: &[String]) -> Redaction {
        let mut headers = SensitiveHeaders::default();
        headers.extend(redact_headers);
        Redaction {
            headers,
            masker: Masker::default(),
        }
    }
}
