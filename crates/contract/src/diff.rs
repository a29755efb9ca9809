//! Breaking changes between two versions of an API description, from the consumer's
//! point of view: Patchbay calls the API and reads its replies, so what matters is
//! whether a flow written against the old version still makes requests the new one
//! accepts, and still finds in the replies what it reads. [`diff`] lists every change it
//! sees, each with a stable rule id, a severity, the operation, where it is in each
//! version (file and JSON pointer) and, for response bodies, the field path a flow
//! reads (`contacts[].email`) so that changes can be mapped onto the flows reading it.
//!
//! # Matching
//!
//! Operations are matched by method and path template with parameter names ignored
//! (`/contacts/{id}` is `/contacts/{contactId}`; path parameters are matched by
//! position). An old operation without a match is looked up by `operationId`: found on
//! another path (or method), it is the same operation moved (`path-changed`), and the
//! two are compared. Query, header and cookie parameters are matched by location and
//! name (header names ignoring case; `Accept`, `Content-Type` and `Authorization`
//! headers are not parameters, as OpenAPI says), responses by status key (`2xx` is
//! `2XX`; an old `200` may be answered by a new `2XX`), media types by type without
//! parameters, ignoring case, schema properties by name.
//!
//! # Schemas
//!
//! Schemas are compared recursively (the `schema` submodule says how): `$ref`s followed
//! in both versions, `allOf` parts merged, `oneOf`/`anyOf` members compared as sets
//! matched loosely (by the component a member refers to, else by its type and
//! position), `items` and `additionalProperties` values as the field `[]`. A property
//! declared in several `allOf` parts is compared through the first declaration that
//! says more than annotations. In a request, readOnly properties are skipped, and
//! nothing an object requires counts when the old schema could not be an object (a
//! string that may now also be sent as an object); in a response, writeOnly
//! properties are skipped. Adding or dropping `int64`, `float` or `double` is not a
//! format change: they only say how wide a number is.
//!
//! A component used in several places is reported under each field path that reaches
//! it (`user.login` and `assignee.login`: a flow reading either must be found), the
//! shallowest paths first, up to 16 for each changed schema of an operation, while a
//! per-operation allowance for such repeats lasts; every change is reported at least
//! once per operation. A path
//! never enters the same pair of schemas twice, so a recursive schema's changes are
//! reported where the recursion is first entered (`tree.name`, not
//! `tree.children[].name`).
//!
//! # Cost
//!
//! Nothing is bundled or copied: both descriptions are read in place. Pairs of schema
//! nodes are compared once for the whole diff however many operations reach them, and
//! a pair from which no change can be reached (found once, with Tarjan's strongly
//! connected components for recursive schemas) is never walked again, so two versions
//! of GitHub's description (13 MB, 1,200 operations) diff in well under a second (see
//! `benches/diff.rs`). Each operation may compare 20,000 pairs for the first time and
//! spend as much walking them; an operation stopped while exploring schemas it shares
//! with later ones is compared once more after them, and one that still needs more
//! gets a `comparison-stopped` change (its other schema changes may be missing). The
//! whole diff has a limit as well (2,000,000 units), past which every remaining
//! operation is stopped: a description whose every operation reaches every change
//! through cycles would otherwise answer with millions of changes.
//!
//! # Not compared
//!
//! Descriptions, summaries, titles, examples, `externalDocs` and `x-` extensions (none
//! of them changes what goes over the wire); links, callbacks and webhooks; path- and
//! operation-level `servers`; response header schemas; `discriminator`; `not`,
//! `if`/`then`/`else`, `patternProperties`, `dependentSchemas` and `prefixItems`;
//! constraints of response values (a longer `maxLength` in a reply rarely breaks a
//! reader); `uniqueItems`, `multipleOf`, `minProperties`/`maxProperties`; the removal of
//! an error (non-2xx) response; a schema that stops listing its properties altogether
//! (properties are then only compared when the new schema lists some). A new schema
//! whose refs cannot be followed is not compared.
//!
//! # Rules
//!
//! Breaking: a flow that worked may fail. Warning: it may fail, or needs a look.
//! Info: nothing we rely on changed.
//!
//! | Rule | Severity | When |
//! |------|----------|------|
//! | `operation-removed` | breaking | an operation is gone (neither its method and path nor its operationId are found) |
//! | `path-changed` | breaking | the operation with the same operationId moved to another path (or method): calls by method and path break, flows calling it by operationId survive |
//! | `operation-id-changed` | breaking | same method and path, another operationId: flows naming the operation by id break |
//! | `operation-deprecated` | warning | the operation became `deprecated` |
//! | `operation-added` | info | a new operation |
//! | `comparison-stopped` | info | the operation's schemas were too large to compare completely |
//! | `server-url-changed` | breaking | a URL of the document's `servers` is no longer listed |
//! | `security-scheme-changed` | breaking | a security scheme was removed or its type, location, name, HTTP scheme, flows, URLs or scopes changed |
//! | `security-requirements-changed` | breaking | the credentials an operation accepted (any one of its security requirement alternatives, scopes included) no longer suffice |
//! | `request-parameter-added-required` | breaking | a new required parameter |
//! | `request-parameter-became-required` | breaking | an optional parameter became required |
//! | `request-parameter-type-changed` | breaking | a parameter's type no longer accepts every value it did (narrowed or changed) |
//! | `request-parameter-removed` | warning | a parameter we may send is gone: servers usually ignore it, but what it did is lost |
//! | `request-parameter-deprecated` | warning | a parameter became `deprecated` |
//! | `request-parameter-serialization-changed` | warning | a parameter's `style` or `explode` (with their defaults) changed |
//! | `request-parameter-added-optional` | info | a new optional parameter |
//! | `request-body-added-required` | breaking | an operation without a request body now requires one |
//! | `request-body-became-required` | breaking | an optional request body became required |
//! | `request-media-type-removed` | breaking | a request body media type is no longer accepted |
//! | `request-body-removed` | warning | the request body is no longer documented |
//! | `request-body-added-optional` | info | an optional request body was added |
//! | `request-property-added-required` | breaking | a new required property in a request body (or object parameter) |
//! | `request-property-became-required` | breaking | a request property became required |
//! | `request-property-type-changed` | breaking | a request value's type changed to one that does not accept the old values |
//! | `request-property-type-narrowed` | breaking | a request value's type narrowed (`number` to `integer`, any to `string`) |
//! | `request-property-became-not-nullable` | breaking | a request value no longer accepts null |
//! | `request-enum-value-removed` | breaking | a value of a request enum was removed (one change per value) |
//! | `request-enum-added` | breaking | a request value became restricted to an enum |
//! | `request-property-max-length-decreased` | breaking | request `maxLength` added or decreased |
//! | `request-property-min-length-increased` | breaking | request `minLength` added or increased |
//! | `request-max-decreased` | breaking | request `maximum` (or exclusive maximum) added or decreased |
//! | `request-min-increased` | breaking | request `minimum` (or exclusive minimum) added or increased |
//! | `request-max-items-decreased` | breaking | request `maxItems` added or decreased |
//! | `request-min-items-increased` | breaking | request `minItems` added or increased |
//! | `request-property-removed` | warning | a request property is no longer documented (the server may ignore or refuse what we send) |
//! | `request-pattern-changed` | warning | a request `pattern` was added or changed |
//! | `request-format-changed` | warning | a request `format` was added or changed |
//! | `request-variant-removed` | warning | a request `oneOf`/`anyOf` member was removed (members are matched loosely) |
//! | `request-property-added-optional` | info | a new optional request property |
//! | `response-status-removed` | breaking | a documented success (2xx) response is gone |
//! | `response-media-type-removed` | breaking | a response media type is gone |
//! | `response-header-removed` | breaking | a response header a flow may read is gone |
//! | `response-status-added` | warning | a new response status (a flow may not handle it) |
//! | `response-property-removed` | breaking | a response property is gone |
//! | `response-property-renamed` | breaking | a response property is gone and one of the same type, format and component was added beside it, alone of that kind on both sides: reported once, naming both, instead of removed and added |
//! | `response-property-type-changed` | breaking | a response value may now be of a type it could not be (`integer` to `number` or `string`, `object` to `array`, typed to any) |
//! | `response-property-became-optional` | breaking | a required response property became optional |
//! | `response-property-became-nullable` | breaking | a response value may now be null |
//! | `response-enum-value-added` | warning | a response enum gained a value a flow may not handle (one change per value) |
//! | `response-enum-removed` | warning | a response value is no longer restricted to an enum |
//! | `response-format-changed` | warning | a response `format` changed or was removed |
//! | `response-variant-added` | warning | a response `oneOf`/`anyOf` gained a member |
//! | `response-property-added` | info | a new response property |
//! | `response-property-became-required` | info | an optional response property became required |
//! | `response-variant-removed` | info | a response `oneOf`/`anyOf` member was removed |
//!
//! Severities are fixed per rule; [`RULES`] lists them. `request-parameter-removed` is
//! a warning rather than breaking: a server ignores a query parameter it no longer
//! reads, and the call still succeeds, but the filter or option it set is gone, which
//! someone should look at.
//!
//! No input makes [`diff`] panic: documents are third-party, so every walk is bounded
//! in depth and work, and deep nesting is walked with explicit stacks.

