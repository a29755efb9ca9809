//! Finding operations and reading what they take and return.

use patchbay_contract::{Contract, Field, Segment};

use crate::load;

fn path(text: &str) -> Vec<Segment> {
    text.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "_" => Segment::Hole,
            s => Segment::Literal(s.to_string()),
        })
        .collect()
}

fn matched(contract: &Contract, method: &str, text: &str) -> Option<String> {
    contract
        .match_operation(method, &path(text))
        .map(|op| format!("{} {}", op.method(), op.path()))
}

#[test]
fn operation_by_id_and_listing() {
    let contract = load("crm/openapi.yaml");
    let op = contract.operation_by_id("getContact").unwrap();
    assert_eq!(op.method(), "GET");
    assert_eq!(op.path(), "/contacts/{contactId}");
    assert_eq!(op.operation_id(), Some("getContact"));
    assert!(contract.operation_by_id("getContacts").is_none());
    assert_eq!(
        contract.operation_ids(),
        [
            "getCompany",
            "listContacts",
            "createContact",
            "searchContacts",
            "getContact",
            "deleteContact",
            "updateContact",
            "getNoteJson",
            "listEvents",
            "kitchenSink",
        ]
    );
    let all: Vec<String> = contract
        .operations()
        .iter()
        .map(|op| format!("{} {}", op.method(), op.path()))
        .collect();
    assert!(
        all.contains(&"PATCH /contacts/{contactId}".to_string()),
        "{all:?}"
    );
    assert_eq!(all.len(), 10);
}

#[test]
fn literal_path_beats_templated() {
    let contract = load("crm/openapi.yaml");
    assert_eq!(
        matched(&contract, "GET", "/contacts/search").as_deref(),
        Some("GET /contacts/search")
    );
    assert_eq!(
        matched(&contract, "GET", "/contacts/c_42").as_deref(),
        Some("GET /contacts/{contactId}")
    );
    // No concrete `PATCH /contacts/search`, so the templated path serves it.
    assert_eq!(
        matched(&contract, "PATCH", "/contacts/search").as_deref(),
        Some("PATCH /contacts/{contactId}")
    );
}

#[test]
fn hole_matches_only_templates() {
    let contract = load("crm/openapi.yaml");
    assert_eq!(
        matched(&contract, "GET", "/contacts/_").as_deref(),
        Some("GET /contacts/{contactId}")
    );
    assert_eq!(matched(&contract, "GET", "/_/search"), None);
    // A segment mixing text and a template matches anything, holes included.
    assert_eq!(
        matched(&contract, "GET", "/contacts/_/notes/_").as_deref(),
        Some("GET /contacts/{contactId}/notes/{noteId}.json")
    );
}

#[test]
fn trailing_slashes_are_ignored_and_method_case_too() {
    let contract = load("crm/openapi.yaml");
    // The spec writes `/companies/{companyId}/`, the flow no trailing slash.
    assert_eq!(
        matched(&contract, "GET", "/companies/_").as_deref(),
        Some("GET /companies/{companyId}/")
    );
    assert_eq!(
        matched(&contract, "get", "/contacts/").as_deref(),
        Some("GET /contacts")
    );
}

#[test]
fn wrong_method_or_path_matches_nothing() {
    let contract = load("crm/openapi.yaml");
    assert_eq!(matched(&contract, "PUT", "/contacts"), None);
    assert_eq!(matched(&contract, "GET", "/contact"), None);
    assert_eq!(matched(&contract, "GET", "/contacts/1/2"), None);
}

#[test]
fn path_params_in_template_order() {
    let contract = load("crm/openapi.yaml");
    let op = contract.operation_by_id("getNoteJson").unwrap();
    assert_eq!(op.path_params(), ["contactId", "noteId"]);
    assert!(
        contract
            .operation_by_id("listContacts")
            .unwrap()
            .path_params()
            .is_empty()
    );
}

#[test]
fn parameters_merge_path_level_and_refs() {
    let contract = load("crm/openapi.yaml");
    let list = contract.operation_by_id("listContacts").unwrap();
    // `tenant` comes from the path level through a ref; the operation's `limit`
    // overrides the optional path-level one; the header `limit` is another parameter.
    assert_eq!(list.required_query(), ["tenant", "limit"]);
    assert_eq!(list.query_params(), ["tenant", "limit", "cursor"]);
    let create = contract.operation_by_id("createContact").unwrap();
    assert_eq!(create.required_query(), ["tenant"]);
    assert_eq!(create.query_params(), ["tenant", "limit"]);
    let search = contract.operation_by_id("searchContacts").unwrap();
    assert_eq!(search.required_query(), ["q"]);
}

#[test]
fn request_schema_and_required() {
    let contract = load("crm/openapi.yaml");
    let create = contract.operation_by_id("createContact").unwrap();
    assert!(create.request_body_required());
    let body = create.request_schema().unwrap();
    assert_eq!(body.required(), ["email"]);
    assert_eq!(body.property_names(), ["email", "name"]);
    // `application/merge-patch+json` counts as JSON; the body is optional.
    let update = contract.operation_by_id("updateContact").unwrap();
    assert!(!update.request_body_required());
    assert_eq!(update.request_schema().unwrap().property_names(), ["name"]);
    let get = contract.operation_by_id("getContact").unwrap();
    assert!(get.request_schema().is_none());
    assert!(!get.request_body_required());
}

#[test]
fn success_response_picks_the_lowest_2xx_with_a_schema() {
    let contract = load("crm/openapi.yaml");
    let status = |id: &str| {
        let op = contract.operation_by_id(id).unwrap();
        op.success_response()
            .map(|(status, schema)| (status, schema.map(|s| s.describe())))
    };
    // 200 has no body, so the 201 wins.
    assert_eq!(
        status("createContact"),
        Some(("201", Some("object".into())))
    );
    // 200 documents only two non-JSON types: 202 has the JSON schema.
    assert_eq!(status("getCompany"), Some(("202", Some("object".into()))));
    assert_eq!(
        status("listEvents"),
        Some(("2XX", Some("array of object".into())))
    );
    assert_eq!(
        status("updateContact"),
        Some(("2XX", Some("object".into())))
    );
    assert_eq!(status("deleteContact"), Some(("204", None)));
    // Through a `~1`- and `%7B`-escaped pointer to another operation's response.
    assert_eq!(
        status("searchContacts"),
        Some(("200", Some("object".into())))
    );
    let search = crate::response(&contract, "searchContacts");
    let get = crate::response(&contract, "getContact");
    assert_eq!(search, get);
    assert!(matches!(search.field("email"), Field::Found { .. }));
}
