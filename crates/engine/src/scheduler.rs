//! The scheduler: starts runs of `schedule` flows when their cron fires.
//!
//! Each firing is enqueued with the dedupe key `schedule:FLOW:TIME`, so if
//! several nodes (or a restarted one) fire the same instant, one run exists.

use chrono::Utc;
use patchbay_store::NewRun;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::intake::Intake;

pub(crate) struct Schedule {
    pub flow: String,
    pub cron: croner::Cron,
    pub timezone: chrono_tz::Tz,
    pub config_version: String,
}

impl Schedule {
    pub async fn run(self, intake: Intake, shutdown: CancellationToken) {
        loop {
            let now = Utc::now().with_timezone(&self.timezone);
            let next = match self.cron.find_next_occurrence(&now, false) {
                Ok(next) => next,
                Err(e) => {
                    warn!(flow = %self.flow, error = %e, "schedule has no next occurrence; it stops");
                    return;
                }
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
            let scheduled_at = next.with_timezone(&Utc);
            let run = NewRun {
                id: uuid::Uuid::now_v7(),
                flow: self.flow.clone(),
                trigger: "schedule".into(),
                input: json!({ "scheduled_at": scheduled_at.to_rfc3339() }),
                headers: json!({}),
                config_version: self.config_version.clone(),
                dedupe_key: Some(format!(
                    "schedule:{}:{}",
                    self.flow,
                    scheduled_at.timestamp_millis()
                )),
                parent: None,
            };
            match intake.submit(run).await {
                Ok(outcome) => {
                    info!(flow = %self.flow, run_id = %outcome.run_id(), "schedule fired")
                }
                Err(e) => warn!(flow = %self.flow, error = %e, "scheduled run not committed"),
            }
        }
    }
}