mod rules;
mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Contract, MAX_DEPTH, pointer};
pub use rules::RULES;
use rules::Rule;
use schema::{Dir, Node, Rel, Schemas};

/// How much a change matters to a consumer, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing a flow relies on changed.
    Info,
    /// A flow may break, or someone should look.
    Warning,
    /// A flow that worked may fail.
    Breaking,
}

/// A place in one version of the description.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file, as named when the contract was loaded (the root or a file it refers
    /// to).
    pub file: String,
    /// JSON pointer (RFC 6901) into that file, e.g.
    /// `/paths/~1contacts/get/responses/200/content/application~1json/schema`.
    pub pointer: String,
}

/// One change between the two versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Stable id, kebab-case, e.g. "response-property-removed" (see the module docs).
    pub rule: &'static str,
    pub severity: Severity,
    /// "GET /contacts/{id}", the old method and path (the new ones for an added
    /// operation); `None` for document-level changes.
    pub operation: Option<String>,
    /// One plain sentence naming what changed.
    pub message: String,
    /// Where in the old version; `None` when the thing is new.
    pub old: Option<Location>,
    /// Where in the new version; `None` when it was removed.
    pub new: Option<Location>,
    /// The response field path this change touches, as a consumer reads it, when it is
    /// about a response body: segments like `["contacts", "[]", "email"]`; empty
    /// otherwise (also for a change of the whole body).
    pub field: Vec<String>,
    /// The response status key ("200", "2XX", "default") when it is about a response.
    pub response: Option<String>,
}

/// The changes from `old` to `new`, most severe first, then by rule, operation and
/// pointer; the same inputs give the same list.
pub fn diff(old: &Contract, new: &Contract) -> Vec<Change> {
    let mut run = Run {
        old,
        new,
        schemas: Schemas::new(old, new),
        out: Vec::new(),
    };
    run.servers();
    run.security_schemes();
    run.root_security();
    run.operations();
    let mut out = run.out;
    out.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    out.dedup();
    out
}

type OrderKey<'c> = (
    std::cmp::Reverse<Severity>,
    &'c str,
    &'c Option<String>,
    &'c str,
    &'c str,
    &'c Vec<String>,
    &'c Option<Location>,
    &'c Option<Location>,
);

fn order_key(change: &Change) -> OrderKey<'_> {
    let pointer = change
        .old
        .as_ref()
        .or(change.new.as_ref())
        .map_or("", |loc| loc.pointer.as_str());
    (
        std::cmp::Reverse(change.severity),
        change.rule,
        &change.operation,
        pointer,
        &change.message,
        &change.field,
        &change.old,
        &change.new,
    )
}

/// A place in one loaded contract: document index and JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    doc: usize,
    ptr: String,
}

