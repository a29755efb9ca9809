//! Breaking-change detection between two versions of a spec: one fixture pair per rule
//! under `tests/fixtures/diff/RULE/{old,new}.yaml` giving exactly that change, and
//! pairs that must give nothing (or a known, ordered set).

use std::collections::BTreeSet;

use patchbay_contract::diff::RULES;
use patchbay_contract::{Change, Contract, Severity, diff};

use crate::load;

fn pair(name: &str) -> (Contract, Contract) {
    (
        load(&format!("diff/{name}/old.yaml")),
        load(&format!("diff/{name}/new.yaml")),
    )
}

fn changes(name: &str) -> Vec<Change> {
    let (old, new) = pair(name);
    diff(&old, &new)
}

fn show(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| format!("  {} ({:?}): {}\n", c.rule, c.severity, c.message))
        .collect()
}

/// The one change of fixture pair `rule`, checked against what the rule says.
fn check(
    rule: &str,
    severity: Severity,
    operation: Option<&str>,
    old: Option<&str>,
    new: Option<&str>,
) -> Change {
    let found = changes(rule);
    assert_eq!(
        found.len(),
        1,
        "{rule}: expected one change, got\n{}",
        show(&found)
    );
    let change = found.into_iter().next().unwrap();
    assert_eq!(change.rule, rule, "{change:#?}");
    assert_eq!(change.severity, severity, "{change:#?}");
    assert_eq!(change.operation.as_deref(), operation, "{change:#?}");
    assert_eq!(
        change.old.as_ref().map(|l| l.pointer.as_str()),
        old,
        "{change:#?}"
    );
    assert_eq!(
        change.new.as_ref().map(|l| l.pointer.as_str()),
        new,
        "{change:#?}"
    );
    for (location, file) in [(&change.old, "old.yaml"), (&change.new, "new.yaml")] {
        if let Some(location) = location {
            assert!(location.file.ends_with(file), "{change:#?}");
        }
    }
    assert!(!change.message.is_empty() && !change.message.contains('\n'));
    change
}

macro_rules! rules {
    ($($test:ident: $rule:literal, $severity:ident, $operation:expr, $old:expr, $new:expr;)*) => {
        $(
            #[test]
            fn $test() {
                check($rule, Severity::$severity, $operation, $old, $new);
            }
        )*

        /// The rules tested above.
        const TESTED: &[&str] = &[$($rule),*];
    };
}

const GET_ONE: Option<&str> = Some("GET /contacts/{id}");
const LIST: Option<&str> = Some("GET /contacts");
const CREATE: Option<&str> = Some("POST /contacts");
const NEW_CONTACT: &str = "/components/schemas/NewContact/properties";
const CONTACT: &str = "/components/schemas/Contact/properties";

fn at(pointer: &'static str) -> Option<&'static str> {
    Some(pointer)
}

/// `NEW_CONTACT` or `CONTACT` plus a property, leaked: tests only.
fn prop(base: &str, name: &str) -> Option<&'static str> {
    Some(Box::leak(format!("{base}/{name}").into_boxed_str()))
}

