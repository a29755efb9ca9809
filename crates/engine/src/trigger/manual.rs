//! `manual: {}`: a flow started by hand (`patchbay invoke FLOW`, or
//! `POST /api/v1/flows/FLOW/runs`); nothing listens for it.

use super::TriggerPlan;

pub(super) fn compile() -> TriggerPlan {
    TriggerPlan::Manual
}
