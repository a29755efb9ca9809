//! `schedule: CRON` or `{cron, timezone}`: a flow fired by the engine's
//! scheduler. Each firing carries a dedupe key made of the flow and its
//! instant, so a restart or a reload never fires one twice.

use patchbay_config::ScheduleTrigger;

use super::TriggerPlan;

/// Configuration validation reports a bad cron or zone with its location;
/// such a flow is simply left out of the plan here.
pub(super) fn compile(schedule: &ScheduleTrigger) -> Option<TriggerPlan> {
    let cron = schedule.cron().parse::<croner::Cron>().ok()?;
    let timezone = schedule
        .timezone()
        .unwrap_or("UTC")
        .parse::<chrono_tz::Tz>()
        .ok()?;
    Some(TriggerPlan::Schedule {
        cron: Box::new(cron),
        timezone,
    })
}