rules! {
    operation_removed: "operation-removed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get"), None;
    path_changed: "path-changed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get"), at("/paths/~1people~1{id}/get");
    operation_id_changed: "operation-id-changed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get"), at("/paths/~1contacts~1{id}/get");
    operation_deprecated: "operation-deprecated", Warning, GET_ONE, at("/paths/~1contacts~1{id}/get"), at("/paths/~1contacts~1{id}/get");
    operation_added: "operation-added", Info, CREATE, None, at("/paths/~1contacts/post");
    comparison_stopped: "comparison-stopped", Info, Some("GET /reports"), at("/paths/~1reports/get"), at("/paths/~1reports/get");
    server_url_changed: "server-url-changed", Breaking, None, at("/servers/0"), at("/servers");
    security_scheme_changed: "security-scheme-changed", Breaking, None, at("/components/securitySchemes/key"), at("/components/securitySchemes/key");
    security_requirements_changed: "security-requirements-changed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get/security"), at("/paths/~1contacts~1{id}/get/security");
    parameter_added_required: "request-parameter-added-required", Breaking, LIST, None, at("/paths/~1contacts/get/parameters/1");
    parameter_became_required: "request-parameter-became-required", Breaking, LIST, at("/paths/~1contacts/get/parameters/0"), at("/paths/~1contacts/get/parameters/0");
    parameter_type_changed: "request-parameter-type-changed", Breaking, LIST, at("/paths/~1contacts/get/parameters/0/schema"), at("/paths/~1contacts/get/parameters/0/schema");
    parameter_removed: "request-parameter-removed", Warning, LIST, at("/paths/~1contacts/get/parameters/1"), None;
    parameter_deprecated: "request-parameter-deprecated", Warning, LIST, at("/paths/~1contacts/get/parameters/0"), at("/paths/~1contacts/get/parameters/0");
    parameter_serialization_changed: "request-parameter-serialization-changed", Warning, LIST, at("/paths/~1contacts/get/parameters/0"), at("/paths/~1contacts/get/parameters/0");
    parameter_added_optional: "request-parameter-added-optional", Info, LIST, None, at("/paths/~1contacts/get/parameters/1");
    body_added_required: "request-body-added-required", Breaking, CREATE, None, at("/paths/~1contacts/post/requestBody");
    body_became_required: "request-body-became-required", Breaking, CREATE, at("/paths/~1contacts/post/requestBody"), at("/paths/~1contacts/post/requestBody");
    request_media_type_removed: "request-media-type-removed", Breaking, CREATE, at("/paths/~1contacts/post/requestBody/content/application~1x-www-form-urlencoded"), None;
    body_removed: "request-body-removed", Warning, CREATE, at("/paths/~1contacts/post/requestBody"), None;
    body_added_optional: "request-body-added-optional", Info, CREATE, None, at("/paths/~1contacts/post/requestBody");
    property_added_required: "request-property-added-required", Breaking, CREATE, None, prop(NEW_CONTACT, "phone");
    property_became_required: "request-property-became-required", Breaking, CREATE, prop(NEW_CONTACT, "email"), prop(NEW_CONTACT, "email");
    request_type_changed: "request-property-type-changed", Breaking, CREATE, prop(NEW_CONTACT, "age"), prop(NEW_CONTACT, "age");
    request_type_narrowed: "request-property-type-narrowed", Breaking, CREATE, prop(NEW_CONTACT, "score"), prop(NEW_CONTACT, "score");
    request_became_not_nullable: "request-property-became-not-nullable", Breaking, CREATE, prop(NEW_CONTACT, "nickname"), prop(NEW_CONTACT, "nickname");
    request_enum_value_removed: "request-enum-value-removed", Breaking, CREATE, prop(NEW_CONTACT, "status"), prop(NEW_CONTACT, "status");
    request_enum_added: "request-enum-added", Breaking, CREATE, prop(NEW_CONTACT, "status"), prop(NEW_CONTACT, "status");
    max_length_decreased: "request-property-max-length-decreased", Breaking, CREATE, prop(NEW_CONTACT, "name"), prop(NEW_CONTACT, "name");
    min_length_increased: "request-property-min-length-increased", Breaking, CREATE, prop(NEW_CONTACT, "name"), prop(NEW_CONTACT, "name");
    max_decreased: "request-max-decreased", Breaking, CREATE, prop(NEW_CONTACT, "age"), prop(NEW_CONTACT, "age");
    min_increased: "request-min-increased", Breaking, CREATE, prop(NEW_CONTACT, "age"), prop(NEW_CONTACT, "age");
    max_items_decreased: "request-max-items-decreased", Breaking, CREATE, prop(NEW_CONTACT, "tags"), prop(NEW_CONTACT, "tags");
    min_items_increased: "request-min-items-increased", Breaking, CREATE, prop(NEW_CONTACT, "tags"), prop(NEW_CONTACT, "tags");
    request_property_removed: "request-property-removed", Warning, CREATE, prop(NEW_CONTACT, "nickname"), None;
    request_pattern_changed: "request-pattern-changed", Warning, CREATE, prop(NEW_CONTACT, "phone"), prop(NEW_CONTACT, "phone");
    request_format_changed: "request-format-changed", Warning, CREATE, prop(NEW_CONTACT, "email"), prop(NEW_CONTACT, "email");
    request_variant_removed: "request-variant-removed", Warning, Some("POST /parties"), at("/components/schemas/Company"), None;
    property_added_optional: "request-property-added-optional", Info, CREATE, None, prop(NEW_CONTACT, "phone");
    status_removed: "response-status-removed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get/responses/200"), None;
    response_media_type_removed: "response-media-type-removed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get/responses/200/content/text~1csv"), None;
    header_removed: "response-header-removed", Breaking, GET_ONE, at("/paths/~1contacts~1{id}/get/responses/200/headers/X-Rate-Limit"), None;
    status_added: "response-status-added", Warning, GET_ONE, None, at("/paths/~1contacts~1{id}/get/responses/404");
    response_property_removed: "response-property-removed", Breaking, LIST, prop(CONTACT, "email"), None;
    response_property_renamed: "response-property-renamed", Breaking, LIST, prop(CONTACT, "email"), prop(CONTACT, "mail");
    response_type_changed: "response-property-type-changed", Breaking, GET_ONE, prop(CONTACT, "age"), prop(CONTACT, "age");
    response_became_optional: "response-property-became-optional", Breaking, GET_ONE, prop(CONTACT, "email"), prop(CONTACT, "email");
    response_became_nullable: "response-property-became-nullable", Breaking, GET_ONE, prop(CONTACT, "email"), prop(CONTACT, "email");
    response_enum_value_added: "response-enum-value-added", Warning, GET_ONE, prop(CONTACT, "status"), prop(CONTACT, "status");
    response_enum_removed: "response-enum-removed", Warning, GET_ONE, prop(CONTACT, "status"), prop(CONTACT, "status");
    response_format_changed: "response-format-changed", Warning, GET_ONE, prop(CONTACT, "born"), prop(CONTACT, "born");
    response_variant_added: "response-variant-added", Warning, Some("GET /parties/{id}"), None, at("/components/schemas/Bot");
    response_property_added: "response-property-added", Info, GET_ONE, None, prop(CONTACT, "phone");
    response_became_required: "response-property-became-required", Info, GET_ONE, prop(CONTACT, "email"), prop(CONTACT, "email");
    response_variant_removed: "response-variant-removed", Info, Some("GET /parties/{id}"), at("/components/schemas/Bot"), None;
}

