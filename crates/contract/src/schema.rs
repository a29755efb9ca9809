//! Schemas: JSON Schema nodes inside the loaded documents, navigated lazily one field
//! or element at a time, so recursive schemas (a tree whose `children` are itself) cost
//! nothing until a flow actually walks them.
//!
//! A node's value must match its own keywords, its `$ref` target and every `allOf`
//! member (the "and" parts), and one member of each `oneOf`/`anyOf` group. A `$ref` with
//! sibling keywords is one more "and" part, as 3.1 says; 3.0 says the siblings are
//! ignored, but writers who put `nullable: true` next to a ref mean it, so both versions
//! are read the 3.1 way. A ref whose siblings are only annotations (`description`,
//! `example`…) is followed straight away. `not` and `discriminator` are ignored: neither
//! documents a property.
//!
//! # When a field is unknown
//!
//! [`Field::Unknown`] becomes a hard error in `patchbay check`, and a false error on a
//! valid flow is worse than a missed one, so a schema is closed only when the spec
//! clearly lists its properties: a non-empty `properties` and no `additionalProperties`
//! other than `false`, no `patternProperties`, no `unevaluatedProperties` other than
//! `false`, no `if`/`then`/`else` or `dependentSchemas`. JSON Schema would call such an
//! object open, but in OpenAPI practice `properties` is the documentation of what an API
//! returns, and "did you mean" on a misspelt field is the point of checking. Everything
//! else is [`Field::Open`]: a `type` other than object, `properties: {}` (how generators
//! write a free-form object), a ref that cannot be followed, a walk deeper than
//! [`MAX_DEPTH`](crate::MAX_DEPTH) or longer than a fixed budget of nodes (refs-only
//! cycles end there). For `allOf` a name is unknown only when every part that could add
//! properties is closed; for `oneOf`/`anyOf`, when every member that can be an object is
//! closed (members that only list `required` names, the usual "a or b" idiom, leave the
//! object as its own `properties` document it). When parts disagree on a field's schema, the field's schema is the empty one,
//! which is open: we cannot intersect two schemas without building a new node.

use std::fmt;

use serde_json::{Map, Value};

use crate::{Contract, MAX_DEPTH};

/// How many schema nodes one question may visit: stops `allOf` fan-out through refs
/// (each member an `allOf` of the next) from taking exponential time.
const MAX_VISITS: usize = 2_000;

/// Keywords that describe a schema without constraining it: a ref whose siblings are
/// only these is the schema it points at.
pub(crate) const ANNOTATIONS: [&str; 13] = [
    "description",
    "summary",
    "title",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "default",
    "externalDocs",
    "$comment",
    "xml",
    "discriminator",
];

/// A schema node inside some loaded document, `$ref`s followed transparently.
#[derive(Clone, Copy)]
pub struct Schema<'a> {
    pub(crate) contract: &'a Contract,
    /// The document holding the node, against which its refs resolve.
    pub(crate) doc: usize,
    pub(crate) node: &'a Value,
}

/// What reading a field of a value gives, as far as the spec says.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// Documented: its schema, and whether it may be absent (not `required`) or null.
    Found {
        schema: Schema<'a>,
        optional: bool,
        nullable: bool,
    },
    /// The schema lists its properties and this is none of them; `known` is the listed
    /// names, sorted, for a suggestion.
    Unknown { known: Vec<&'a str> },
    /// Nothing can be said; callers must not report anything.
    Open,
}

/// Visits left for one question.
struct Walk {
    visits: usize,
}

impl Walk {
    fn new() -> Self {
        Walk { visits: MAX_VISITS }
    }

    fn enter(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH || self.visits == 0 {
            return false;
        }
        self.visits -= 1;
        true
    }
}

/// The schemas a node's value must also match, besides its own keywords. `None` stands
/// for a ref that cannot be followed or a malformed combinator: unknown.
struct Parts<'a> {
    and: Vec<Option<Schema<'a>>>,
    /// `oneOf` and `anyOf`: one member of each group.
    or: Vec<Vec<Option<Schema<'a>>>>,
    /// `if`/`then`/`else` or `dependentSchemas`: properties that depend on the value.
    conditional: bool,
}

/// A lookup's answer for one part of a schema.
enum Kind<'a> {
    Found(Schema<'a>),
    /// Properties listed, the name not among them.
    Closed(Vec<&'a str>),
    /// Says nothing about properties (`{required: [..]}`, `{nullable: true}`).
    Neutral,
    Open,
    /// Cannot be an object (`type: string`, `type: "null"`).
    NotObject,
}

struct Look<'a> {
    kind: Kind<'a>,
    required: bool,
}

