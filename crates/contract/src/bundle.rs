//! Bundling: a schema of the spec turned into one self-contained JSON Schema (draft
//! 2020-12) document, so that replies can be checked at run time by a JSON Schema
//! validator.
//!
//! A validator compiles one JSON Schema document and resolves `$ref`s against it. A
//! response schema is not such a document: it is a node inside an OpenAPI document,
//! whose refs point elsewhere in that document or into other files (which a validator
//! would try to fetch, and we do no I/O at run time), and in 3.0 it speaks an older
//! dialect that a 2020-12 validator reads differently (`nullable`, boolean
//! `exclusiveMinimum`) or refuses. So the node is copied with every schema its refs
//! reach, each once, into `$defs`, refs rewritten to `#/$defs/NAME`; a recursive schema
//! stays as finite as it was in the spec.
//!
//! # Looser, never stricter
//!
//! A validator that refuses a valid reply because the spec is broken is worse than
//! one that misses a bad reply, so every doubt loosens the schema:
//!
//! - Only keywords that constrain a value are kept, and only with a value of the shape
//!   the 2020-12 meta-schema wants; a validator checks a schema against its meta-schema
//!   before using it, and one misshapen `minLength` would otherwise stop every check.
//!   Annotations (`description`, `example`, `discriminator`, `xml`, `x-*`…) go: they
//!   check nothing. So do `$id`, `$anchor` and `$schema` below the top, which would
//!   make the rewritten refs resolve against another base, and `$dynamicRef`, which we
//!   cannot rewrite.
//! - A ref that cannot be followed (or a 3.1 anchor ref, which we do not index) becomes
//!   `{}`, accepting anything.
//! - Refs that lead back to a schema without descending into the value (`A: {allOf:
//!   [{$ref: B}]}`, `B: {allOf: [{$ref: A}]}`) can send a validator round the loop
//!   forever on the same value (the `jsonschema` crate notices; nothing says every
//!   validator does); such loops are cut by dropping the ref that closes them, which
//!   keeps every other constraint of the loop.
//! - Past [`MAX_NODES`] copied nodes the whole answer is `{}`: a huge schema costs
//!   more to compile than it is worth. A subschema nested deeper than [`MAX_DEPTH`]
//!   inside one schema is `{}` too, so no spec can exhaust the stack.
//!
//! Patterns are copied as written: whether one is a valid regular expression is the
//! validator's to say, so compiling a bundle can still fail, and callers must then
//! skip the check rather than fail the reply.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::pointer;
use crate::schema::Schema;
use crate::{Contract, MAX_DEPTH};

/// How many schema nodes one bundle may copy, all `$defs` included.
const MAX_NODES: usize = 10_000;

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Where `$defs` entries live, as refs to them are written.
const DEFS: &str = "#/$defs/";

/// Value types of JSON Schema's `type`.
const TYPES: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];

/// Keywords taking a count (a non-negative integer).
const COUNTS: [&str; 8] = [
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
];

/// Keywords beside which a `type` does not decide alone whether null passes: for a
/// nullable schema with one of them, "or null" must wrap the whole schema.
const BESIDE_TYPE: [&str; 7] = ["$ref", "allOf", "anyOf", "oneOf", "not", "if", "const"];

impl Schema<'_> {
    /// A self-contained JSON Schema (draft 2020-12) equivalent to this schema, for a
    /// validator: every `$ref` it reaches, in any loaded file, copied once into `$defs`
    /// under a generated name with the refs rewritten to `#/$defs/NAME`, and OpenAPI 3.0
    /// specifics converted (`nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`).
    ///
    /// Never stricter than the spec: a ref that cannot be followed becomes `{}`, and a
    /// schema of more than 10,000 nodes becomes one that accepts anything (see the
    /// module docs of `bundle` for every loosening). The top level says `$schema`.
    pub fn bundle(&self) -> Value {
        bundle(self.contract, self.doc, self.node)
    }

    /// A stable identity of the schema node: its document's index and its JSON pointer
    /// there, e.g. `0#/paths/~1contacts/get/responses/200/content/application~1json/schema`;
    /// for a schema reached through a ref, the node the ref leads to. Usable as a cache
    /// key for compiled validators. The empty schema that stands for conflicting
    /// documentation (see [`Schema::field`]) is `any`.
    pub fn key(&self) -> String {
        self.contract.key_of(self.doc, self.node)
    }
}