/// `ptr` extended by one key, escaped.
fn child(ptr: &str, key: &str) -> String {
    let mut out = String::with_capacity(ptr.len() + key.len() + 1);
    out.push_str(ptr);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// A node of a contract with where it is.
struct Spot<'a> {
    doc: usize,
    ptr: String,
    value: &'a Value,
}

impl Spot<'_> {
    fn loc(&self) -> Loc {
        Loc {
            doc: self.doc,
            ptr: self.ptr.clone(),
        }
    }
}

/// Follows Reference Objects (a parameter, body, response, header or path item that is
/// a `$ref`) to what they stand for, keeping track of where that is.
fn follow<'a>(
    contract: &'a Contract,
    doc: usize,
    ptr: String,
    node: &'a Value,
) -> Option<Spot<'a>> {
    let mut spot = Spot {
        doc,
        ptr,
        value: node,
    };
    for _ in 0..MAX_DEPTH {
        let Some(Value::String(reference)) = spot.value.get("$ref") else {
            return Some(spot);
        };
        let (doc, value) = contract.resolve(spot.doc, reference)?;
        let (_, fragment) = pointer::split(reference);
        spot = Spot {
            doc,
            ptr: pointer::percent_decode(fragment)?.into_owned(),
            value,
        };
    }
    None
}

/// Where `key` of an operation is, before any ref is followed.
fn entry(op: &Spot<'_>, key: &str) -> Loc {
    Loc {
        doc: op.doc,
        ptr: child(&op.ptr, key),
    }
}

/// A child of a spot, Reference Objects followed.
fn follow_child<'a>(contract: &'a Contract, spot: &Spot<'a>, key: &str) -> Option<Spot<'a>> {
    let value = spot.value.get(key)?;
    follow(contract, spot.doc, child(&spot.ptr, key), value)
}

/// One operation of a contract.
struct Op<'a> {
    method: &'static str,
    path: &'a str,
    item: Spot<'a>,
    op: Spot<'a>,
}

impl<'a> Op<'a> {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn id(&self) -> Option<&'a str> {
        self.op.value.get("operationId").and_then(Value::as_str)
    }

    fn deprecated(&self) -> bool {
        self.op.value.get("deprecated") == Some(&Value::Bool(true))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.op.value.get(key)
    }

    fn path_params(&self) -> Vec<&'a str> {
        crate::operation::template_params(self.path)
    }
}

/// Every operation of `contract`, in the order of [`Contract::operations`].
fn operations(contract: &Contract) -> Vec<Op<'_>> {
    let Some(paths) = contract.root().get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        let Some(item) = follow(contract, 0, child("/paths", path), item) else {
            continue;
        };
        let Value::Object(map) = item.value else {
            continue;
        };
        for (key, method) in crate::operation::METHODS {
            if let Some(op @ Value::Object(_)) = map.get(key) {
                out.push(Op {
                    method,
                    path,
                    op: Spot {
                        doc: item.doc,
                        ptr: child(&item.ptr, key),
                        value: op,
                    },
                    item: Spot {
                        doc: item.doc,
                        ptr: item.ptr.clone(),
                        value: item.value,
                    },
                });
            }
        }
    }
    out
}

/// Where a schema change is, for its message.
#[derive(Clone, Copy)]
enum Site<'s> {
    Param { place: &'s str, name: &'s str },
    Body,
    Response { status: &'s str },
}

/// A parameter after refs are followed.
struct Param<'a> {
    name: &'a str,
    place: &'a str,
    required: bool,
    deprecated: bool,
    style: &'a str,
    explode: bool,
    schema: Option<Node<'a>>,
    /// Where it is defined (a component, when it is a `$ref`).
    loc: Loc,
    /// Its entry in the operation's (or path item's) list.
    entry: Loc,
}

/// A security requirement alternative: scheme name → scopes.
type Requirement<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

struct Run<'a> {
    old: &'a Contract,
    new: &'a Contract,
    schemas: Schemas<'a>,
    out: Vec<Change>,
}