const OPEN: Look<'static> = Look {
    kind: Kind::Open,
    required: false,
};

/// A lookup's answer for the elements of a value.
enum Items<'a> {
    Found(Schema<'a>),
    /// Cannot be an array or a map (`type: string`).
    NotContainer,
    /// Says nothing about elements.
    Neutral,
    Unknown,
}

/// Whether null is allowed, per part.
#[derive(Clone, Copy, PartialEq)]
enum Null {
    Yes,
    No,
    Unsaid,
}

impl<'a> Schema<'a> {
    /// The schema at `node` in document `doc`, after following refs that carry nothing
    /// but annotations.
    pub(crate) fn at(contract: &'a Contract, doc: usize, node: &'a Value) -> Self {
        let mut schema = Schema {
            contract,
            doc,
            node,
        };
        // A refs-only cycle stops at the first node seen twice; questions about it
        // then go round the cycle once per level until the depth limit says Open.
        let mut seen: Vec<*const Value> = Vec::new();
        for _ in 0..MAX_DEPTH {
            let Value::Object(obj) = schema.node else {
                break;
            };
            let Some(Value::String(reference)) = obj.get("$ref") else {
                break;
            };
            let plain = obj.keys().all(|key| {
                key == "$ref" || ANNOTATIONS.contains(&key.as_str()) || key.starts_with("x-")
            });
            if !plain || seen.contains(&std::ptr::from_ref(schema.node)) {
                break;
            }
            seen.push(std::ptr::from_ref(schema.node));
            let Some((doc, node)) = contract.resolve(schema.doc, reference) else {
                break;
            };
            schema = Schema {
                contract,
                doc,
                node,
            };
        }
        schema
    }

    fn any(contract: &'a Contract) -> Self {
        Schema {
            contract,
            doc: 0,
            node: contract.any(),
        }
    }

    fn child(&self, node: &'a Value) -> Self {
        Schema::at(self.contract, self.doc, node)
    }

    fn same(&self, other: &Schema<'a>) -> bool {
        std::ptr::eq(self.node, other.node)
    }

