//! `webhook: {path, mode, timeout, max_body_bytes, verify, dedupe}`: a flow
//! started by an HTTP POST on a path of the server. Compiling builds the
//! signature check (see [`crate::verify`]) and the dedupe expression; the
//! server crate serves the path.

use std::time::Duration;

use patchbay_config::{WebhookMode, WebhookTrigger};
use patchbay_expr::Expr;

use super::TriggerCompiler;
use crate::verify::VerifyPlan;

/// How long a `sync` webhook waits for `respond` by default.
const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// A webhook trigger, as the HTTP edge needs it.
#[derive(Clone, Debug)]
pub struct WebhookPlan {
    pub path: String,
    pub mode: WebhookMode,
    /// How long a `sync` webhook waits for `respond`.
    pub timeout: Duration,
    /// Per-flow body limit; `None` means the server's default.
    pub max_body_bytes: Option<usize>,
    /// The signature every request must carry, when `verify` is set.
    pub verify: Option<Box<VerifyPlan>>,
    /// The event's dedupe key, when `dedupe` is set: evaluated over the
    /// event with `$headers`.
    pub dedupe: Option<Expr>,
}

pub(super) fn compile(
    hook: &WebhookTrigger,
    compiler: &mut TriggerCompiler<'_>,
) -> Option<WebhookPlan> {
    // Both are checked before either stops the flow.
    let verify = match &hook.verify {
        Some(verify) => crate::verify::compile(
            compiler.file,
            compiler.flow,
            verify,
            compiler.env,
            compiler.webhook_secrets,
            compiler.report,
        )
        .map(|verify| Some(Box::new(verify))),
        None => Some(None),
    };
    let dedupe = match &hook.dedupe {
        Some(source) => match Expr::compile(source) {
            Ok(expr) => Some(Some(expr)),
            Err(e) => {
                let flow = compiler.flow;
                compiler.error(
                    source.line,
                    source.column,
                    format!("flow `{flow}`: invalid jq in `dedupe`: {e}"),
                );
                None
            }
        },
        None => Some(None),
    };
    let (verify, dedupe) = (verify?, dedupe?);
    Some(WebhookPlan {
        path: hook.path.clone(),
        mode: hook.mode,
        timeout: hook.timeout.map(|t| t.0).unwrap_or(DEFAULT_SYNC_TIMEOUT),
        max_body_bytes: hook.max_body_bytes,
        verify,
        dedupe,
    })
}