impl<'a> Run<'a> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        rule: Rule,
        operation: Option<String>,
        message: String,
        old: Option<Loc>,
        new: Option<Loc>,
        field: Vec<String>,
        response: Option<&str>,
    ) {
        self.out.push(Change {
            rule: rule.id,
            severity: rule.severity,
            operation,
            message,
            old: old.map(|loc| location(self.old, loc)),
            new: new.map(|loc| location(self.new, loc)),
            field,
            response: response.map(str::to_string),
        });
    }

    fn servers(&mut self) {
        let (old, new) = (self.old.server_urls(), self.new.server_urls());
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        let listed: Vec<&str> = new.iter().map(|(_, url)| *url).collect();
        let shown = if listed.is_empty() {
            "none".to_string()
        } else {
            listed
                .iter()
                .map(|url| format!("`{url}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, url) in old {
            if listed.iter().any(|new| same(url, new)) {
                continue;
            }
            let new_loc = (!listed.is_empty()).then(|| Loc {
                doc: 0,
                ptr: "/servers".to_string(),
            });
            self.push(
                rules::SERVER_URL_CHANGED,
                None,
                format!("server URL `{url}` is no longer listed (servers now: {shown})"),
                Some(Loc {
                    doc: 0,
                    ptr: format!("/servers/{i}"),
                }),
                new_loc,
                Vec::new(),
                None,
            );
        }
    }

    fn security_schemes(&mut self) {
        let schemes = |contract: &'a Contract| -> Vec<(&'a str, Spot<'a>)> {
            let Some(map) = contract
                .root()
                .get("components")
                .and_then(|c| c.get("securitySchemes"))
                .and_then(Value::as_object)
            else {
                return Vec::new();
            };
            map.iter()
                .filter_map(|(name, scheme)| {
                    let ptr = child("/components/securitySchemes", name);
                    Some((name.as_str(), follow(contract, 0, ptr, scheme)?))
                })
                .collect()
        };
        let new: HashMap<&str, Spot<'a>> = schemes(self.new).into_iter().collect();
        for (name, old) in schemes(self.old) {
            let Some(new) = new.get(name) else {
                self.push(
                    rules::SECURITY_SCHEME_CHANGED,
                    None,
                    format!("security scheme `{name}` was removed"),
                    Some(old.loc()),
                    None,
                    Vec::new(),
                    None,
                );
                continue;
            };
            let changes = scheme_changes(old.value, new.value);
            if !changes.is_empty() {
                self.push(
                    rules::SECURITY_SCHEME_CHANGED,
                    None,
                    format!("security scheme `{name}` changed: {}", changes.join("; ")),
                    Some(old.loc()),
                    Some(new.loc()),
                    Vec::new(),
                    None,
                );
            }
        }
    }

    /// Compares the document-level security requirements, once for every operation
    /// that inherits them in both versions.
    fn root_security(&mut self) {
        let old = requirements(self.old.root().get("security"));
        let new = requirements(self.new.root().get("security"));
        if breaks(&old, &new) {
            let loc = |contract: &Contract| {
                contract.root().get("security").map(|_| Loc {
                    doc: 0,
                    ptr: "/security".to_string(),
                })
            };
            self.push(
                rules::SECURITY_REQUIREMENTS_CHANGED,
                None,
                format!(
                    "document security requirements changed from {} to {}: credentials that worked may be refused",
                    show_requirements(&old),
                    show_requirements(&new)
                ),
                loc(self.old),
                loc(self.new),
                Vec::new(),
                None,
            );
        }
    }

    fn operations(&mut self) {
        let old_ops = operations(self.old);
        let new_ops = operations(self.new);
        let mut by_key: HashMap<(&str, String), usize> = HashMap::new();
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        for (i, op) in new_ops.iter().enumerate() {
            by_key
                .entry((op.method, crate::operation::path_shape(op.path)))
                .or_insert(i);
            if let Some(id) = op.id() {
                by_id.entry(id).or_insert(i);
            }
        }
        let mut taken = vec![false; new_ops.len()];
        let mut pairs: Vec<Option<(usize, bool)>> = vec![None; old_ops.len()];
        for (i, op) in old_ops.iter().enumerate() {
            if let Some(&j) = by_key.get(&(op.method, crate::operation::path_shape(op.path)))
                && !taken[j]
            {
                taken[j] = true;
                pairs[i] = Some((j, false));
            }
        }
        for (i, op) in old_ops.iter().enumerate() {
            if pairs[i].is_some() {
                continue;
            }
            if let Some(&j) = op.id().and_then(|id| by_id.get(id))
                && !taken[j]
            {
                taken[j] = true;
                pairs[i] = Some((j, true));
            }
        }
        // An operation stopped while exploring schemas shared with later ones is
        // compared again at the end, when they may have been explored.
        let mut again: Vec<(usize, usize, bool, std::ops::Range<usize>)> = Vec::new();
        for (i, old) in old_ops.iter().enumerate() {
            match pairs[i] {
                Some((j, moved)) => {
                    let start = self.out.len();
                    self.operation(old, &new_ops[j], moved);
                    if self.schemas.stopped() && !self.schemas.exhausted() {
                        again.push((i, j, moved, start..self.out.len()));
                    }
                }
                None => self.push(
                    rules::OPERATION_REMOVED,
                    Some(old.label()),
                    format!("operation {} was removed", old.label()),
                    Some(old.op.loc()),
                    None,
                    Vec::new(),
                    None,
                ),
            }
        }
        let mut stale = Vec::new();
        for (i, j, moved, range) in again {
            self.operation(&old_ops[i], &new_ops[j], moved);
            stale.push(range);
        }
        for range in stale.into_iter().rev() {
            self.out.drain(range);
        }
        for (j, new) in new_ops.iter().enumerate() {
            if !taken[j] {
                self.push(
                    rules::OPERATION_ADDED,
                    Some(new.label()),
                    format!("operation {} was added", new.label()),
                    None,
                    Some(new.op.loc()),
                    Vec::new(),
                    None,
                );
            }
        }
    }

    fn operation(&mut self, old: &Op<'a>, new: &Op<'a>, moved: bool) {
        let label = old.label();
        let at = || Some(label.clone());
        self.schemas.start();
        if moved {
            self.push(
                rules::PATH_CHANGED,
                at(),
                format!(
                    "operation `{}` moved from {} to {}: calls by method and path break, flows calling it by operationId keep working",
                    old.id().unwrap_or_default(),
                    old.label(),
                    new.label()
                ),
                Some(old.op.loc()),
                Some(new.op.loc()),
                Vec::new(),
                None,
            );
        } else if let Some(id) = old.id()
            && old.id() != new.id()
        {
            let message = match new.id() {
                Some(new_id) => format!(
                    "operationId changed from `{id}` to `{new_id}`: flows naming the operation by id break, calls by method and path keep working"
                ),
                None => format!(
                    "operationId `{id}` was removed: flows naming the operation by id break, calls by method and path keep working"
                ),
            };
            self.push(
                rules::OPERATION_ID_CHANGED,
                at(),
                message,
                Some(old.op.loc()),
                Some(new.op.loc()),
                Vec::new(),
                None,
            );
        }
        if !old.deprecated() && new.deprecated() {
            self.push(
                rules::OPERATION_DEPRECATED,
                at(),
                format!("operation {label} became deprecated"),
                Some(old.op.loc()),
                Some(new.op.loc()),
                Vec::new(),
                None,
            );
        }
        self.operation_security(old, new, &label);
        self.parameters(old, new, &label);
        self.request_body(old, new, &label);
        self.responses(old, new, &label);
        if self.schemas.stopped() {
            let limit = if self.schemas.exhausted() {
                format!(
                    "the whole diff reached its limit of {} units of schema comparison",
                    schema::MAX_TOTAL
                )
            } else {
                format!(
                    "{label} needs more than {} new schema comparisons, twice",
                    schema::MAX_PAIRS
                )
            };
            self.push(
                rules::COMPARISON_STOPPED,
                at(),
                format!(
                    "comparison stopped: schema too large ({limit}); other changes to this operation's schemas may not be reported"
                ),
                Some(old.op.loc()),
                Some(new.op.loc()),
                Vec::new(),
                None,
            );
        }
    }

    fn operation_security(&mut self, old: &Op<'a>, new: &Op<'a>, label: &str) {
        let (old_own, new_own) = (old.get("security"), new.get("security"));
        if old_own.is_none() && new_own.is_none() {
            // Both inherit the document's, compared once.
            return;
        }
        let effective = |contract: &'a Contract, own: Option<&'a Value>| {
            own.or_else(|| contract.root().get("security"))
        };
        let old_reqs = requirements(effective(self.old, old_own));
        let new_reqs = requirements(effective(self.new, new_own));
        if !breaks(&old_reqs, &new_reqs) {
            return;
        }
        let loc = |op: &Op<'a>, contract: &Contract, own: Option<&Value>| match own {
            Some(_) => Some(Loc {
                doc: op.op.doc,
                ptr: child(&op.op.ptr, "security"),
            }),
            None => contract.root().get("security").map(|_| Loc {
                doc: 0,
                ptr: "/security".to_string(),
            }),
        };
        self.push(
            rules::SECURITY_REQUIREMENTS_CHANGED,
            Some(label.to_string()),
            format!(
                "security requirements of {label} changed from {} to {}: credentials that worked may be refused",
                show_requirements(&old_reqs),
                show_requirements(&new_reqs)
            ),
            loc(old, self.old, old_own),
            loc(new, self.new, new_own),
            Vec::new(),
            None,
        );
    }

    fn parameters(&mut self, old: &Op<'a>, new: &Op<'a>, label: &str) {
        let old_params = parameters(self.old, old);
        let new_params = parameters(self.new, new);
        let at = || Some(label.to_string());
        for (key, param) in &new_params {
            if old_params.contains_key(key) {
                continue;
            }
            let (rule, kind) = if param.required {
                (rules::PARAMETER_ADDED_REQUIRED, "required")
            } else {
                (rules::PARAMETER_ADDED_OPTIONAL, "optional")
            };
            self.push(
                rule,
                at(),
                format!(
                    "{kind} {} parameter `{}` was added",
                    param.place, param.name
                ),
                None,
                Some(param.entry.clone()),
                Vec::new(),
                None,
            );
        }
        for (key, old_param) in &old_params {
            let Some(new_param) = new_params.get(key) else {
                self.push(
                    rules::PARAMETER_REMOVED,
                    at(),
                    format!(
                        "{} parameter `{}` was removed",
                        old_param.place, old_param.name
                    ),
                    Some(old_param.entry.clone()),
                    None,
                    Vec::new(),
                    None,
                );
                continue;
            };
            let (place, name) = (old_param.place, old_param.name);
            let locs = || (Some(old_param.loc.clone()), Some(new_param.loc.clone()));
            if !old_param.required && new_param.required {
                let (o, n) = locs();
                self.push(
                    rules::PARAMETER_BECAME_REQUIRED,
                    at(),
                    format!("{place} parameter `{name}` became required"),
                    o,
                    n,
                    Vec::new(),
                    None,
                );
            }
            if !old_param.deprecated && new_param.deprecated {
                let (o, n) = locs();
                self.push(
                    rules::PARAMETER_DEPRECATED,
                    at(),
                    format!("{place} parameter `{name}` became deprecated"),
                    o,
                    n,
                    Vec::new(),
                    None,
                );
            }
            if (old_param.style, old_param.explode) != (new_param.style, new_param.explode) {
                let (o, n) = locs();
                self.push(
                    rules::PARAMETER_SERIALIZATION_CHANGED,
                    at(),
                    format!(
                        "{place} parameter `{name}` serialization changed from style {}, explode {} to style {}, explode {}",
                        old_param.style, old_param.explode, new_param.style, new_param.explode
                    ),
                    o,
                    n,
                    Vec::new(),
                    None,
                );
            }
            if let (Some(old_schema), Some(new_schema)) = (&old_param.schema, &new_param.schema) {
                let rels =
                    self.schemas
                        .compare(old_schema.clone(), new_schema.clone(), Dir::Request);
                self.schema_changes(label, Site::Param { place, name }, rels);
            }
        }
    }

    fn request_body(&mut self, old: &Op<'a>, new: &Op<'a>, label: &str) {
        let old_body = follow_child(self.old, &old.op, "requestBody");
        let new_body = follow_child(self.new, &new.op, "requestBody");
        let required = |body: &Spot<'_>| body.value.get("required") == Some(&Value::Bool(true));
        let at = || Some(label.to_string());
        let (old_body, new_body) = match (old_body, new_body) {
            (None, None) => return,
            (None, Some(new_body)) => {
                let (rule, message) = if required(&new_body) {
                    (
                        rules::BODY_ADDED_REQUIRED,
                        "a required request body was added",
                    )
                } else {
                    (
                        rules::BODY_ADDED_OPTIONAL,
                        "an optional request body was added",
                    )
                };
                self.push(
                    rule,
                    at(),
                    message.to_string(),
                    None,
                    Some(entry(&new.op, "requestBody")),
                    Vec::new(),
                    None,
                );
                return;
            }
            (Some(_), None) => {
                self.push(
                    rules::BODY_REMOVED,
                    at(),
                    "the request body is no longer documented".to_string(),
                    Some(entry(&old.op, "requestBody")),
                    None,
                    Vec::new(),
                    None,
                );
                return;
            }
            (Some(old_body), Some(new_body)) => (old_body, new_body),
        };
        if !required(&old_body) && required(&new_body) {
            self.push(
                rules::BODY_BECAME_REQUIRED,
                at(),
                "the request body became required".to_string(),
                Some(old_body.loc()),
                Some(new_body.loc()),
                Vec::new(),
                None,
            );
        }
        let old_media = media_types(self.old, &old_body);
        let new_media = media_types(self.new, &new_body);
        for (key, (written, old_spot)) in &old_media {
            let Some((_, new_spot)) = new_media.get(key) else {
                self.push(
                    rules::REQUEST_MEDIA_TYPE_REMOVED,
                    at(),
                    format!("request media type `{written}` is no longer accepted"),
                    Some(old_spot.loc()),
                    None,
                    Vec::new(),
                    None,
                );
                continue;
            };
            if let (Some(old_schema), Some(new_schema)) = (schema_of(old_spot), schema_of(new_spot))
            {
                let rels = self.schemas.compare(old_schema, new_schema, Dir::Request);
                self.schema_changes(label, Site::Body, rels);
            }
        }
    }

    fn responses(&mut self, old: &Op<'a>, new: &Op<'a>, label: &str) {
        let old_responses = responses(self.old, &old.op);
        let new_responses = responses(self.new, &new.op);
        let at = || Some(label.to_string());
        for (status, (old_entry, old_response)) in &old_responses {
            let new_response = new_responses
                .get(status)
                .or_else(|| new_responses.get(&class_of(status)?));
            let Some((_, new_response)) = new_response else {
                if is_success(status) {
                    self.push(
                        rules::STATUS_REMOVED,
                        at(),
                        format!("success response {status} was removed"),
                        Some(old_entry.clone()),
                        None,
                        Vec::new(),
                        Some(status),
                    );
                }
                continue;
            };
            self.response(label, status, old_response, new_response);
        }
        for (status, (new_entry, _)) in &new_responses {
            let known = old_responses.contains_key(status)
                || class_of(status).is_some_and(|class| old_responses.contains_key(&class));
            if !known {
                self.push(
                    rules::STATUS_ADDED,
                    at(),
                    format!("response {status} was added"),
                    None,
                    Some(new_entry.clone()),
                    Vec::new(),
                    Some(status),
                );
            }
        }
    }

    fn response(&mut self, label: &str, status: &str, old: &Spot<'a>, new: &Spot<'a>) {
        let at = || Some(label.to_string());
        let old_headers = headers(self.old, old);
        let new_headers = headers(self.new, new);
        for (key, (written, spot)) in &old_headers {
            if !new_headers.contains_key(key) {
                self.push(
                    rules::HEADER_REMOVED,
                    at(),
                    format!("response {status} header `{written}` was removed"),
                    Some(spot.loc()),
                    None,
                    Vec::new(),
                    Some(status),
                );
            }
        }
        let old_media = media_types(self.old, old);
        let new_media = media_types(self.new, new);
        for (key, (written, old_spot)) in &old_media {
            let Some((_, new_spot)) = new_media.get(key) else {
                self.push(
                    rules::RESPONSE_MEDIA_TYPE_REMOVED,
                    at(),
                    format!("response {status} media type `{written}` was removed"),
                    Some(old_spot.loc()),
                    None,
                    Vec::new(),
                    Some(status),
                );
                continue;
            };
            if let (Some(old_schema), Some(new_schema)) = (schema_of(old_spot), schema_of(new_spot))
            {
                let rels = self.schemas.compare(old_schema, new_schema, Dir::Response);
                self.schema_changes(label, Site::Response { status }, rels);
            }
        }
    }

    /// Turns schema changes into changes of an operation.
    fn schema_changes(&mut self, label: &str, site: Site<'_>, rels: Vec<Rel>) {
        for rel in rels {
            let mut rule = rel.rule;
            if let Site::Param { .. } = site
                && rel.path.is_empty()
                && (rule == rules::REQUEST_TYPE_CHANGED || rule == rules::REQUEST_TYPE_NARROWED)
            {
                rule = rules::PARAMETER_TYPE_CHANGED;
            }
            let subject = subject(site, &rel.path);
            let message = match &rel.renamed_to {
                Some(to) => {
                    let mut renamed = rel.path.clone();
                    renamed.pop();
                    renamed.push(to.clone());
                    format!(
                        "{subject} was renamed to `{}` (removed, and a property of the same type added beside it)",
                        show_field(&renamed)
                    )
                }
                None => format!("{subject} {}", rel.what),
            };
            let (field, response) = match site {
                Site::Response { status } => (rel.path, Some(status)),
                _ => (Vec::new(), None),
            };
            self.push(
                rule,
                Some(label.to_string()),
                message,
                rel.old,
                rel.new,
                field,
                response,
            );
        }
    }
}