/// The schemas being copied: index 0 is the one asked about, the others are `$defs`.
struct Bundler<'a> {
    contract: &'a Contract,
    /// Each schema's document and node.
    targets: Vec<(usize, &'a Value)>,
    /// Each schema's `$defs` name; the root's is empty.
    names: Vec<String>,
    by_node: HashMap<*const Value, usize>,
    by_name: HashMap<String, usize>,
    /// How many names were made from each base name, so that the next is quick to find.
    bases: HashMap<String, usize>,
    copied: usize,
}

fn bundle(contract: &Contract, doc: usize, node: &Value) -> Value {
    let mut bundler = Bundler {
        contract,
        targets: vec![(doc, node)],
        names: vec![String::new()],
        by_node: HashMap::from([(std::ptr::from_ref(node), 0)]),
        by_name: HashMap::new(),
        bases: HashMap::new(),
        copied: 0,
    };
    let mut copies = Vec::new();
    // Copying a schema may add refs' targets to the list: a work list rather than
    // recursion, so a long chain of refs costs no stack.
    while let Some(&(doc, node)) = bundler.targets.get(copies.len()) {
        match bundler.schema(doc, node, 0) {
            Some(copy) => copies.push(copy),
            None => return json!({"$schema": DIALECT}),
        }
    }
    cut_loops(&mut copies, &bundler.by_name);
    let mut copies = copies.into_iter();
    let mut root = match copies.next() {
        Some(Value::Object(root)) => root,
        Some(Value::Bool(false)) => Map::from_iter([("not".to_string(), json!({}))]),
        _ => Map::new(),
    };
    root.insert("$schema".to_string(), json!(DIALECT));
    let defs: Map<String, Value> = bundler.names.into_iter().skip(1).zip(copies).collect();
    if !defs.is_empty() {
        root.insert("$defs".to_string(), Value::Object(defs));
    }
    Value::Object(root)
}

impl<'a> Bundler<'a> {
    /// A copy of the schema `node` of document `doc`; `None` once over budget.
    fn schema(&mut self, doc: usize, node: &'a Value, depth: usize) -> Option<Value> {
        self.copied += 1;
        if self.copied > MAX_NODES {
            return None;
        }
        if depth > MAX_DEPTH {
            return Some(json!({}));
        }
        match node {
            Value::Bool(accept) => Some(Value::Bool(*accept)),
            Value::Object(obj) => self.object(doc, obj, depth),
            // Not a schema at all: says nothing we could check.
            _ => Some(json!({})),
        }
    }