    fn object(&self) -> Option<&'a Map<String, Value>> {
        self.node.as_object()
    }

    /// The node's `$ref` target (when it has siblings, or cannot be followed), `allOf`,
    /// `oneOf` and `anyOf` members.
    fn parts(&self) -> Parts<'a> {
        let mut parts = Parts {
            and: Vec::new(),
            or: Vec::new(),
            conditional: false,
        };
        let Some(obj) = self.object() else {
            return parts;
        };
        if let Some(reference) = obj.get("$ref") {
            parts.and.push(
                reference
                    .as_str()
                    .and_then(|r| self.contract.resolve(self.doc, r))
                    .map(|(doc, node)| Schema::at(self.contract, doc, node)),
            );
        }
        if let Some(members) = obj.get("allOf") {
            match members.as_array() {
                Some(members) => parts
                    .and
                    .extend(members.iter().map(|m| Some(self.child(m)))),
                None => parts.and.push(None),
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(members) = obj.get(key) {
                parts.or.push(match members.as_array() {
                    Some(members) => members.iter().map(|m| Some(self.child(m))).collect(),
                    None => vec![None],
                });
            }
        }
        parts.conditional = ["if", "then", "else", "dependentSchemas"]
            .iter()
            .any(|key| obj.contains_key(*key));
        parts
    }

    /// What reading field `name` of a value of this schema gives.
    pub fn field(&self, name: &str) -> Field<'a> {
        let look = self.look(name, 0, &mut Walk::new());
        match look.kind {
            Kind::Found(schema) => Field::Found {
                schema,
                optional: !look.required,
                nullable: schema.nullable(),
            },
            Kind::Closed(mut known) => {
                known.sort_unstable();
                known.dedup();
                Field::Unknown { known }
            }
            Kind::Neutral | Kind::Open | Kind::NotObject => Field::Open,
        }
    }

    fn look(&self, name: &str, depth: usize, walk: &mut Walk) -> Look<'a> {
        if !walk.enter(depth) {
            return OPEN;
        }
        let Some(obj) = self.object() else {
            return OPEN;
        };
        let parts = self.parts();
        let required = strings(obj.get("required")).any(|r| r == name);
        let combined = !parts.and.is_empty() || !parts.or.is_empty();
        let mut and = vec![Look {
            kind: self.own_kind(obj, name, combined),
            required,
        }];
        for part in parts.and {
            and.push(match part {
                Some(part) => part.look(name, depth + 1, walk),
                None => OPEN,
            });
        }
        if parts.conditional {
            and.push(OPEN);
        }
        for group in parts.or {
            let members = group
                .into_iter()
                .map(|member| match member {
                    Some(member) => member.look(name, depth + 1, walk),
                    None => OPEN,
                })
                .collect();
            and.push(self.either(members));
        }
        self.both(and)
    }

    /// What the node's own keywords say about property `name`.
    fn own_kind(&self, obj: &'a Map<String, Value>, name: &str, combined: bool) -> Kind<'a> {
        let typed_object = match obj.get("type") {
            Some(ty) if !type_allows(ty, "object") => return Kind::NotObject,
            Some(_) => true,
            None => false,
        };
        let properties = obj.get("properties").and_then(Value::as_object);
        if let Some(schema) = properties.and_then(|p| p.get(name)) {
            return Kind::Found(self.child(schema));
        }
        let extra = |key: &str| obj.get(key).is_some_and(|v| v != &Value::Bool(false));
        let patterns = obj
            .get("patternProperties")
            .is_some_and(|p| p.as_object().is_none_or(|p| !p.is_empty()));
        if extra("additionalProperties") || extra("unevaluatedProperties") || patterns {
            return Kind::Open;
        }
        match properties {
            Some(properties) if !properties.is_empty() => {
                Kind::Closed(properties.keys().map(String::as_str).collect())
            }
            _ if obj.contains_key("properties") => Kind::Open,
            // An object with nothing said about its properties is free-form, unless it
            // is only there to say "object" next to combinators that do say.
            _ if typed_object && !combined => Kind::Open,
            _ => Kind::Neutral,
        }
    }

    /// Parts the value must all match.
    fn both(&self, looks: Vec<Look<'a>>) -> Look<'a> {
        let required = looks.iter().any(|l| l.required);
        let found = self.merge(looks.iter().filter_map(|l| match l.kind {
            Kind::Found(schema) => Some(schema),
            _ => None,
        }));
        if let Some(schema) = found {
            return Look {
                kind: Kind::Found(schema),
                required,
            };
        }
        let has = |want: fn(&Kind) -> bool| looks.iter().any(|l| want(&l.kind));
        let closed = has(|k| matches!(k, Kind::Closed(_)));
        let not_object = has(|k| matches!(k, Kind::NotObject));
        let kind = if has(|k| matches!(k, Kind::Open)) || (closed && not_object) {
            Kind::Open
        } else if not_object {
            Kind::NotObject
        } else if closed {
            Kind::Closed(known(looks))
        } else {
            Kind::Neutral
        };
        Look { kind, required }
    }

    /// Members of which the value matches one (`oneOf`) or some (`anyOf`).
    fn either(&self, looks: Vec<Look<'a>>) -> Look<'a> {
        let objects: Vec<Look<'a>> = looks
            .into_iter()
            .filter(|l| !matches!(l.kind, Kind::NotObject))
            .collect();
        if objects.is_empty() {
            return Look {
                kind: Kind::NotObject,
                required: false,
            };
        }
        let required = objects.iter().all(|l| l.required);
        // `oneOf: [{required: [a]}, {required: [b]}]` beside `properties` says which
        // fields must be there, nothing about which exist.
        if objects.iter().all(|l| matches!(l.kind, Kind::Neutral)) {
            return Look {
                kind: Kind::Neutral,
                required,
            };
        }
        let vague = objects
            .iter()
            .any(|l| matches!(l.kind, Kind::Open | Kind::Neutral));
        let found = self.merge(objects.iter().filter_map(|l| match l.kind {
            Kind::Found(schema) => Some(schema),
            _ => None,
        }));
        let kind = match found {
            // Another member might hold the field too, with a schema we do not know.
            Some(_) if vague => Kind::Found(Schema::any(self.contract)),
            Some(schema) => Kind::Found(schema),
            None if vague => Kind::Open,
            None => Kind::Closed(known(objects)),
        };
        Look { kind, required }
    }

    /// One schema for a field documented in several places: the place if they are all
    /// the same node, else the empty schema.
    fn merge(&self, mut found: impl Iterator<Item = Schema<'a>>) -> Option<Schema<'a>> {
        let first = found.next()?;
        if found.all(|other| other.same(&first)) {
            Some(first)
        } else {
            Some(Schema::any(self.contract))
        }
    }

    /// The schema of the elements when iterating (`.[]`, `.[0]`): `items` of an array,
    /// or the `additionalProperties` schema of a map-like object. `None` when unknown,
    /// including for 3.1 `prefixItems` tuples.
    pub fn items(&self) -> Option<Schema<'a>> {
        match self.items_look(0, &mut Walk::new()) {
            Items::Found(schema) => Some(schema),
            Items::NotContainer | Items::Neutral | Items::Unknown => None,
        }
    }

    fn items_look(&self, depth: usize, walk: &mut Walk) -> Items<'a> {
        if !walk.enter(depth) {
            return Items::Unknown;
        }
        let Some(obj) = self.object() else {
            return Items::Unknown;
        };
        let own = if obj.contains_key("prefixItems") {
            Items::Unknown
        } else {
            match (obj.get("items"), obj.get("additionalProperties")) {
                (Some(items @ Value::Object(_)), _) => Items::Found(self.child(items)),
                (Some(Value::Bool(true)), _) => Items::Found(Schema::any(self.contract)),
                (Some(_), _) => Items::Unknown,
                (None, Some(values @ Value::Object(_))) => Items::Found(self.child(values)),
                (None, _) => match obj.get("type") {
                    Some(ty) if type_allows(ty, "array") || type_allows(ty, "object") => {
                        Items::Unknown
                    }
                    Some(_) => Items::NotContainer,
                    None => Items::Neutral,
                },
            }
        };
        let parts = self.parts();
        let mut and = vec![own];
        for part in parts.and {
            and.push(match part {
                Some(part) => part.items_look(depth + 1, walk),
                None => Items::Unknown,
            });
        }
        for group in parts.or {
            let members: Vec<Items<'a>> = group
                .into_iter()
                .map(|member| match member {
                    Some(member) => member.items_look(depth + 1, walk),
                    None => Items::Unknown,
                })
                .collect();
            let containers: Vec<&Items<'a>> = members
                .iter()
                .filter(|m| !matches!(m, Items::NotContainer))
                .collect();
            and.push(if containers.is_empty() {
                Items::NotContainer
            } else if containers.iter().any(|m| !matches!(m, Items::Found(_))) {
                Items::Unknown
            } else {
                self.merge_items(containers.into_iter())
            });
        }
        if and.iter().any(|m| matches!(m, Items::Found(_))) {
            return self.merge_items(and.iter());
        }
        if and.iter().any(|m| matches!(m, Items::Unknown)) {
            Items::Unknown
        } else if and.iter().any(|m| matches!(m, Items::NotContainer)) {
            Items::NotContainer
        } else {
            Items::Neutral
        }
    }

    fn merge_items<'i>(&self, items: impl Iterator<Item = &'i Items<'a>>) -> Items<'a>
    where
        'a: 'i,
    {
        let found = items.filter_map(|m| match m {
            Items::Found(schema) => Some(*schema),
            _ => None,
        });
        match self.merge(found) {
            Some(schema) => Items::Found(schema),
            None => Items::Unknown,
        }
    }

    /// Required property names, `allOf` parts merged; for `oneOf`/`anyOf`, the names
    /// every member that can be an object requires. In first-seen order.
    pub fn required(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        self.required_into(0, &mut Walk::new(), &mut out);
        out
    }

    fn required_into(&self, depth: usize, walk: &mut Walk, out: &mut Vec<&'a str>) {
        if !walk.enter(depth) {
            return;
        }
        let Some(obj) = self.object() else {
            return;
        };
        for name in strings(obj.get("required")) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        let parts = self.parts();
        for part in parts.and.into_iter().flatten() {
            part.required_into(depth + 1, walk, out);
        }
        for group in parts.or {
            let mut common: Option<Vec<&'a str>> = None;
            for member in group {
                let Some(member) = member else {
                    common = Some(Vec::new());
                    continue;
                };
                if member.cannot_be_object() {
                    continue;
                }
                let mut names = Vec::new();
                member.required_into(depth + 1, walk, &mut names);
                common = Some(match common {
                    None => names,
                    Some(common) => common.into_iter().filter(|n| names.contains(n)).collect(),
                });
            }
            for name in common.unwrap_or_default() {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }

    fn cannot_be_object(&self) -> bool {
        self.object()
            .and_then(|obj| obj.get("type"))
            .is_some_and(|ty| !type_allows(ty, "object"))
    }

    /// Property names documented anywhere in the schema (all combinator members
    /// merged), sorted, for suggestions.
    pub fn property_names(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        self.names_into(0, &mut Walk::new(), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn names_into(&self, depth: usize, walk: &mut Walk, out: &mut Vec<&'a str>) {
        if !walk.enter(depth) {
            return;
        }
        let Some(obj) = self.object() else {
            return;
        };
        if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
            out.extend(properties.keys().map(String::as_str));
        }
        let parts = self.parts();
        let members = parts.and.into_iter().chain(parts.or.into_iter().flatten());
        for member in members.flatten() {
            member.names_into(depth + 1, walk, out);
        }
    }

    /// Whether the spec says null is allowed: 3.0 `nullable: true`, a 3.1 `type` of or
    /// including "null" (also in a `oneOf`/`anyOf` member), an `enum` holding null. A
    /// schema that merely does not forbid null (no `type`) is not nullable here.
    pub fn nullable(&self) -> bool {
        self.null_look(0, &mut Walk::new()) == Null::Yes
    }

    fn null_look(&self, depth: usize, walk: &mut Walk) -> Null {
        if !walk.enter(depth) {
            return Null::Unsaid;
        }
        let obj = match self.node {
            Value::Object(obj) => obj,
            Value::Bool(true) => return Null::Yes,
            _ => return Null::No,
        };
        let own = if obj.get("nullable") == Some(&Value::Bool(true)) {
            Null::Yes
        } else if let Some(Value::Array(values)) = obj.get("enum") {
            if values.contains(&Value::Null) {
                Null::Yes
            } else {
                Null::No
            }
        } else if let Some(value) = obj.get("const") {
            if value.is_null() { Null::Yes } else { Null::No }
        } else if let Some(ty) = obj.get("type") {
            if type_allows(ty, "null") {
                Null::Yes
            } else {
                Null::No
            }
        } else {
            Null::Unsaid
        };
        let parts = self.parts();
        let mut all = vec![own];
        for part in parts.and {
            all.push(part.map_or(Null::Unsaid, |p| p.null_look(depth + 1, walk)));
        }
        for group in parts.or {
            let members: Vec<Null> = group
                .into_iter()
                .map(|m| m.map_or(Null::Unsaid, |m| m.null_look(depth + 1, walk)))
                .collect();
            all.push(if members.contains(&Null::Yes) {
                Null::Yes
            } else if !members.is_empty() && members.iter().all(|m| *m == Null::No) {
                Null::No
            } else {
                Null::Unsaid
            });
        }
        // Generous on purpose: `nullable: true` beside an `allOf` or a ref is how 3.0
        // specs say "this object or null", although strictly the other part forbids it.
        if all.contains(&Null::Yes) {
            Null::Yes
        } else if all.contains(&Null::No) {
            Null::No
        } else {
            Null::Unsaid
        }
    }

    /// The raw JSON of this schema node after following refs.
    pub fn json(&self) -> &'a Value {
        self.node
    }

    /// A short human description, e.g. "object", "array of object", "string or null",
    /// "any".
    pub fn describe(&self) -> String {
        self.describe_at(0, &mut Walk::new())
    }

    fn describe_at(&self, depth: usize, walk: &mut Walk) -> String {
        // Descriptions are for one line of a message: a few levels say enough.
        if depth > 8 || !walk.enter(depth) {
            return "any".to_string();
        }
        let obj = match self.node {
            Value::Object(obj) => obj,
            Value::Bool(false) => return "nothing".to_string(),
            _ => return "any".to_string(),
        };
        let nullable = obj.get("nullable") == Some(&Value::Bool(true));
        let with_null = |text: String| {
            if nullable && !text.ends_with("null") && text != "any" {
                format!("{text} or null")
            } else {
                text
            }
        };
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(ty)) => vec![ty.as_str()],
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() {
            let named: Vec<String> = types
                .iter()
                .map(|ty| match *ty {
                    "array" => match self.items() {
                        Some(items) => format!("array of {}", items.describe_at(depth + 1, walk)),
                        None => "array".to_string(),
                    },
                    other => other.to_string(),
                })
                .collect();
            return with_null(named.join(" or "));
        }
        if obj.contains_key("properties") {
            return with_null("object".to_string());
        }
        if obj.contains_key("items") {
            return with_null(match self.items() {
                Some(items) => format!("array of {}", items.describe_at(depth + 1, walk)),
                None => "array".to_string(),
            });
        }
        let parts = self.parts();
        for part in parts.and.into_iter().flatten() {
            let text = part.describe_at(depth + 1, walk);
            if text != "any" {
                return with_null(text);
            }
        }
        if let Some(group) = parts.or.into_iter().next() {
            let mut names: Vec<String> = Vec::new();
            for member in group {
                let text =
                    member.map_or_else(|| "any".to_string(), |m| m.describe_at(depth + 1, walk));
                if text == "any" {
                    return "any".to_string();
                }
                if !names.contains(&text) {
                    names.push(text);
                }
            }
            if !names.is_empty() {
                return with_null(names.join(" or "));
            }
        }
        "any".to_string()
    }
}

/// The string items of a JSON array, if it is one.
fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether a `type` keyword (a string or, in 3.1, an array) allows `want`. An integer
/// is a number, so `number` asks are not needed here; only object, array and null are.
fn type_allows(ty: &Value, want: &str) -> bool {
    match ty {
        Value::String(ty) => ty == want,
        Value::Array(types) => types.iter().any(|t| t.as_str() == Some(want)),
        // A malformed `type` constrains nothing we can read.
        _ => true,
    }
}

fn known<'a>(looks: Vec<Look<'a>>) -> Vec<&'a str> {
    looks
        .into_iter()
        .flat_map(|l| match l.kind {
            Kind::Closed(names) => names,
            _ => Vec::new(),
        })
        .collect()
}