/// The subject of a schema change's sentence.
fn subject(site: Site<'_>, field: &[String]) -> String {
    let shown = show_field(field);
    match (site, field.is_empty()) {
        (Site::Param { place, name }, true) => format!("{place} parameter `{name}`"),
        (Site::Param { place, name }, false) => {
            format!("{place} parameter `{name}` property `{shown}`")
        }
        (Site::Body, true) => "the request body".to_string(),
        (Site::Body, false) => format!("request body property `{shown}`"),
        (Site::Response { status }, true) => format!("response {status} body"),
        (Site::Response { status }, false) => format!("response {status} property `{shown}`"),
    }
}

/// `["contacts", "[]", "email"]` as `contacts[].email`.
fn show_field(field: &[String]) -> String {
    let mut out = String::new();
    for segment in field {
        if segment != "[]" && !out.is_empty() {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

fn location(contract: &Contract, loc: Loc) -> Location {
    Location {
        file: contract.file(loc.doc).to_string(),
        pointer: loc.ptr,
    }
}

/// The parameters of an operation, path-level ones overridden by operation-level ones,
/// keyed by location and name (path parameters by position in the template).
fn parameters<'a>(contract: &'a Contract, op: &Op<'a>) -> BTreeMap<(String, String), Param<'a>> {
    let template = op.path_params();
    let mut out = BTreeMap::new();
    for owner in [&op.item, &op.op] {
        let Some(list) = owner.value.get("parameters").and_then(Value::as_array) else {
            continue;
        };
        let base = child(&owner.ptr, "parameters");
        for (i, param) in list.iter().enumerate() {
            let Some(spot) = follow(contract, owner.doc, child(&base, &i.to_string()), param)
            else {
                continue;
            };
            let (Some(name), Some(place)) = (
                spot.value.get("name").and_then(Value::as_str),
                spot.value.get("in").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = match place {
                "path" => match template.iter().position(|p| *p == name) {
                    Some(at) => format!("#{at}"),
                    None => name.to_string(),
                },
                "header" => {
                    let lower = name.to_ascii_lowercase();
                    if ["accept", "content-type", "authorization"].contains(&lower.as_str()) {
                        continue;
                    }
                    lower
                }
                _ => name.to_string(),
            };
            let style = spot
                .value
                .get("style")
                .and_then(Value::as_str)
                .unwrap_or(match place {
                    "query" | "cookie" => "form",
                    _ => "simple",
                });
            let explode = spot
                .value
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(style == "form");
            let schema = match spot.value.get("schema") {
                Some(schema) => Some(Node::new(spot.doc, child(&spot.ptr, "schema"), schema)),
                None => spot
                    .value
                    .get("content")
                    .and_then(Value::as_object)
                    .and_then(|content| content.iter().next())
                    .and_then(|(media, value)| {
                        let ptr = child(&child(&child(&spot.ptr, "content"), media), "schema");
                        Some(Node::new(spot.doc, ptr, value.get("schema")?))
                    }),
            };
            out.insert(
                (place.to_string(), key),
                Param {
                    name,
                    place,
                    required: spot.value.get("required") == Some(&Value::Bool(true)),
                    deprecated: spot.value.get("deprecated") == Some(&Value::Bool(true)),
                    style,
                    explode,
                    schema,
                    loc: spot.loc(),
                    entry: Loc {
                        doc: owner.doc,
                        ptr: child(&base, &i.to_string()),
                    },
                },
            );
        }
    }
    out
}

/// The media types of a body or response, keyed by type without parameters in lower
/// case, with the key as written.
fn media_types<'a>(
    contract: &'a Contract,
    owner: &Spot<'a>,
) -> BTreeMap<String, (&'a str, Spot<'a>)> {
    let Some(content) = owner.value.get("content").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    let base = child(&owner.ptr, "content");
    let mut out = BTreeMap::new();
    for (media, value) in content {
        let key = media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if let Some(spot) = follow(contract, owner.doc, child(&base, media), value) {
            out.entry(key).or_insert((media.as_str(), spot));
        }
    }
    out
}

fn schema_of<'a>(media: &Spot<'a>) -> Option<Node<'a>> {
    let schema = media.value.get("schema")?;
    Some(Node::new(media.doc, child(&media.ptr, "schema"), schema))
}

/// The headers of a response, keyed in lower case, with the name as written.
fn headers<'a>(
    contract: &'a Contract,
    response: &Spot<'a>,
) -> BTreeMap<String, (&'a str, Spot<'a>)> {
    let Some(map) = response.value.get("headers").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    let base = child(&response.ptr, "headers");
    let mut out = BTreeMap::new();
    for (name, header) in map {
        let key = name.to_ascii_lowercase();
        if key == "content-type" {
            continue;
        }
        if let Some(spot) = follow(contract, response.doc, child(&base, name), header) {
            out.entry(key).or_insert((name.as_str(), spot));
        }
    }
    out
}