    fn object(&mut self, doc: usize, obj: &'a Map<String, Value>, depth: usize) -> Option<Value> {
        let mut out = Map::new();
        let sub = depth + 1;
        for (key, value) in obj {
            let copy = match key.as_str() {
                "$ref" => value
                    .as_str()
                    .and_then(|reference| self.reference(doc, reference))
                    .map(Value::String),
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => self.list(doc, value, sub)?,
                "not"
                | "if"
                | "then"
                | "else"
                | "additionalProperties"
                | "propertyNames"
                | "contains"
                | "unevaluatedItems"
                | "unevaluatedProperties" => Some(self.schema(doc, value, sub)?),
                // An array is the draft-4 tuple form, in neither 3.0 nor 2020-12: dropped.
                "items" if !value.is_array() => Some(self.schema(doc, value, sub)?),
                "properties" | "patternProperties" | "dependentSchemas" => {
                    self.map(doc, value, sub)?
                }
                "type" => types(value),
                "enum" => value.is_array().then(|| value.clone()),
                "const" => Some(value.clone()),
                "multipleOf" => value
                    .as_f64()
                    .is_some_and(|n| n > 0.0)
                    .then(|| value.clone()),
                // Boolean exclusives (3.0) are turned into numbers below.
                "maximum" | "minimum" | "exclusiveMaximum" | "exclusiveMinimum" => {
                    value.is_number().then(|| value.clone())
                }
                count if COUNTS.contains(&count) => value.as_u64().map(|_| value.clone()),
                "pattern" | "format" => value.is_string().then(|| value.clone()),
                "uniqueItems" => value.is_boolean().then(|| value.clone()),
                "required" => names(value),
                "dependentRequired" => value.as_object().map(|deps| {
                    deps.iter()
                        .filter_map(|(name, list)| Some((name.clone(), names(list)?)))
                        .collect()
                }),
                _ => None,
            };
            if let Some(copy) = copy {
                out.insert(key.clone(), copy);
            }
        }
        for (exclusive, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if obj.get(exclusive) == Some(&Value::Bool(true))
                && let Some(limit) = out.remove(bound)
            {
                out.insert(exclusive.to_string(), limit);
            }
        }
        // 3.0's way of saying null; 3.1 has no `nullable`, but writers carry it over
        // and mean it, so it is honoured in both. An `enum` listing null beside a
        // `type` without it means the same (strictly, the type forbids it).
        let null_listed = out
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| values.contains(&Value::Null));
        if obj.get("nullable") == Some(&Value::Bool(true)) || null_listed {
            return Some(or_null(out));
        }
        Some(Value::Object(out))
    }

    /// Copies of the members of an applicator list; `Some(None)` to drop a malformed
    /// or empty one (an empty `anyOf` would accept nothing, and no real spec means that).
    fn list(&mut self, doc: usize, value: &'a Value, depth: usize) -> Option<Option<Value>> {
        let Some(members) = value.as_array().filter(|m| !m.is_empty()) else {
            return Some(None);
        };
        let mut out = Vec::with_capacity(members.len());
        for member in members {
            out.push(self.schema(doc, member, depth)?);
        }
        Some(Some(Value::Array(out)))
    }

    /// Copies of the schemas of a map from names (or patterns) to schemas.
    fn map(&mut self, doc: usize, value: &'a Value, depth: usize) -> Option<Option<Value>> {
        let Some(entries) = value.as_object() else {
            return Some(None);
        };
        let mut out = Map::new();
        for (name, schema) in entries {
            out.insert(name.clone(), self.schema(doc, schema, depth)?);
        }
        Some(Some(Value::Object(out)))
    }

    /// The rewritten form of `reference`, written in document `doc`; `None` when it
    /// cannot be followed.
    fn reference(&mut self, doc: usize, reference: &str) -> Option<String> {
        let (target_doc, target) = self.contract.resolve(doc, reference)?;
        let index = match self.by_node.get(&std::ptr::from_ref(target)) {
            Some(&index) => index,
            None => {
                let index = self.targets.len();
                let name = self.fresh_name(reference);
                self.targets.push((target_doc, target));
                self.by_node.insert(std::ptr::from_ref(target), index);
                self.by_name.insert(name.clone(), index);
                self.names.push(name);
                index
            }
        };
        Some(match index {
            0 => "#".to_string(),
            _ => format!("{DEFS}{}", self.names.get(index).map_or("", String::as_str)),
        })
    }

    /// A `$defs` name not yet used, after the last part of `reference` ("Contact" for
    /// `schemas/contact.yaml#/Contact`, "common" for `common.yaml`), kept to characters
    /// that need no escaping in a pointer or a URI fragment.
    fn fresh_name(&mut self, reference: &str) -> String {
        let (file, fragment) = pointer::split(reference);
        let last = fragment.rsplit('/').next().unwrap_or_default();
        let last = if last.is_empty() {
            let file = file.rsplit('/').next().unwrap_or_default();
            file.split('.').next().unwrap_or_default()
        } else {
            last
        };
        let mut base: String = last
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() {
            base = "schema".to_string();
        }
        let count = self.bases.entry(base.clone()).or_insert(0);
        loop {
            *count += 1;
            let name = if *count == 1 {
                base.clone()
            } else {
                format!("{base}_{count}")
            };
            if !self.by_name.contains_key(&name) {
                return name;
            }
        }
    }
}