#[test]
fn every_rule_has_a_fixture_pair_and_a_test() {
    let listed: BTreeSet<&str> = RULES.iter().map(|(id, _)| *id).collect();
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    assert_eq!(listed, tested);
    assert_eq!(listed.len(), RULES.len(), "rule ids are unique");
    assert!(RULES.len() >= 25);
    for (id, _) in RULES {
        assert!(
            crate::fixture(&format!("diff/{id}/old.yaml")).is_file()
                && crate::fixture(&format!("diff/{id}/new.yaml")).is_file(),
            "{id}"
        );
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{id}"
        );
    }
}

#[test]
fn identical_documents_have_no_changes() {
    let mut names = vec!["crm/openapi.yaml".to_string(), "bundle.yaml".to_string()];
    for (id, _) in RULES {
        names.push(format!("diff/{id}/old.yaml"));
        names.push(format!("diff/{id}/new.yaml"));
    }
    for extra in ["cosmetic", "rewritten", "recursive", "many", "hostile"] {
        names.push(format!("diff/{extra}/old.yaml"));
        names.push(format!("diff/{extra}/new.yaml"));
    }
    for name in names {
        // Loaded twice, so that no node is shared between the two.
        let (old, new) = (load(&name), load(&name));
        let found: Vec<Change> = diff(&old, &new)
            .into_iter()
            .filter(|c| c.rule != "comparison-stopped")
            .collect();
        assert!(found.is_empty(), "{name}:\n{}", show(&found));
    }
}

#[test]
fn descriptions_summaries_and_examples_are_ignored() {
    let found = changes("cosmetic");
    assert!(found.is_empty(), "{}", show(&found));
}

#[test]
fn equivalent_rewrites_are_not_changes() {
    // 3.0 to 3.1, inline schemas to components and back, allOf splits, nullable as a
    // type, refs to parameters, bodies and responses, a renamed and moved path
    // parameter, a media type parameter, a header name's case, a trailing slash.
    let found = changes("rewritten");
    assert!(found.is_empty(), "{}", show(&found));
}

#[test]
fn renamed_path_parameters_are_not_changes() {
    let found = changes("renamed-path-params");
    assert!(found.is_empty(), "{}", show(&found));
}