/// The responses of an operation by status key (`2xx` written as `2XX`), each with its
/// entry in the operation.
fn responses<'a>(contract: &'a Contract, op: &Spot<'a>) -> BTreeMap<String, (Loc, Spot<'a>)> {
    let Some(map) = op.value.get("responses").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    let base = child(&op.ptr, "responses");
    let mut out = BTreeMap::new();
    for (status, response) in map {
        let key = if status.eq_ignore_ascii_case("default") {
            "default".to_string()
        } else {
            status.to_ascii_uppercase()
        };
        let entry = child(&base, status);
        if let Some(spot) = follow(contract, op.doc, entry.clone(), response) {
            let entry = Loc {
                doc: op.doc,
                ptr: entry,
            };
            out.entry(key).or_insert((entry, spot));
        }
    }
    out
}

/// `2XX` for `201`.
fn class_of(status: &str) -> Option<String> {
    let bytes = status.as_bytes();
    (bytes.len() == 3 && bytes.iter().all(u8::is_ascii_digit))
        .then(|| format!("{}XX", char::from(bytes[0])))
}

fn is_success(status: &str) -> bool {
    status.len() == 3 && status.starts_with('2')
}

/// A `security` list as alternatives; no list (or an empty one) is one alternative
/// needing nothing.
fn requirements(value: Option<&Value>) -> Vec<Requirement<'_>> {
    let list = match value.and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list,
        _ => return vec![Requirement::new()],
    };
    list.iter()
        .filter_map(Value::as_object)
        .map(|alternative| {
            alternative
                .iter()
                .map(|(scheme, scopes)| {
                    let scopes = scopes
                        .as_array()
                        .map(|s| s.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    (scheme.as_str(), scopes)
                })
                .collect()
        })
        .collect()
}

