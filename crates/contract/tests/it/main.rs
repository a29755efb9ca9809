//! Integration tests of `patchbay-contract` against the hand-written specs under
//! `tests/fixtures`: loading and refusing files, finding operations, navigating schemas,
//! bundling them for a JSON Schema validator, diffing two versions of a spec; and of the
//! diff on real published descriptions (`real_apis`).

mod bundle;
mod diff;
mod load;
mod operations;
mod real_apis;
mod schemas;

use std::path::PathBuf;

use patchbay_contract::{Contract, ContractError, Schema};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn load(name: &str) -> Contract {
    Contract::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn refuse(name: &str) -> ContractError {
    match Contract::load(&fixture(name)) {
        Ok(contract) => panic!("{name} loaded: {contract:?}"),
        Err(e) => e,
    }
}

/// The success response schema of operation `id`.
pub fn response<'a>(contract: &'a Contract, id: &str) -> Schema<'a> {
    let op = contract.operation_by_id(id).expect("operation");
    op.success_response()
        .and_then(|(_, schema)| schema)
        .expect("response schema")
}

/// A schema under `#/components/schemas`, reached through an operation's response
/// schema is not always possible, so tests reach them by field navigation instead.
pub fn field<'a>(schema: Schema<'a>, name: &str) -> Schema<'a> {
    match schema.field(name) {
        patchbay_contract::Field::Found { schema, .. } => schema,
        other => panic!("{name}: {other:?}"),
    }
}