#[test]
fn recursive_schemas_terminate_and_report_once() {
    let found = changes("recursive");
    let summary: Vec<(&str, Option<&str>, Vec<String>)> = found
        .iter()
        .map(|c| (c.rule, c.operation.as_deref(), c.field.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "response-property-type-changed",
                Some("GET /people/{id}"),
                vec!["employer".to_string(), "name".to_string()]
            ),
            (
                "response-property-type-changed",
                Some("GET /trees/{id}"),
                vec!["name".to_string()]
            ),
        ],
        "{}",
        show(&found)
    );
}

#[test]
fn response_changes_name_the_field_a_flow_reads() {
    let removed = changes("response-property-removed").remove(0);
    assert_eq!(removed.field, ["contacts", "[]", "email"]);
    assert_eq!(removed.response.as_deref(), Some("200"));
    assert_eq!(
        removed.message,
        "response 200 property `contacts[].email` was removed"
    );
    let renamed = changes("response-property-renamed").remove(0);
    assert_eq!(renamed.field, ["contacts", "[]", "email"]);
    assert!(
        renamed.message.starts_with(
            "response 200 property `contacts[].email` was renamed to `contacts[].mail`"
        ),
        "{}",
        renamed.message
    );
    // Request changes carry no field; their message names the property.
    let request = changes("request-property-type-changed").remove(0);
    assert!(request.field.is_empty());
    assert_eq!(request.response, None);
    assert_eq!(
        request.message,
        "request body property `age` changed type from integer to string"
    );
    let param = changes("request-parameter-type-changed").remove(0);
    assert_eq!(
        param.message,
        "query parameter `limit` changed type from integer to string"
    );
    let moved = changes("path-changed").remove(0);
    assert!(moved.message.contains("operationId"), "{}", moved.message);
    assert!(moved.message.contains("/people/{id}"), "{}", moved.message);
}

#[test]
fn results_are_sorted_and_deterministic() {
    let first = changes("many");
    let second = changes("many");
    assert_eq!(first, second);
    let keys: Vec<_> = first
        .iter()
        .map(|c| {
            (
                std::cmp::Reverse(c.severity),
                c.rule,
                c.operation.clone(),
                c.old.as_ref().or(c.new.as_ref()).map(|l| l.pointer.clone()),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let rules: Vec<&str> = first.iter().map(|c| c.rule).collect();
    assert_eq!(
        rules,
        [
            "operation-removed",
            "request-body-became-required",
            "request-parameter-became-required",
            "request-parameter-type-changed",
            "request-property-added-required",
            "request-property-became-required",
            "request-property-max-length-decreased",
            "response-property-became-optional",
            "response-property-removed",
            "response-property-type-changed",
            "operation-deprecated",
            "response-enum-value-added",
            "response-enum-value-added",
            "response-status-added",
            "operation-added",
            "request-parameter-added-optional",
            "response-property-added",
            "response-property-added",
        ],
        "{}",
        show(&first)
    );
    // Serialised as the API and CLI show it.
    let json = serde_json::to_value(&first[0]).unwrap();
    assert_eq!(json["severity"], "breaking");
    assert_eq!(json["rule"], "operation-removed");
    assert_eq!(json["operation"], "DELETE /contacts/{id}");
    assert_eq!(json["new"], serde_json::Value::Null);
    assert_eq!(json["old"]["pointer"], "/paths/~1contacts~1{id}/delete");
}

#[test]
fn hostile_documents_do_not_panic() {
    let (old, new) = pair("hostile");
    let normal = load("crm/openapi.yaml");
    for (a, b) in [(&old, &new), (&new, &old), (&old, &normal), (&normal, &new)] {
        let _ = diff(a, b);
    }
}

#[test]
fn shared_components_are_reported_under_each_path() {
    let found = changes("shared");
    let fields: Vec<String> = found.iter().map(|c| c.field.join(".")).collect();
    // `User.email` is read as `user.email`, `assignees[].email` and, through the
    // recursive `Thread`, `parent.author.email`; a path does not enter `Thread` twice,
    // so `parent.replies[].author.email` is not listed.
    assert_eq!(
        fields,
        ["assignees.[].email", "parent.author.email", "user.email"],
        "{}",
        show(&found)
    );
    assert!(found.iter().all(|c| c.rule == "response-property-removed"
        && c.old.as_ref().unwrap().pointer == "/components/schemas/User/properties/email"));
}
