//! Navigating schemas: what a field read gives, elements, required names, nullability.

use std::time::{Duration, Instant};

use patchbay_contract::{Field, Schema};

use crate::{field, load, response};

fn unknown(schema: Schema<'_>, name: &str) -> Vec<String> {
    match schema.field(name) {
        Field::Unknown { known } => known.into_iter().map(str::to_string).collect(),
        other => panic!("{name}: {other:?}"),
    }
}

fn is_open(schema: Schema<'_>, name: &str) -> bool {
    matches!(schema.field(name), Field::Open)
}

/// `(optional, nullable)` of a documented field.
fn found(schema: Schema<'_>, name: &str) -> (bool, bool) {
    match schema.field(name) {
        Field::Found {
            optional, nullable, ..
        } => (optional, nullable),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn documented_object_fields_are_found_or_unknown() {
    let contract = load("crm/openapi.yaml");
    let page = response(&contract, "listContacts");
    let contact = field(page, "data").items().unwrap();
    assert_eq!(found(contact, "email"), (false, false));
    assert_eq!(found(contact, "name"), (true, true));
    assert_eq!(field(contact, "email").describe(), "string");
    assert_eq!(
        unknown(contact, "emial"),
        ["addresses", "company", "email", "id", "name"]
    );
    // A schema in another file, reached through `#/Address` relative to that file.
    let address = field(contact, "addresses").items().unwrap();
    assert_eq!(unknown(address, "zip"), ["city", "street"]);
    // `additionalProperties: false` is as closed as no key at all.
    let note = response(&contract, "getNoteJson");
    assert_eq!(unknown(note, "txt"), ["text"]);
}

#[test]
fn all_of_merges_members() {
    let contract = load("crm/openapi.yaml");
    let company = response(&contract, "getCompany");
    assert_eq!(found(company, "id"), (false, false));
    assert_eq!(found(company, "name"), (false, false));
    assert_eq!(found(company, "createdAt"), (true, false));
    assert_eq!(
        unknown(company, "nmae"),
        [
            "createdAt",
            "extras",
            "id",
            "metadata",
            "name",
            "owner",
            "settings",
            "size",
            "tags"
        ]
    );
    assert_eq!(company.required(), ["id", "name"]);
    // Reached back from the contact file into the root document.
    let contact = response(&contract, "getContact");
    assert_eq!(field(contact, "company"), company);
    // A member with an open `additionalProperties` opens the whole.
    let flexible = field(response(&contract, "kitchenSink"), "flexible");
    assert_eq!(found(flexible, "id"), (false, false));
    assert!(is_open(flexible, "anything"));
}

#[test]
fn one_of_and_any_of() {
    let contract = load("crm/openapi.yaml");
    let event = response(&contract, "listEvents").items().unwrap();
    assert_eq!(event.describe(), "object");
    // Required by every member, documented by one only, documented by none.
    assert_eq!(found(event, "kind"), (false, false));
    assert_eq!(found(event, "contact"), (true, false));
    assert_eq!(unknown(event, "knid"), ["company", "contact", "kind"]);
    assert_eq!(event.required(), ["kind"]);
    assert_eq!(event.property_names(), ["company", "contact", "kind"]);
    let sink = response(&contract, "kitchenSink");
    // A member that says nothing could be any object: nothing is unknown, and a field
    // one member documents may be something else in the other.
    let loose = field(sink, "loose");
    assert!(is_open(loose, "nope"));
    let Field::Found {
        schema, optional, ..
    } = loose.field("kind")
    else {
        panic!("kind");
    };
    assert!(optional);
    assert_eq!(schema.describe(), "any");
    // A member that cannot be an object does not open the others.
    let maybe = field(sink, "maybe");
    assert_eq!(unknown(maybe, "nope"), ["contact", "kind"]);
    assert_eq!(found(maybe, "kind"), (false, false));
    // Members that only list required names leave the object closed.
    let lookup = field(sink, "lookup");
    assert_eq!(unknown(lookup, "mail"), ["email", "id"]);
    assert_eq!(found(lookup, "id"), (false, false));
    assert_eq!(found(lookup, "email"), (true, false));
    assert_eq!(lookup.required(), ["id"]);
}

#[test]
fn open_schemas_say_nothing() {
    let contract = load("crm/openapi.yaml");
    let company = response(&contract, "getCompany");
    // additionalProperties: true, a schema, a bare `type: object`, `properties: {}`.
    for name in ["metadata", "tags", "settings", "extras"] {
        assert!(is_open(field(company, name), "whatever"), "{name}");
    }
    // Not an object at all.
    assert!(is_open(field(company, "size"), "whatever"));
    // No properties documented, no type.
    let bag = field(response(&contract, "kitchenSink"), "bag");
    assert!(is_open(bag, "whatever"));
    assert!(bag.property_names().is_empty());
    // patternProperties.
    let patch = contract
        .operation_by_id("updateContact")
        .unwrap()
        .request_schema()
        .unwrap();
    assert_eq!(found(patch, "name"), (true, false));
    assert!(is_open(patch, "x-nickname"));
    // A whole-file ref (`common.yaml`) is a schema like any other.
    let error = field(response(&contract, "kitchenSink"), "error");
    assert_eq!(found(error, "message"), (false, false));
    assert_eq!(unknown(error, "msg"), ["code", "message"]);
}

#[test]
fn nullable_in_3_0() {
    let contract = load("crm/openapi.yaml");
    let page = response(&contract, "listContacts");
    assert_eq!(found(page, "next"), (true, true));
    assert_eq!(field(page, "next").describe(), "string or null");
    let company = response(&contract, "getCompany");
    // `nullable: true` beside an `allOf` of a ref: the 3.0 way to say "or null".
    assert_eq!(found(company, "owner"), (true, true));
    assert_eq!(found(field(company, "owner"), "email"), (false, false));
    // An enum listing null.
    assert!(field(company, "size").nullable());
    assert!(!company.nullable());
}

#[test]
fn nullable_in_3_1() {
    let contract = load("tree.json");
    let node = response(&contract, "getNode");
    assert!(!node.nullable());
    assert_eq!(found(node, "label"), (true, true));
    assert_eq!(field(node, "label").describe(), "string or null");
    assert_eq!(found(node, "parent"), (true, true));
    assert_eq!(found(node, "color"), (true, true));
    assert_eq!(found(node, "name"), (false, false));
}

#[test]
fn items_of_arrays_maps_and_tuples() {
    let contract = load("tree.json");
    let node = response(&contract, "getNode");
    let child = field(node, "children").items().unwrap();
    assert_eq!(child, node);
    assert!(field(node, "point").items().is_none());
    assert_eq!(field(node, "point").describe(), "array");
    assert!(node.items().is_none());
    let crm = load("crm/openapi.yaml");
    let tags = field(response(&crm, "getCompany"), "tags");
    assert_eq!(tags.items().unwrap().describe(), "string");
    assert_eq!(
        field(response(&crm, "listContacts"), "data").describe(),
        "array of object"
    );
}

#[test]
fn recursive_schemas_navigate_lazily() {
    let contract = load("tree.json");
    let node = response(&contract, "getNode");
    let mut at = node;
    for _ in 0..200 {
        at = field(at, "children").items().unwrap();
        at = field(at, "parent");
    }
    assert_eq!(found(at, "name"), (false, false));
    assert_eq!(unknown(at, "nmae").len(), 6);
    assert_eq!(field(node, "children").describe(), "array of object");
}

#[test]
fn ref_with_siblings_is_all_of_both() {
    let contract = load("tree.json");
    let shapes = response(&contract, "getShapes");
    let labelled = field(shapes, "labelled");
    assert!(labelled.json().get("$ref").is_some());
    assert_eq!(found(labelled, "extra"), (true, false));
    assert_eq!(found(labelled, "name"), (false, false));
    assert_eq!(
        unknown(labelled, "bogus"),
        [
            "children", "color", "extra", "label", "name", "parent", "point"
        ]
    );
    // Only an annotation beside the ref: the ref is followed as if alone.
    let described = field(shapes, "described");
    assert_eq!(described, response(&contract, "getNode"));
    assert!(described.json().get("$ref").is_none());
}

#[test]
fn json_schema_2020_keywords() {
    let contract = load("tree.json");
    let shapes = response(&contract, "getShapes");
    assert_eq!(unknown(field(shapes, "strict"), "b"), ["a"]);
    let conditional = field(shapes, "conditional");
    assert_eq!(found(conditional, "a"), (true, false));
    assert!(is_open(conditional, "b"));
    let name = field(shapes, "name");
    assert!(is_open(name, "length"));
    assert!(name.items().is_none());
    assert_eq!(name.describe(), "string");
}

#[test]
fn ref_cycles_are_open_and_end_quickly() {
    let started = Instant::now();
    let contract = load("cycle.yaml");
    let a = response(&contract, "getA");
    assert!(is_open(a, "x"));
    assert!(a.items().is_none());
    assert!(!a.nullable());
    assert_eq!(a.describe(), "any");
    assert!(a.required().is_empty());
    assert!(a.property_names().is_empty());
    assert!(a.json().get("$ref").is_some());
    let others = response(&contract, "getOthers");
    for name in ["c", "d", "wide"] {
        let schema = field(others, name);
        assert!(is_open(schema, "x"), "{name}");
        assert!(schema.items().is_none(), "{name}");
        assert!(schema.required().is_empty(), "{name}");
        assert!(schema.property_names().is_empty(), "{name}");
        assert_eq!(schema.describe(), "any", "{name}");
    }
    assert!(field(others, "d").nullable());
    assert!(started.elapsed() < Duration::from_secs(10));
}
