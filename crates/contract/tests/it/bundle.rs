//! Bundled schemas compiled by a real JSON Schema validator (draft 2020-12), and
//! the choice of response schema by status.

use std::time::{Duration, Instant};

use jsonschema::Validator;
use patchbay_contract::{Contract, Operation, Schema};
use serde_json::{Value, json};

use crate::{field, load, response};

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

fn validator(schema: Schema<'_>) -> Validator {
    let bundle = schema.bundle();
    jsonschema::validator_for(&bundle).unwrap_or_else(|e| panic!("{e}: {bundle:#}"))
}

fn op<'a>(contract: &'a Contract, id: &str) -> Operation<'a> {
    contract.operation_by_id(id).expect("operation")
}

fn accepts(validator: &Validator, instance: Value) {
    if let Err(e) = validator.validate(&instance) {
        panic!("{instance} refused: {e}");
    }
}

fn refuses(validator: &Validator, instance: Value) {
    assert!(!validator.is_valid(&instance), "{instance} accepted");
}

#[test]
fn nullable_3_0_allows_null_and_keeps_the_type() {
    let contract = load("crm/openapi.yaml");
    let page = response(&contract, "listContacts");
    let next = validator(field(page, "next"));
    accepts(&next, json!(null));
    accepts(&next, json!("cursor"));
    refuses(&next, json!(5));

    let thing = load("bundle.yaml");
    let thing = response(&thing, "getThing");
    let status = validator(field(thing, "status"));
    accepts(&status, json!(null));
    accepts(&status, json!("active"));
    refuses(&status, json!("lost"));
    refuses(&status, json!(1));

    // Beside an `allOf` and beside a `$ref`, where adding "null" to a type would not do.
    let note = validator(field(thing, "note"));
    accepts(&note, json!(null));
    accepts(&note, json!({"text": "hi"}));
    refuses(&note, json!({"text": "too long"}));
    refuses(&note, json!({}));
    let parent = validator(field(thing, "parent"));
    accepts(&parent, json!(null));
    accepts(
        &parent,
        json!({"id": 1, "parent": {"id": 2, "parent": null}}),
    );
    refuses(&parent, json!({"id": "one"}));
}

#[test]
fn all_of_across_files_validates() {
    let contract = load("crm/openapi.yaml");
    let company = op(&contract, "getCompany")
        .response_schema(202)
        .flatten()
        .expect("schema");
    let bundle = company.bundle();
    assert_eq!(bundle["$schema"], DIALECT);
    // Company → Contact (another file) → Company again, and Address in that file.
    let defs = bundle["$defs"].as_object().expect("$defs");
    assert!(defs.contains_key("Contact"), "{bundle:#}");
    assert!(defs.contains_key("Address"), "{bundle:#}");
    let serialized = bundle.to_string();
    assert!(!serialized.contains(".yaml"), "{bundle:#}");
    assert!(!serialized.contains("#/components"), "{bundle:#}");

    let company = validator(company);
    let owner = json!({
        "id": "c1",
        "email": "a@example.com",
        "name": null,
        "company": {"id": "co2", "name": "Other"},
        "addresses": [{"street": "Main St", "city": "Springfield"}]
    });
    accepts(
        &company,
        json!({"id": "co1", "name": "Acme", "owner": owner, "size": null, "tags": {"a": "b"}}),
    );
    accepts(
        &company,
        json!({"id": "co1", "name": "Acme", "owner": null}),
    );
    // `name` is required by the inline member, `id` by the referenced Base.
    refuses(&company, json!({"id": "co1"}));
    refuses(&company, json!({"name": "Acme"}));
    // Required in the other file, two refs down.
    let mut no_email = owner.clone();
    no_email.as_object_mut().unwrap().remove("email");
    refuses(
        &company,
        json!({"id": "co1", "name": "Acme", "owner": no_email}),
    );
    refuses(
        &company,
        json!({"id": "co1", "name": "Acme", "tags": {"a": 1}}),
    );
}

#[test]
fn recursive_tree_bundles_finitely_and_validates_deep() {
    let contract = load("tree.json");
    let node = response(&contract, "getNode");
    let bundle = node.bundle();
    // The node refers to itself: the root, not a copy of it.
    assert!(bundle.to_string().len() < 2_000, "{bundle:#}");
    assert_eq!(
        bundle["properties"]["children"]["items"],
        json!({"$ref": "#"})
    );
    let node = validator(node);
    let leaf = |name: &str| json!({"name": name, "label": null, "color": "red"});
    let tree = json!({
        "name": "root",
        "children": [
            {"name": "a", "children": [leaf("a1"), leaf("a2")], "parent": {"name": "root"}},
            {"name": "b", "children": []}
        ],
        "point": [1, 2.5]
    });
    accepts(&node, tree.clone());
    let mut bad = tree.clone();
    bad["children"][0]["children"][1] = json!({"label": "no name"});
    refuses(&node, bad);
    let mut bad = tree;
    bad["children"][0]["children"][0]["color"] = json!("blue");
    refuses(&node, bad);

    // 3.1 `$ref` with sibling keywords: both apply.
    let shapes = response(&contract, "getShapes");
    let labelled = validator(field(shapes, "labelled"));
    accepts(&labelled, json!({"name": "x", "extra": "y"}));
    refuses(&labelled, json!({"name": "x", "extra": 1}));
    refuses(&labelled, json!({"extra": "y"}));
    let strict = validator(field(shapes, "strict"));
    refuses(&strict, json!({"a": "x", "b": 1}));
}