/// `type` with only the names JSON Schema knows (3.0 specs converted from Swagger may
/// say `file`); `None` when none is left.
fn types(value: &Value) -> Option<Value> {
    match value {
        Value::String(ty) => TYPES.contains(&ty.as_str()).then(|| value.clone()),
        Value::Array(list) => {
            let mut seen = HashSet::new();
            let kept: Vec<Value> = list
                .iter()
                .filter(|ty| {
                    ty.as_str()
                        .is_some_and(|t| TYPES.contains(&t) && seen.insert(t))
                })
                .cloned()
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

/// A list of property names, strings only and each once, as 2020-12 wants.
fn names(value: &Value) -> Option<Value> {
    let mut seen = HashSet::new();
    let kept: Vec<Value> = value
        .as_array()?
        .iter()
        .filter(|name| name.as_str().is_some_and(|n| seen.insert(n)))
        .cloned()
        .collect();
    Some(Value::Array(kept))
}

/// `schema` with null allowed as well. Of the keywords a schema may keep, only
/// `type`, `enum` and those of [`BESIDE_TYPE`] can refuse null (the others apply to
/// one type each), so without the latter adding null to the first two is enough;
/// with them, "or null" wraps the whole.
fn or_null(mut schema: Map<String, Value>) -> Value {
    if BESIDE_TYPE.iter().any(|key| schema.contains_key(*key)) {
        return json!({"anyOf": [schema, {"type": "null"}]});
    }
    if let Some(ty) = schema.get_mut("type") {
        match ty {
            Value::String(name) if name != "null" => {
                *ty = json!([name.as_str(), "null"]);
            }
            Value::Array(names) if !names.contains(&json!("null")) => names.push(json!("null")),
            _ => {}
        }
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    Value::Object(schema)
}

/// Drops the refs that close loops of schemas applied to the same value (see the
/// module docs). `copies[0]` is the root, referred to as `#`.
fn cut_loops(copies: &mut [Value], by_name: &HashMap<String, usize>) {
    let target = |reference: &str| match reference {
        "#" => Some(0),
        _ => by_name.get(reference.strip_prefix(DEFS)?).copied(),
    };
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(copies.len());
    for copy in copies.iter_mut() {
        let mut to = Vec::new();
        in_place(copy, 0, &mut |obj| {
            if let Some(index) = obj.get("$ref").and_then(Value::as_str).and_then(target) {
                to.push(index);
            }
        });
        edges.push(to);
    }
    // A depth-first walk: an edge to a schema still on the walk's stack closes a
    // loop; dropping all such edges leaves none.
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; copies.len()];
    let mut cut: Vec<HashSet<usize>> = vec![HashSet::new(); copies.len()];
    for start in 0..copies.len() {
        if state[start] != NEW {
            continue;
        }
        state[start] = OPEN;
        let mut stack = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (from, next) = *top;
            match edges[from].get(next) {
                Some(&to) => {
                    top.1 += 1;
                    match state[to] {
                        NEW => {
                            state[to] = OPEN;
                            stack.push((to, 0));
                        }
                        OPEN => {
                            cut[from].insert(to);
                        }
                        _ => {}
                    }
                }
                None => {
                    state[from] = DONE;
                    stack.pop();
                }
            }
        }
    }
    for (copy, cut) in copies.iter_mut().zip(cut) {
        if cut.is_empty() {
            continue;
        }
        in_place(copy, 0, &mut |obj| {
            let closes = obj
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(target)
                .is_some_and(|index| cut.contains(&index));
            if closes {
                obj.remove("$ref");
            }
        });
    }
}

/// Calls `visit` on `schema` and each subschema applied to the same value as it.
fn in_place(schema: &mut Value, depth: usize, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    // Copies are at most MAX_DEPTH deep, plus the wrapping of `or_null`.
    if depth > 2 * MAX_DEPTH + 2 {
        return;
    }
    let Value::Object(obj) = schema else {
        return;
    };
    visit(obj);
    for (key, value) in obj.iter_mut() {
        match (key.as_str(), value) {
            ("allOf" | "anyOf" | "oneOf", Value::Array(members)) => {
                for member in members {
                    in_place(member, depth + 1, visit);
                }
            }
            ("not" | "if" | "then" | "else", member) => in_place(member, depth + 1, visit),
            ("dependentSchemas", Value::Object(members)) => {
                for member in members.values_mut() {
                    in_place(member, depth + 1, visit);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn contract(value: Value) -> Contract {
        Contract::inline(value, "3.0.3")
    }

    fn at<'a>(contract: &'a Contract, fragment: &str) -> Schema<'a> {
        let node = pointer::follow(contract.root(), fragment).expect("node");
        Schema::at(contract, 0, node)
    }

    #[test]
    fn dangling_refs_accept_anything() {
        let contract = contract(json!({"components": {"schemas": {
            "A": {"type": "object", "properties": {
                "gone": {"$ref": "#/components/schemas/Gone"},
                "elsewhere": {"$ref": "other.yaml#/X", "type": "string"}
            }}
        }}}));
        let bundle = at(&contract, "/components/schemas/A").bundle();
        assert_eq!(
            bundle,
            json!({
                "$schema": DIALECT,
                "type": "object",
                "properties": {"gone": {}, "elsewhere": {"type": "string"}}
            })
        );
    }

    #[test]
    fn misshapen_keywords_are_dropped() {
        let contract = contract(json!({
            "type": ["object", "file", "object", 3],
            "required": ["a", "a", 1],
            "minLength": -1,
            "maxItems": 2.5,
            "multipleOf": 0,
            "allOf": [],
            "anyOf": "x",
            "items": [{"type": "string"}],
            "properties": {"a": "string", "b": 7},
            "pattern": 5,
            "exclusiveMinimum": true,
            "dependentRequired": {"a": ["b", "b"], "c": "d"},
            "$id": "https://example.com/a",
            "$anchor": "a",
            "$defs": {"X": {}},
            "example": {"$ref": "#/nowhere"},
            "x-thing": 1
        }));
        assert_eq!(
            at(&contract, "").bundle(),
            json!({
                "$schema": DIALECT,
                "type": ["object"],
                "required": ["a"],
                "properties": {"a": {}, "b": {}},
                "dependentRequired": {"a": ["b"]}
            })
        );
    }

    #[test]
    fn nullable_wraps_when_type_does_not_decide() {
        let cases = [
            (
                json!({"type": "string", "enum": ["a"], "nullable": true}),
                json!({"type": ["string", "null"], "enum": ["a", null]}),
            ),
            (
                json!({"type": ["integer", "null"], "nullable": true}),
                json!({"type": ["integer", "null"]}),
            ),
            (
                json!({"type": "object", "allOf": [{}], "nullable": true}),
                json!({"anyOf": [{"type": "object", "allOf": [{}]}, {"type": "null"}]}),
            ),
            (
                json!({"enum": ["a"], "nullable": true}),
                json!({"enum": ["a", null]}),
            ),
            (
                json!({"properties": {"a": {}}, "nullable": true}),
                json!({"properties": {"a": {}}}),
            ),
            (
                json!({"type": "string", "enum": ["a", null]}),
                json!({"type": ["string", "null"], "enum": ["a", null]}),
            ),
            (
                json!({"$ref": "#/x", "nullable": true, "x": {}}),
                json!({"anyOf": [{"$ref": "#/$defs/x"}, {"type": "null"}], "$defs": {"x": {}}}),
            ),
        ];
        for (schema, want) in cases {
            let contract = contract(schema);
            let mut got = at(&contract, "").bundle();
            got.as_object_mut().map(|m| m.remove("$schema"));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let contract = contract(json!({
            "minimum": 0, "exclusiveMinimum": true,
            "maximum": 10, "exclusiveMaximum": false
        }));
        assert_eq!(
            at(&contract, "").bundle(),
            json!({"$schema": DIALECT, "exclusiveMinimum": 0, "maximum": 10})
        );
    }

    #[test]
    fn in_place_loops_are_cut_and_descending_ones_kept() {
        let contract = contract(json!({"components": {"schemas": {
            "A": {"allOf": [{"$ref": "#/components/schemas/B"}], "required": ["a"]},
            "B": {"anyOf": [{"$ref": "#/components/schemas/A"}], "required": ["b"],
                  "properties": {"next": {"$ref": "#/components/schemas/A"}}}
        }}}));
        assert_eq!(
            at(&contract, "/components/schemas/A").bundle(),
            json!({
                "$schema": DIALECT,
                "allOf": [{"$ref": "#/$defs/B"}],
                "required": ["a"],
                "$defs": {"B": {
                    "anyOf": [{}],
                    "required": ["b"],
                    "properties": {"next": {"$ref": "#"}}
                }}
            })
        );
    }

    #[test]
    fn names_are_unique_and_plain() {
        let contract = contract(json!({
            "properties": {
                "a": {"$ref": "#/x/Thing"},
                "b": {"$ref": "#/y/Thing"},
                "c": {"$ref": "#/y/we%20ird~1name"},
                "d": {"$ref": "#/x/Thing"}
            },
            "x": {"Thing": {"type": "string"}},
            "y": {"Thing": {"type": "integer"}, "we ird/name": {"type": "boolean"}}
        }));
        let bundle = at(&contract, "").bundle();
        assert_eq!(
            bundle["properties"],
            json!({
                "a": {"$ref": "#/$defs/Thing"},
                "b": {"$ref": "#/$defs/Thing_2"},
                "c": {"$ref": "#/$defs/we_20ird_1name"},
                "d": {"$ref": "#/$defs/Thing"}
            })
        );
        assert_eq!(bundle["$defs"]["Thing_2"], json!({"type": "integer"}));
    }

    #[test]
    fn the_empty_schema_of_conflicts_has_a_key_of_its_own() {
        let contract = contract(json!({"allOf": [
            {"properties": {"a": {"type": "string"}}},
            {"properties": {"a": {"type": "integer"}}}
        ]}));
        let crate::Field::Found { schema, .. } = at(&contract, "").field("a") else {
            panic!("a");
        };
        assert_eq!(schema.key(), "any");
        assert_eq!(schema.bundle(), json!({"$schema": DIALECT}));
        assert_eq!(
            at(&contract, "/allOf/1/properties/a").key(),
            "0#/allOf/1/properties/a"
        );
        assert_eq!(at(&contract, "").key(), "0#");
    }

    #[test]
    fn too_many_nodes_accept_anything() {
        let properties: serde_json::Map<String, Value> = (0..MAX_NODES)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let contract = contract(json!({"properties": properties}));
        assert_eq!(at(&contract, "").bundle(), json!({"$schema": DIALECT}));
    }

    #[test]
    fn deep_nesting_is_cut_short() {
        let mut value = json!({"type": "string"});
        for _ in 0..1000 {
            value = json!({"properties": {"a": value}});
        }
        let contract = contract(value);
        let bundle = at(&contract, "").bundle();
        let mut depth = 0;
        let mut node = &bundle;
        while let Some(next) = node.get("properties").and_then(|p| p.get("a")) {
            node = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH + 1);
        assert_eq!(node, &json!({}));
    }
}
