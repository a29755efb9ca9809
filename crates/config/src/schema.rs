//! JSON Schema of the configuration, derived from the Rust types so it cannot
//! drift from what the loader accepts. Editors use it for completion and
//! checking (`# yaml-language-server: $schema=patchbay.schema.json`).

use crate::flow::FlowConfig;
use crate::project::ProjectConfig;

/// Schema of `patchbay.yaml`.
pub fn project_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(ProjectConfig);
    schema.insert("title".into(), "Patchbay project (patchbay.yaml)".into());
    schema.to_value()
}

/// Schema of one flow file (`flows/NAME.yaml`).
pub fn flow_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(FlowConfig);
    schema.insert("title".into(), "Patchbay flow (flows/NAME.yaml)".into());
    schema.to_value()
}