#[test]
fn ref_cycles_end() {
    let started = Instant::now();
    let contract = load("cycle.yaml");
    // A → B → A with nothing else: nothing to check.
    let a = response(&contract, "getA");
    let a_validator = validator(a);
    accepts(&a_validator, json!({"anything": [1, "two"]}));
    let others = response(&contract, "getOthers");
    let bundle = others.bundle();
    assert!(bundle.to_string().len() < 2_000, "{bundle:#}");
    let others = validator(others);
    accepts(&others, json!({"c": 1, "d": null, "wide": "x"}));
    refuses(&others, json!([]));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn response_schema_picks_code_then_class_then_default() {
    let contract = load("bundle.yaml");
    let get = op(&contract, "getThing");
    let thing = get.response_schema(200).flatten().expect("200");
    assert_eq!(get.response_key(200), Some("200"));
    assert_eq!(thing.key(), "0#/components/schemas/Thing");
    // The lower-case class, for any other 2xx.
    assert_eq!(get.response_key(201), Some("2xx"));
    let accepted = get.response_schema(299).flatten().expect("2xx");
    assert_eq!(accepted.required(), ["accepted"]);
    // Exact code without a body, then the class with a `+json` one.
    assert_eq!(get.response_key(404), Some("404"));
    assert!(matches!(get.response_schema(404), Some(None)));
    assert_eq!(get.response_key(418), Some("4XX"));
    let problem = get.response_schema(418).flatten().expect("4XX");
    assert_eq!(problem.key(), "0#/components/schemas/Problem");
    // Nothing closer: the default.
    assert_eq!(get.response_key(503), Some("default"));
    assert_eq!(get.response_schema(503).flatten(), Some(problem));
    assert_eq!(get.response_key(302), Some("default"));

    let crm = load("crm/openapi.yaml");
    let delete = op(&crm, "deleteContact");
    assert!(matches!(delete.response_schema(204), Some(None)));
    // Not documented at all: no default either.
    assert!(delete.response_schema(500).is_none());
    assert_eq!(delete.response_key(500), None);
    assert!(delete.response_schema(200).is_none());
    // Documented only as CSV and plain text: no JSON schema.
    assert!(matches!(
        op(&crm, "getCompany").response_schema(200),
        Some(None)
    ));
    // Upper-case class and a response reached through a `$ref`.
    let update = op(&crm, "updateContact");
    assert_eq!(update.response_key(204), Some("2XX"));
    assert!(update.response_schema(200).flatten().is_some());
    let create = op(&crm, "createContact");
    let error = create.response_schema(400).flatten().expect("400");
    assert_eq!(error.required(), ["message"]);
    assert!(matches!(create.response_schema(200), Some(None)));
}

#[test]
fn keys_are_stable_pointers() {
    let contract = load("bundle.yaml");
    let numbers = response(&contract, "getNumbers");
    let key = "0#/paths/~1numbers/get/responses/200/content/application~1json/schema";
    assert_eq!(numbers.key(), key);
    assert_eq!(numbers.key(), key);
    assert_eq!(
        field(numbers, "above").key(),
        format!("{key}/properties/above")
    );
    // A schema in another file is keyed by that file's index.
    let crm = load("crm/openapi.yaml");
    let contact = response(&crm, "getContact");
    assert!(contact.key().ends_with("#/Contact"), "{}", contact.key());
    assert!(!contact.key().starts_with("0#"), "{}", contact.key());
}

#[test]
fn boolean_exclusive_bounds_are_converted() {
    let contract = load("bundle.yaml");
    let numbers = response(&contract, "getNumbers");
    let bundle = numbers.bundle();
    assert_eq!(
        bundle["properties"]["above"],
        json!({"type": "number", "exclusiveMinimum": 0})
    );
    let numbers = validator(numbers);
    accepts(&numbers, json!({"above": 0.5, "below": 9, "upTo": 10}));
    refuses(&numbers, json!({"above": 0}));
    refuses(&numbers, json!({"below": 10}));
    refuses(&numbers, json!({"upTo": 11}));
}

#[test]
fn dangling_refs_and_misshapen_keywords_accept_anything() {
    let contract = load("bundle.yaml");
    let broken = response(&contract, "getBroken");
    let bundle = broken.bundle();
    assert_eq!(bundle["properties"]["anchored"], json!({}));
    assert_eq!(bundle["properties"]["weird"], json!({}));
    assert_eq!(bundle["required"], json!(["anchored"]));
    let broken = validator(broken);
    accepts(&broken, json!({"anchored": {"any": "thing"}, "weird": 42}));
    refuses(&broken, json!({"weird": 42}));
}

#[test]
fn annotations_are_dropped() {
    let contract = load("bundle.yaml");
    let thing = response(&contract, "getThing").bundle();
    for keyword in [
        "description",
        "example",
        "x-internal",
        "xml",
        "externalDocs",
        "discriminator",
    ] {
        assert!(thing.get(keyword).is_none(), "{keyword}: {thing:#}");
    }
}

#[test]
fn huge_schemas_accept_anything() {
    let properties: serde_json::Map<String, Value> = (0..10_001)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let spec = json!({
        "openapi": "3.1.0",
        "info": {"title": "Huge", "version": "1"},
        "paths": {"/huge": {"get": {
            "operationId": "getHuge",
            "responses": {"200": {
                "description": "Too many properties to bundle.",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": properties
                }}}
            }}
        }}}
    });
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("huge-openapi.json");
    std::fs::write(&path, spec.to_string()).expect("write the spec");
    let contract = Contract::load(&path).expect("load");
    let huge = response(&contract, "getHuge");
    assert_eq!(huge.bundle(), json!({"$schema": DIALECT}));
    accepts(&validator(huge), json!({"p0": 1}));
}