/// Whether some old alternative no longer suffices: no new alternative needs only
/// schemes it has, with only scopes it has.
fn breaks(old: &[Requirement<'_>], new: &[Requirement<'_>]) -> bool {
    old.iter().any(|have| {
        !new.iter().any(|need| {
            need.iter().all(|(scheme, scopes)| {
                have.get(scheme)
                    .is_some_and(|granted| scopes.is_subset(granted))
            })
        })
    })
}

fn show_requirements(alternatives: &[Requirement<'_>]) -> String {
    let shown: Vec<String> = alternatives
        .iter()
        .map(|alternative| {
            if alternative.is_empty() {
                return "none".to_string();
            }
            let parts: Vec<String> = alternative
                .iter()
                .map(|(scheme, scopes)| {
                    if scopes.is_empty() {
                        (*scheme).to_string()
                    } else {
                        let scopes: Vec<&str> = scopes.iter().copied().collect();
                        format!("{scheme} ({})", scopes.join(", "))
                    }
                })
                .collect();
            parts.join(" and ")
        })
        .collect();
    shown.join(" or ")
}

/// What changed in a security scheme's definition, one phrase each.
fn scheme_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    for key in ["type", "in", "name", "openIdConnectUrl"] {
        let (a, b) = (text(old, key), text(new, key));
        if a != b {
            out.push(format!(
                "{key} {} became {}",
                a.as_deref().unwrap_or("(none)"),
                b.as_deref().unwrap_or("(none)")
            ));
        }
    }
    let scheme = |value: &Value| text(value, "scheme").map(|s| s.to_ascii_lowercase());
    if scheme(old) != scheme(new) {
        out.push(format!(
            "scheme {} became {}",
            scheme(old).as_deref().unwrap_or("(none)"),
            scheme(new).as_deref().unwrap_or("(none)")
        ));
    }
    let empty = Map::new();
    let old_flows = old
        .get("flows")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_flows = new
        .get("flows")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (kind, old_flow) in old_flows {
        let Some(new_flow) = new_flows.get(kind) else {
            out.push(format!("flow {kind} was removed"));
            continue;
        };
        for key in ["authorizationUrl", "tokenUrl"] {
            let (a, b) = (text(old_flow, key), text(new_flow, key));
            if a != b {
                out.push(format!(
                    "{kind} {key} {} became {}",
                    a.as_deref().unwrap_or("(none)"),
                    b.as_deref().unwrap_or("(none)")
                ));
            }
        }
        let scopes = |flow: &Value| -> BTreeSet<String> {
            flow.get("scopes")
                .and_then(Value::as_object)
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (a, b) = (scopes(old_flow), scopes(new_flow));
        for scope in a.difference(&b) {
            out.push(format!("{kind} scope `{scope}` was removed"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn contract(value: Value) -> Contract {
        Contract::inline(value, "3.1.0")
    }

    /// A document whose one operation returns `s0`, among `schemas`.
    fn returning(schemas: serde_json::Map<String, Value>) -> Contract {
        contract(json!({
            "openapi": "3.1.0",
            "paths": {"/a": {"get": {"responses": {"200": {
                "description": "A.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/s0"}}}
            }}}}},
            "components": {"schemas": schemas}
        }))
    }

    #[test]
    fn path_templates_are_normalised() {
        assert_eq!(
            crate::operation::path_shape("/a/{id}/b/{x}.json"),
            "/a/{}/b/{}.json"
        );
        assert_eq!(crate::operation::path_shape("/a/{unclosed"), "/a/{");
        assert_eq!(crate::operation::path_shape("/a/}{"), "/a/}{");
    }

    #[test]
    fn status_classes() {
        assert_eq!(class_of("201").as_deref(), Some("2XX"));
        assert_eq!(class_of("2XX"), None);
        assert_eq!(class_of("default"), None);
        // The 2XX class documents success responses too.
        assert!(is_success("204") && is_success("2XX") && !is_success("404"));
    }

    #[test]
    fn security_requirements_break_when_old_credentials_no_longer_suffice() {
        let key = json!([{"key": []}]);
        let key_or_oauth = json!([{"key": []}, {"oauth": ["read"]}]);
        let read = json!([{"oauth": ["read"]}]);
        let read_write = json!([{"oauth": ["read", "write"]}]);
        let none = json!([]);
        let anonymous_allowed = json!([{}, {"key": []}]);
        let breaks =
            |old: &Value, new: &Value| breaks(&requirements(Some(old)), &requirements(Some(new)));
        // An alternative added, fewer scopes, no security at all: fine.
        assert!(!breaks(&key, &key_or_oauth));
        assert!(!breaks(&read_write, &read));
        assert!(!breaks(&key, &none));
        // An alternative removed, a scope added, credentials needed where none were.
        assert!(breaks(&key_or_oauth, &key));
        assert!(breaks(&read, &read_write));
        assert!(breaks(&none, &key));
        assert!(breaks(&anonymous_allowed, &key));
    }

    #[test]
    fn fields_are_shown_as_flows_write_them() {
        let field = |segments: &[&str]| {
            show_field(&segments.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(field(&["contacts", "[]", "email"]), "contacts[].email");
        assert_eq!(field(&["[]", "id"]), "[].id");
        assert_eq!(field(&[]), "");
    }

    #[test]
    fn long_ref_chains_are_walked_without_recursion() {
        // 5,000 schemas, each the `next` of the one before: deeper than any stack
        // would take recursively; the change is at the far end.
        const LENGTH: usize = 5_000;
        let chain = |last: &str| {
            let mut schemas = serde_json::Map::new();
            for i in 0..LENGTH {
                let next = if i + 1 < LENGTH {
                    json!({"$ref": format!("#/components/schemas/s{}", i + 1)})
                } else {
                    json!({"type": last})
                };
                schemas.insert(
                    format!("s{i}"),
                    json!({"type": "object", "properties": {"next": next}}),
                );
            }
            returning(schemas)
        };
        let (old, new) = (chain("string"), chain("integer"));
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1, "{changes:#?}");
        assert_eq!(changes[0].rule, "response-property-type-changed");
        assert_eq!(changes[0].field.len(), LENGTH);
        assert!(diff(&old, &chain("string")).is_empty());
    }

    #[test]
    fn changes_beyond_a_cycle_are_found() {
        // s0 ↔ s1 form a cycle; s1 also refers to s2, whose field changes. The cycle
        // is one strongly connected component, dirty because of what it reaches.
        let doc = |ty: &str| {
            let mut schemas = serde_json::Map::new();
            schemas.insert(
                "s0".into(),
                json!({"properties": {"b": {"$ref": "#/components/schemas/s1"}}}),
            );
            schemas.insert(
                "s1".into(),
                json!({"properties": {
                    "a": {"$ref": "#/components/schemas/s0"},
                    "c": {"$ref": "#/components/schemas/s2"}
                }}),
            );
            schemas.insert("s2".into(), json!({"properties": {"x": {"type": ty}}}));
            returning(schemas)
        };
        let changes = diff(&doc("string"), &doc("boolean"));
        let fields: Vec<Vec<String>> = changes.iter().map(|c| c.field.clone()).collect();
        assert_eq!(fields, [vec!["b", "c", "x"]], "{changes:#?}");
    }
}