impl PartialEq for Schema<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.contract, other.contract) && self.same(other)
    }
}

impl fmt::Debug for Schema<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = self.node.to_string();
        let short: String = json.chars().take(120).collect();
        let more = if short.len() < json.len() { "…" } else { "" };
        write!(f, "Schema({}: {short}{more})", self.contract.file(self.doc))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn contract(value: Value) -> Contract {
        Contract::inline(value, "3.1.0")
    }

    fn root(contract: &Contract) -> Schema<'_> {
        Schema::at(contract, 0, contract.root())
    }

    #[test]
    fn deep_inline_nesting_gives_up_instead_of_overflowing() {
        let mut value = json!({"properties": {"a": {}}});
        for _ in 0..500 {
            value = json!({"allOf": [value], "anyOf": [{"allOf": [{}]}]});
        }
        let contract = contract(value);
        let schema = root(&contract);
        assert_eq!(schema.field("a"), Field::Open);
        assert_eq!(schema.field("b"), Field::Open);
        assert!(schema.items().is_none());
        assert!(!schema.nullable());
        assert_eq!(schema.describe(), "any");
        // The properties lie deeper than the limit, so none are listed.
        assert!(schema.property_names().is_empty());
    }

    #[test]
    fn shallow_nesting_is_followed() {
        let mut value = json!({"properties": {"a": {}}});
        for _ in 0..10 {
            value = json!({"allOf": [value]});
        }
        let contract = contract(value);
        let schema = root(&contract);
        assert!(matches!(schema.field("a"), Field::Found { .. }));
        assert_eq!(schema.field("b"), Field::Unknown { known: vec!["a"] });
        assert_eq!(schema.property_names(), ["a"]);
    }

    #[test]
    fn malformed_keywords_are_open_not_errors() {
        let contract = contract(json!({
            "type": 7,
            "properties": {"a": {}},
            "allOf": "not a list",
            "required": "a",
            "items": [1, 2]
        }));
        let schema = root(&contract);
        assert_eq!(schema.field("b"), Field::Open);
        assert!(schema.items().is_none());
        assert!(schema.required().is_empty());
        let contract = super::tests::contract(json!(true));
        assert_eq!(root(&contract).field("a"), Field::Open);
        assert!(root(&contract).nullable());
        assert_eq!(root(&contract).describe(), "any");
    }

    #[test]
    fn conflicting_documentation_of_a_field_is_any() {
        let contract = contract(json!({"allOf": [
            {"properties": {"meta": {"properties": {"a": {}}}}},
            {"properties": {"meta": {"properties": {"b": {}}}}}
        ]}));
        let Field::Found { schema, .. } = root(&contract).field("meta") else {
            panic!("meta");
        };
        assert_eq!(schema.field("b"), Field::Open);
        assert_eq!(schema.json(), &json!({}));
    }
}
