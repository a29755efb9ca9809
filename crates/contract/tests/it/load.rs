//! Loading specs, and refusing the ones we cannot read.

use patchbay_contract::ContractError;

use crate::{load, refuse};

#[test]
fn loads_yaml_with_external_refs() {
    let contract = load("crm/openapi.yaml");
    assert_eq!(contract.version(), "3.0.3");
    // The root, the contact schemas and the error schema, the root reached again
    // from contact.yaml through `../openapi.yaml` not loaded twice.
    let debug = format!("{contract:?}");
    assert!(debug.contains("schemas/contact.yaml"), "{debug}");
    assert!(debug.contains("common.yaml"), "{debug}");
    assert_eq!(debug.matches("openapi.yaml").count(), 1, "{debug}");
}

#[test]
fn loads_json() {
    let contract = load("tree.json");
    assert_eq!(contract.version(), "3.1.0");
    assert_eq!(contract.operation_ids(), ["getNode", "getShapes"]);
}

#[test]
fn refuses_swagger_2() {
    let e = refuse("swagger.yaml");
    assert!(matches!(e, ContractError::Swagger { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.ends_with(
            "swagger.yaml: Swagger 2.0 documents are not supported; convert it to OpenAPI 3 \
             (for example with swagger2openapi)"
        ),
        "{message}"
    );
}

#[test]
fn refuses_other_versions() {
    let message = refuse("future.yaml").to_string();
    assert!(
        message.ends_with(
            "future.yaml: `openapi: 4.0.0` is not a supported version; Patchbay reads \
             OpenAPI 3.0.x and 3.1.x documents"
        ),
        "{message}"
    );
    let message = refuse("unquoted.yaml").to_string();
    assert!(message.contains("`openapi: 3.1` is a number"), "{message}");
    let message = refuse("not-openapi.json").to_string();
    assert!(
        message.contains("not-openapi.json: no `openapi` field"),
        "{message}"
    );
}

#[test]
fn missing_external_file_names_the_ref() {
    let e = refuse("missing-file.yaml");
    assert!(matches!(e, ContractError::MissingFile { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("missing-file.yaml: $ref 'schemas/nowhere.yaml#/Thing' names "),
        "{message}"
    );
    assert!(
        message.contains("/fixtures/schemas/nowhere.yaml, which cannot be loaded: "),
        "{message}"
    );
}

#[test]
fn dangling_pointer_names_the_ref_and_its_target() {
    let e = refuse("dangling.yaml");
    let message = e.to_string();
    assert!(matches!(e, ContractError::DanglingRef { .. }), "{e:?}");
    assert!(
        message.contains(
            "dangling.yaml: $ref 'crm/schemas/contact.yaml#/Contakt' points at nothing in"
        ),
        "{message}"
    );
    assert!(message.ends_with("crm/schemas/contact.yaml"), "{message}");
}

#[test]
fn refuses_remote_refs() {
    let message = refuse("remote.yaml").to_string();
    assert!(
        message.ends_with(
            "remote.yaml: remote $ref 'https://example.com/schemas/thing.json' is not \
             supported; download it next to the spec"
        ),
        "{message}"
    );
}

#[test]
fn refuses_missing_root_and_bad_yaml() {
    let e = refuse("nowhere.yaml");
    assert!(matches!(e, ContractError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("nowhere.yaml: cannot read the file"));
    let e = refuse("broken.yaml");
    assert!(matches!(e, ContractError::Parse { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("broken.yaml: not valid JSON or YAML"),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn a_ref_cycle_loads_and_does_not_hang() {
    let contract = load("cycle.yaml");
    // `/loop` is a path item that is a ref to itself: skipped, not followed forever.
    let paths: Vec<&str> = contract.operations().iter().map(|op| op.path()).collect();
    assert_eq!(paths, ["/a", "/others"]);
}
