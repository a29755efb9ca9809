//! `manual: {}`: a flow started by hand (`patchbay invoke FLOW`, or
//! `POST /api/v1/flows/FLOW/runs`); nothing listens for it.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Kind, Trigger, TriggerCompiler};

/// Manual trigger; takes no options (write `manual: {}` or `manual:`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {}

#[derive(Debug)]
pub(crate) struct Manual;

impl Kind for Manual {
    const KEY: &'static str = "manual";
    type Config = Option<ManualTrigger>;

    fn compile(_: Option<ManualTrigger>, _: &mut TriggerCompiler<'_>) -> Option<Self> {
        Some(Manual)
    }
}

impl Trigger for Manual {
    fn describe(&self) -> Map<String, Value> {
        Map::new()
    }
}
