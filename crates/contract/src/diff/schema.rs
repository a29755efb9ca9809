//! Comparing schemas, old and new, recursively and from one side of the wire: what we
//! send (`Dir::Request`) must still be accepted, what we read (`Dir::Response`) must
//! still be what we were promised.
//!
//! # One pair of nodes
//!
//! Each side is first *flattened*: a node, its `$ref` target and its `allOf` parts
//! (transitively) merged into one view of types, properties, required names, `items`,
//! enum values and constraints; `oneOf`/`anyOf` members add the properties they
//! document (the first member documenting a name wins) and their type union, and are
//! kept as a member set compared loosely by name. A `oneOf`/`anyOf` whose members are
//! one schema and `{type: "null"}` is that schema, nullable. Comparing the two views
//! gives the pair's *local* changes (its type, its enum, a property removed…) and its
//! *children*: the pairs of property schemas with the same name, of `items`, of
//! `additionalProperties` values.
//!
//! # The graph of pairs
//!
//! Pairs (lists of node addresses, old and new, and the side of the wire) form a graph
//! shared by the whole diff: each pair is flattened and compared once, however many
//! operations reach it. Its strongly connected components are found with Tarjan's
//! algorithm (iteratively: specs may nest deeper than the stack allows), which tells
//! for each pair, recursive schemas included, whether it is *dirty*: whether a change
//! can be reached from it. Clean pairs are never walked again.
//!
//! # Reporting
//!
//! An operation reports the changes reachable from its schemas with the field path
//! that leads to them, walking simple paths (no pair twice: a recursive schema is
//! followed round once) breadth first. A changed component used in several places is
//! reported under each (as `user.login` and as `assignee.login`, so that a flow reading
//! either is found), up to [`MAX_PATHS`] paths per pair, the shallowest, while the
//! operation's allowance for them lasts; every change is reported at least once.
//!
//! # Limits
//!
//! Each operation may compare [`MAX_PAIRS`] pairs for the first time and spend as many
//! units walking pairs and reporting changes, and the whole diff [`MAX_TOTAL`] units
//! (all of these, and pairs explored again); past any of them, the operation's
//! comparison stops. An operation stopped while exploring pairs it shares with later
//! operations is compared once more after them (see `diff`), with a new budget: what
//! they explored is not charged to it again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::Loc;
use super::rules::{self, Rule};
use crate::{Contract, MAX_DEPTH, pointer};

/// Work units one operation may spend comparing its schemas.
pub(super) const MAX_PAIRS: usize = 20_000;

/// How many paths of one operation's schemas a pair's changes are reported under: a
/// component used in several places is reported under each (up to this many, the
/// shallowest first), so that a flow reading any of them is found.
const MAX_PATHS: usize = 16;

/// Units one operation may spend reporting changes under more than their shallowest
/// path; when they run out, the other changes are still reported, once each.
const MAX_EXTRA: usize = 4_000;

/// Work units the whole diff may spend: bounds the time and the size of the answer
/// when every operation reaches a large recursive schema full of changes.
pub(super) const MAX_TOTAL: usize = 2_000_000;

/// Schema nodes one flattening may visit, nested `oneOf` members included.
const MAX_FLATTEN: usize = 2_000;

/// How deep `oneOf`/`anyOf` members inside members are flattened.
const MAX_MEMBER_DEPTH: usize = 8;

/// Which side of the wire a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Dir {
    /// We send values of it: it must not accept less.
    Request,
    /// We read values of it: it must not promise less.
    Response,
}

/// A schema node with where it is.
#[derive(Clone, Debug)]
pub(super) struct Node<'a> {
    pub(super) doc: usize,
    /// JSON pointer into document `doc`.
    pub(super) ptr: String,
    pub(super) value: &'a Value,
    /// Reached by following a `$ref`: the last token of `ptr` names it.
    named: bool,
}

impl<'a> Node<'a> {
    pub(super) fn new(doc: usize, ptr: String, value: &'a Value) -> Self {
        Node {
            doc,
            ptr,
            value,
            named: false,
        }
    }

    fn child(&self, key: &str, value: &'a Value) -> Self {
        Node::new(self.doc, super::child(&self.ptr, key), value)
    }

    fn loc(&self) -> Loc {
        Loc {
            doc: self.doc,
            ptr: self.ptr.clone(),
        }
    }

    fn addr(&self) -> usize {
        std::ptr::from_ref(self.value).addr()
    }

    /// The name of the component this node is, when it was reached through a `$ref`.
    fn name(&self) -> Option<String> {
        self.named.then(|| last_token(&self.ptr))
    }
}

/// One change found inside a schema.
#[derive(Clone, Debug)]
pub(super) struct Rel {
    pub(super) rule: Rule,
    /// Field segments from the compared schema down to the change.
    pub(super) path: Vec<String>,
    /// What happened, finishing a sentence whose subject names the field.
    pub(super) what: String,
    /// For a rename: the new name of the property the field path ends with.
    pub(super) renamed_to: Option<String>,
    pub(super) old: Option<Loc>,
    pub(super) new: Option<Loc>,
}

type Key = (Vec<usize>, Vec<usize>, Dir);

/// Where a pair is in Tarjan's walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unvisited,
    /// On Tarjan's stack, with its index and low link.
    Open {
        index: usize,
        low: usize,
    },
    /// Its component is complete: `dirty` is known.
    Done,
}

/// A pair's own changes and its children, computed once.
struct Local {
    changes: Vec<Rel>,
    /// Field segment and pair.
    children: Vec<(String, usize)>,
}

/// Two lists of nodes (each an implicit `allOf`), compared from one side.
struct Pair<'a> {
    old: Vec<Node<'a>>,
    new: Vec<Node<'a>>,
    dir: Dir,
    local: Option<Local>,
    state: State,
    dirty: bool,
}

/// The comparer: the graph of pairs, shared by every operation of one diff.
pub(super) struct Schemas<'a> {
    old: &'a Contract,
    new: &'a Contract,
    ids: HashMap<Key, usize>,
    pairs: Vec<Pair<'a>>,
    next_index: usize,
    /// Tarjan's stack.
    open: Vec<usize>,
    /// Pairs the operation compared for the first time.
    fresh_used: usize,
    /// Units the operation may spend walking pairs and reporting changes.
    left: usize,
    total_left: usize,
    stopped: bool,
}

/// Type bits.
const OBJECT: u8 = 1;
const ARRAY: u8 = 2;
const STRING: u8 = 4;
const NUMBER: u8 = 8;
const INTEGER: u8 = 16;
const BOOLEAN: u8 = 32;
const TYPE_NAMES: [(u8, &str); 6] = [
    (OBJECT, "object"),
    (ARRAY, "array"),
    (STRING, "string"),
    (NUMBER, "number"),
    (INTEGER, "integer"),
    (BOOLEAN, "boolean"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Bound {
    value: f64,
    exclusive: bool,
}

/// A schema with its `$ref` target and `allOf` parts merged.
#[derive(Default)]
struct Flat<'a> {
    /// `None`: any type.
    types: Option<u8>,
    nullable: bool,
    enums: Option<Vec<&'a Value>>,
    format: Option<&'a str>,
    pattern: Option<&'a str>,
    max_length: Option<f64>,
    min_length: Option<f64>,
    max_items: Option<f64>,
    min_items: Option<f64>,
    maximum: Option<Bound>,
    minimum: Option<Bound>,
    properties: BTreeMap<&'a str, Vec<Node<'a>>>,
    /// Properties are listed (or `additionalProperties: false`): a name missing is not
    /// there.
    lists: bool,
    required: BTreeSet<&'a str>,
    items: Vec<Node<'a>>,
    /// `additionalProperties` schemas: the values of a map.
    values: Vec<Node<'a>>,
    /// `oneOf`/`anyOf` members, each with the name it is matched by.
    members: Vec<(String, Node<'a>)>,
    keyword: &'static str,
    /// A ref could not be followed or the schema is too deep: nothing is compared.
    unknown: bool,
}

impl<'a> Schemas<'a> {
    pub(super) fn new(old: &'a Contract, new: &'a Contract) -> Self {
        Schemas {
            old,
            new,
            ids: HashMap::new(),
            pairs: Vec::new(),
            next_index: 0,
            open: Vec::new(),
            fresh_used: 0,
            left: MAX_PAIRS,
            total_left: MAX_TOTAL,
            stopped: false,
        }
    }

    /// Starts the budget of one operation.
    pub(super) fn start(&mut self) {
        self.fresh_used = 0;
        self.left = MAX_PAIRS;
        self.stopped = false;
    }

    /// Whether the current operation ran out of budget.
    pub(super) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Whether the whole diff ran out of budget.
    pub(super) fn exhausted(&self) -> bool {
        self.total_left == 0
    }

    /// The changes from schema `old` (in the old contract) to `new`, each with the
    /// field path from `old` and `new` down to it.
    pub(super) fn compare(&mut self, old: Node<'a>, new: Node<'a>, dir: Dir) -> Vec<Rel> {
        let old = normalise(self.old, old);
        let new = normalise(self.new, new);
        let root = self.intern(vec![old], vec![new], dir);
        if !self.explore(root) {
            return Vec::new();
        }
        self.report(root)
    }

    /// Charges `units` to the operation and to the whole diff.
    fn spend(&mut self, units: usize) -> bool {
        if !self.spend_total(units) {
            return false;
        }
        if self.left < units {
            self.left = 0;
            self.stopped = true;
            return false;
        }
        self.left -= units;
        true
    }

    /// Charges the first comparison of a pair to the operation.
    fn spend_fresh(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        if self.fresh_used >= MAX_PAIRS {
            self.stopped = true;
            return false;
        }
        self.fresh_used += 1;
        true
    }

    fn spend_total(&mut self, units: usize) -> bool {
        if self.stopped {
            return false;
        }
        if self.total_left < units {
            self.total_left = 0;
            self.stopped = true;
            return false;
        }
        self.total_left -= units;
        true
    }

    /// The id of a pair, created unvisited on first sight.
    fn intern(&mut self, old: Vec<Node<'a>>, new: Vec<Node<'a>>, dir: Dir) -> usize {
        let key: Key = (
            old.iter().map(Node::addr).collect(),
            new.iter().map(Node::addr).collect(),
            dir,
        );
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.pairs.len();
        self.pairs.push(Pair {
            old,
            new,
            dir,
            local: None,
            state: State::Unvisited,
            dirty: false,
        });
        self.ids.insert(key, id);
        id
    }

    fn children(&self, id: usize) -> &[(String, usize)] {
        self.pairs[id]
            .local
            .as_ref()
            .map_or(&[], |local| local.children.as_slice())
    }

    /// Tarjan's algorithm from `root`, computing each new pair's local comparison and,
    /// per strongly connected component (a recursive schema's pairs), whether it is
    /// dirty. `false` when the budget ran out:
    /// the components left open are reset, so that a later walk starts them afresh.
    fn explore(&mut self, root: usize) -> bool {
        if self.pairs[root].state == State::Done {
            return true;
        }
        if !self.visit(root) {
            return self.abandon();
        }
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(v, next)) = calls.last() {
            if let Some(&(_, w)) = self.children(v).get(next) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                match self.pairs[w].state {
                    State::Unvisited => {
                        if !self.visit(w) {
                            return self.abandon();
                        }
                        calls.push((w, 0));
                    }
                    State::Open { index, .. } => self.lower(v, index),
                    State::Done => {}
                }
                continue;
            }
            calls.pop();
            let State::Open { index, low } = self.pairs[v].state else {
                continue;
            };
            if let Some(&(parent, _)) = calls.last() {
                self.lower(parent, low);
            }
            if low == index {
                self.close(v);
            }
        }
        true
    }

    fn lower(&mut self, id: usize, to: usize) {
        if let State::Open { index, low } = self.pairs[id].state {
            self.pairs[id].state = State::Open {
                index,
                low: low.min(to),
            };
        }
    }

    /// Opens a pair: its local comparison (computed on first visit) and Tarjan index.
    /// Only the first visit is charged to the operation: a component larger than one
    /// operation's budget is explored further by the next operation that reaches it.
    fn visit(&mut self, id: usize) -> bool {
        if !self.spend_total(1) {
            return false;
        }
        if self.pairs[id].local.is_none() {
            if !self.spend_fresh() {
                return false;
            }
            let (old, new, dir) = {
                let pair = &self.pairs[id];
                (pair.old.clone(), pair.new.clone(), pair.dir)
            };
            let local = self.local(&old, &new, dir);
            self.pairs[id].local = Some(local);
        }
        let index = self.next_index;
        self.next_index += 1;
        self.pairs[id].state = State::Open { index, low: index };
        self.open.push(id);
        true
    }

    /// Pops the component whose root is `root` off Tarjan's stack.
    fn close(&mut self, root: usize) {
        let mut members = Vec::new();
        while let Some(id) = self.open.pop() {
            self.pairs[id].state = State::Done;
            members.push(id);
            if id == root {
                break;
            }
        }
        let inside: HashSet<usize> = members.iter().copied().collect();
        let dirty = members.iter().any(|&id| {
            self.pairs[id]
                .local
                .as_ref()
                .is_some_and(|local| !local.changes.is_empty())
                || self
                    .children(id)
                    .iter()
                    .any(|(_, c)| !inside.contains(c) && self.pairs[*c].dirty)
        });
        for id in members {
            self.pairs[id].dirty = dirty;
        }
    }

    fn abandon(&mut self) -> bool {
        for id in std::mem::take(&mut self.open) {
            self.pairs[id].state = State::Unvisited;
        }
        false
    }

    /// The changes reachable from explored pair `root`, with their field paths: a
    /// breadth-first walk of the simple paths through dirty pairs. Every dirty pair is
    /// reported at its shallowest path; further paths, up to [`MAX_PATHS`] per pair,
    /// while the operation's [`MAX_EXTRA`] units for them last.
    fn report(&mut self, root: usize) -> Vec<Rel> {
        let mut out = Vec::new();
        if !self.pairs[root].dirty {
            return out;
        }
        // Each state: its pair, its parent state and the index of the child it is.
        let mut states: Vec<(usize, usize, usize)> = vec![(root, usize::MAX, 0)];
        let mut reached: HashMap<usize, usize> = HashMap::from([(root, 1)]);
        let mut reported: HashSet<usize> = HashSet::new();
        let mut extra = MAX_EXTRA;
        let mut head = 0;
        while let Some(&(pair, _, _)) = states.get(head) {
            head += 1;
            let first = reported.insert(pair);
            let changes = self.pairs[pair]
                .local
                .as_ref()
                .map_or(0, |local| local.changes.len());
            if first {
                if !self.spend(1 + changes) {
                    return out;
                }
            } else if extra < 1 + changes || !self.spend_total(1 + changes) {
                extra = 0;
                continue;
            } else {
                extra -= 1 + changes;
            }
            let at = head - 1;
            if let Some(local) = &self.pairs[pair].local
                && !local.changes.is_empty()
            {
                let path = self.path_of(&states, at);
                out.extend(local.changes.iter().map(|change| {
                    let mut change = change.clone();
                    let mut full = path.clone();
                    full.append(&mut change.path);
                    change.path = full;
                    change
                }));
            }
            for (index, (_, child)) in self.children(pair).iter().enumerate() {
                if !self.pairs[*child].dirty {
                    continue;
                }
                let count = reached.entry(*child).or_default();
                if *count >= MAX_PATHS || (*count > 0 && extra == 0) {
                    continue;
                }
                if on_path(&states, at, *child) {
                    continue;
                }
                *count += 1;
                states.push((*child, at, index));
            }
        }
        out
    }

    /// The field path of a state of [`Schemas::report`].
    fn path_of(&self, states: &[(usize, usize, usize)], mut at: usize) -> Vec<String> {
        let mut path = Vec::new();
        while let Some(&(_, parent, index)) = states.get(at) {
            let Some(&(parent_pair, _, _)) = states.get(parent) else {
                break;
            };
            if let Some((segment, _)) = self.children(parent_pair).get(index) {
                path.push(segment.clone());
            }
            at = parent;
        }
        path.reverse();
        path
    }

    /// The changes of a pair itself, and the pairs below it.
    fn local(&mut self, old_nodes: &[Node<'a>], new_nodes: &[Node<'a>], dir: Dir) -> Local {
        let o = flat(self.old, old_nodes);
        let n = flat(self.new, new_nodes);
        let mut local = Local {
            changes: Vec::new(),
            children: Vec::new(),
        };
        if o.unknown || n.unknown {
            return local;
        }
        let here = (old_nodes[0].loc(), new_nodes[0].loc());
        let mut out = Vec::new();
        let mut emit = |rule: Rule, what: String| {
            out.push(Rel {
                rule,
                path: Vec::new(),
                what,
                renamed_to: None,
                old: Some(here.0.clone()),
                new: Some(here.1.clone()),
            });
        };
        if !compare_types(&o, &n, dir, &mut emit) {
            // Disjoint types: nothing below compares.
            local.changes = out;
            return local;
        }
        match dir {
            Dir::Response => {
                if !o.nullable && n.nullable && o.types.is_some() {
                    emit(rules::RESPONSE_BECAME_NULLABLE, "became nullable".into());
                }
            }
            Dir::Request => {
                if o.nullable && !n.nullable && n.types.is_some() {
                    emit(
                        rules::REQUEST_BECAME_NOT_NULLABLE,
                        "no longer accepts null".into(),
                    );
                }
            }
        }
        compare_values(&o, &n, dir, &mut emit);
        if dir == Dir::Request {
            compare_limits(&o, &n, &mut emit);
        }
        let mut children = Vec::new();
        match dir {
            Dir::Response => self.response_properties(&o, &n, &mut out, &mut children),
            Dir::Request => self.request_properties(&o, &n, &mut out, &mut children),
        }
        for (old, new) in [(&o.items, &n.items), (&o.values, &n.values)] {
            if !old.is_empty() && !new.is_empty() {
                children.push(("[]".to_string(), old.clone(), new.clone()));
            }
        }
        out.extend(compare_members(&o, &n, old_nodes, new_nodes, dir));
        local.changes = out;
        for (segment, old, new) in children {
            let (Some(old), Some(new)) = (declaration(&old), declaration(&new)) else {
                continue;
            };
            let old = vec![normalise(self.old, old)];
            let new = vec![normalise(self.new, new)];
            let id = self.intern(old, new, dir);
            local.children.push((segment, id));
        }
        local
    }

    fn response_properties(
        &self,
        o: &Flat<'a>,
        n: &Flat<'a>,
        out: &mut Vec<Rel>,
        children: &mut Vec<Child<'a>>,
    ) {
        let mut removed = Vec::new();
        for (name, old) in &o.properties {
            if flag(self.old, old, "writeOnly") {
                continue;
            }
            let Some(new) = n.properties.get(name) else {
                if n.lists {
                    removed.push((*name, old));
                }
                continue;
            };
            let (was, is) = (o.required.contains(name), n.required.contains(name));
            let locs = (Some(old[0].loc()), Some(new[0].loc()));
            if was && !is {
                out.push(rel(
                    rules::RESPONSE_BECAME_OPTIONAL,
                    name,
                    "became optional",
                    locs,
                ));
            } else if !was && is {
                out.push(rel(
                    rules::RESPONSE_BECAME_REQUIRED,
                    name,
                    "became required",
                    locs,
                ));
            }
            children.push(((*name).to_string(), old.clone(), new.clone()));
        }
        let added: Vec<(&str, &Vec<Node<'a>>)> = n
            .properties
            .iter()
            .filter(|(name, new)| {
                !o.properties.contains_key(*name) && !flag(self.new, new, "writeOnly")
            })
            .map(|(name, new)| (*name, new))
            .collect();

        // A property removed and one added of the same kind, alone of that kind on
        // both sides, is taken for a rename.
        let old_prints: Vec<String> = removed
            .iter()
            .map(|(_, nodes)| fingerprint(self.old, nodes))
            .collect();
        let new_prints: Vec<String> = added
            .iter()
            .map(|(_, nodes)| fingerprint(self.new, nodes))
            .collect();
        let once =
            |prints: &[String], print: &String| prints.iter().filter(|p| *p == print).count() == 1;
        let mut renamed_new = vec![false; added.len()];
        for (i, (name, old)) in removed.iter().enumerate() {
            let print = &old_prints[i];
            let partner = (once(&old_prints, print))
                .then(|| new_prints.iter().position(|p| p == print))
                .flatten()
                .filter(|at| once(&new_prints, &new_prints[*at]));
            match partner {
                Some(at) => {
                    renamed_new[at] = true;
                    let (new_name, new) = added[at];
                    let mut change = rel(
                        rules::RESPONSE_PROPERTY_RENAMED,
                        name,
                        "was renamed",
                        (Some(old[0].loc()), Some(new[0].loc())),
                    );
                    change.renamed_to = Some(new_name.to_string());
                    out.push(change);
                }
                None => out.push(rel(
                    rules::RESPONSE_PROPERTY_REMOVED,
                    name,
                    "was removed",
                    (Some(old[0].loc()), None),
                )),
            }
        }
        for (i, (name, new)) in added.iter().enumerate() {
            if !renamed_new[i] {
                out.push(rel(
                    rules::RESPONSE_PROPERTY_ADDED,
                    name,
                    "was added",
                    (None, Some(new[0].loc())),
                ));
            }
        }
    }

    fn request_properties(
        &self,
        o: &Flat<'a>,
        n: &Flat<'a>,
        out: &mut Vec<Rel>,
        children: &mut Vec<Child<'a>>,
    ) {
        // What we sent could not be an object (a string where an object is now also
        // allowed): nothing the object requires was asked of us.
        let sent_objects = o.types.is_none_or(|types| types & OBJECT != 0);
        let names: BTreeSet<&str> = n
            .properties
            .keys()
            .chain(n.required.iter())
            .copied()
            .collect();
        for name in names {
            let new = n.properties.get(name);
            if new.is_some_and(|new| flag(self.new, new, "readOnly")) {
                continue;
            }
            let old = o.properties.get(name);
            let new_loc = new.map(|new| new[0].loc());
            let old_loc = old.map(|old| old[0].loc());
            let required = n.required.contains(name);
            let change = match (old, required, o.required.contains(name)) {
                _ if !sent_objects => None,
                (None, true, false) => Some((
                    rules::PROPERTY_ADDED_REQUIRED,
                    "was added as required",
                    (None, new_loc),
                )),
                (Some(_), true, false) => Some((
                    rules::PROPERTY_BECAME_REQUIRED,
                    "became required",
                    (old_loc, new_loc),
                )),
                (None, false, _) if new.is_some() => Some((
                    rules::PROPERTY_ADDED_OPTIONAL,
                    "was added as optional",
                    (None, new_loc),
                )),
                _ => None,
            };
            if let Some((rule, what, locs)) = change {
                out.push(rel(rule, name, what, locs));
            }
            if let (Some(old), Some(new)) = (old, new) {
                children.push((name.to_string(), old.clone(), new.clone()));
            }
        }
        if n.lists {
            for (name, old) in &o.properties {
                if !n.properties.contains_key(name) && !flag(self.old, old, "readOnly") {
                    out.push(rel(
                        rules::PROPERTY_REMOVED_REQUEST,
                        name,
                        "was removed (a value sent for it is no longer documented)",
                        (Some(old[0].loc()), None),
                    ));
                }
            }
        }
    }
}

/// Whether pair `pair` is on the path of state `at` (state `at` included).
fn on_path(states: &[(usize, usize, usize)], mut at: usize, pair: usize) -> bool {
    while let Some(&(here, parent, _)) = states.get(at) {
        if here == pair {
            return true;
        }
        at = parent;
    }
    false
}

/// A child pair before it is interned: field segment, old nodes, new nodes.
type Child<'a> = (String, Vec<Node<'a>>, Vec<Node<'a>>);

/// Which of several declarations of a property (in several `allOf` parts) is compared:
/// the first that says more than annotations, else the first. Comparing their
/// intersection would make a new pair of every combination of parts met, level after
/// level, and the pairs would grow without bound.
fn declaration<'a>(nodes: &[Node<'a>]) -> Option<Node<'a>> {
    let says_something = |node: &&Node<'a>| match node.value {
        Value::Object(obj) => obj.keys().any(|key| {
            !crate::schema::ANNOTATIONS.contains(&key.as_str()) && !key.starts_with("x-")
        }),
        _ => true,
    };
    nodes
        .iter()
        .find(says_something)
        .or_else(|| nodes.first())
        .cloned()
}

/// A change about property `name` of the compared node.
fn rel(rule: Rule, name: &str, what: &str, (old, new): (Option<Loc>, Option<Loc>)) -> Rel {
    Rel {
        rule,
        path: vec![name.to_string()],
        what: what.to_string(),
        renamed_to: None,
        old,
        new,
    }
}

/// Reports type changes; `false` when the types share nothing, so that comparing
/// properties or items of an object that became a string would only add noise.
fn compare_types(
    o: &Flat<'_>,
    n: &Flat<'_>,
    dir: Dir,
    emit: &mut impl FnMut(Rule, String),
) -> bool {
    let changed = |from: Option<u8>, to: Option<u8>| {
        format!(
            "changed type from {} to {}",
            show_types(from),
            show_types(to)
        )
    };
    match (dir, o.types, n.types) {
        (Dir::Request, _, None) | (Dir::Response, None, _) => {}
        (Dir::Request, None, Some(_)) => emit(
            rules::REQUEST_TYPE_NARROWED,
            format!("narrowed type from any to {}", show_types(n.types)),
        ),
        (Dir::Request, Some(old), Some(new)) => {
            if !covers(new, old) {
                if covers(old, new) {
                    emit(
                        rules::REQUEST_TYPE_NARROWED,
                        format!(
                            "narrowed type from {} to {}",
                            show_types(o.types),
                            show_types(n.types)
                        ),
                    );
                } else {
                    emit(rules::REQUEST_TYPE_CHANGED, changed(o.types, n.types));
                }
            }
        }
        (Dir::Response, Some(old), new) => {
            if new.is_none_or(|new| !covers(old, new)) {
                emit(rules::RESPONSE_TYPE_CHANGED, changed(o.types, n.types));
            }
        }
    }
    match (o.types, n.types) {
        (Some(old), Some(new)) if old != 0 && new != 0 => {
            covers(old, new) || covers(new, old) || overlap(old, new)
        }
        _ => true,
    }
}

/// Enum values and formats.
fn compare_values(o: &Flat<'_>, n: &Flat<'_>, dir: Dir, emit: &mut impl FnMut(Rule, String)) {
    match dir {
        Dir::Request => {
            match (&o.enums, &n.enums) {
                (Some(old), Some(new)) => {
                    for value in old.iter().filter(|v| !new.contains(v)) {
                        emit(
                            rules::REQUEST_ENUM_VALUE_REMOVED,
                            format!("no longer accepts enum value {value}"),
                        );
                    }
                }
                (None, Some(new)) => emit(
                    rules::REQUEST_ENUM_ADDED,
                    format!("is now restricted to the enum values {}", show_values(new)),
                ),
                _ => {}
            }
            if let Some(new) = n.format
                && format_changed(o.format, n.format)
            {
                emit(
                    rules::REQUEST_FORMAT_CHANGED,
                    format!(
                        "format changed from {} to {new}",
                        o.format.unwrap_or("none")
                    ),
                );
            }
        }
        Dir::Response => {
            match (&o.enums, &n.enums) {
                (Some(old), Some(new)) => {
                    for value in new.iter().filter(|v| !old.contains(v)) {
                        emit(
                            rules::RESPONSE_ENUM_VALUE_ADDED,
                            format!("may now be enum value {value}"),
                        );
                    }
                }
                (Some(old), None) => emit(
                    rules::RESPONSE_ENUM_REMOVED,
                    format!(
                        "is no longer restricted to the enum values {}",
                        show_values(old)
                    ),
                ),
                _ => {}
            }
            if let Some(old) = o.format
                && format_changed(o.format, n.format)
            {
                emit(
                    rules::RESPONSE_FORMAT_CHANGED,
                    format!(
                        "format changed from {old} to {}",
                        n.format.unwrap_or("none")
                    ),
                );
            }
        }
    }
}

/// Whether a format changed in a way that matters: `int64`, `float` and `double` only
/// say how wide a number is, so adding or dropping one is not a change.
fn format_changed(old: Option<&str>, new: Option<&str>) -> bool {
    let width = |format: Option<&str>| {
        format.is_none_or(|format| ["int64", "float", "double"].contains(&format))
    };
    old != new && !(width(old) && width(new))
}

/// Constraints tightened on a value we send.
fn compare_limits(o: &Flat<'_>, n: &Flat<'_>, emit: &mut impl FnMut(Rule, String)) {
    let lower = |rule: Rule,
                 keyword: &str,
                 old: Option<f64>,
                 new: Option<f64>,
                 emit: &mut dyn FnMut(Rule, String)| {
        match (old, new) {
            (None, Some(new)) => emit(rule, format!("{keyword} {} was added", num(new))),
            (Some(old), Some(new)) if new < old => emit(
                rule,
                format!("{keyword} decreased from {} to {}", num(old), num(new)),
            ),
            _ => {}
        }
    };
    let raise = |rule: Rule,
                 keyword: &str,
                 old: Option<f64>,
                 new: Option<f64>,
                 emit: &mut dyn FnMut(Rule, String)| {
        if let Some(new) = new
            && new > old.unwrap_or(0.0)
        {
            emit(
                rule,
                match old {
                    Some(old) => format!("{keyword} increased from {} to {}", num(old), num(new)),
                    None => format!("{keyword} {} was added", num(new)),
                },
            );
        }
    };
    lower(
        rules::MAX_LENGTH_DECREASED,
        "maxLength",
        o.max_length,
        n.max_length,
        emit,
    );
    raise(
        rules::MIN_LENGTH_INCREASED,
        "minLength",
        o.min_length,
        n.min_length,
        emit,
    );
    lower(
        rules::MAX_ITEMS_DECREASED,
        "maxItems",
        o.max_items,
        n.max_items,
        emit,
    );
    raise(
        rules::MIN_ITEMS_INCREASED,
        "minItems",
        o.min_items,
        n.min_items,
        emit,
    );
    let show = |bound: Bound| {
        if bound.exclusive {
            format!("{} (exclusive)", num(bound.value))
        } else {
            num(bound.value)
        }
    };
    match (o.maximum, n.maximum) {
        (None, Some(new)) => emit(
            rules::MAX_DECREASED,
            format!("maximum {} was added", show(new)),
        ),
        (Some(old), Some(new))
            if new.value < old.value
                || (new.value == old.value && new.exclusive && !old.exclusive) =>
        {
            emit(
                rules::MAX_DECREASED,
                format!("maximum decreased from {} to {}", show(old), show(new)),
            );
        }
        _ => {}
    }
    match (o.minimum, n.minimum) {
        (None, Some(new)) => emit(
            rules::MIN_INCREASED,
            format!("minimum {} was added", show(new)),
        ),
        (Some(old), Some(new))
            if new.value > old.value
                || (new.value == old.value && new.exclusive && !old.exclusive) =>
        {
            emit(
                rules::MIN_INCREASED,
                format!("minimum increased from {} to {}", show(old), show(new)),
            );
        }
        _ => {}
    }
    if let Some(new) = n.pattern
        && o.pattern != n.pattern
    {
        emit(
            rules::REQUEST_PATTERN_CHANGED,
            match o.pattern {
                Some(old) => format!("pattern changed from `{old}` to `{new}`"),
                None => format!("pattern `{new}` was added"),
            },
        );
    }
}

/// `oneOf`/`anyOf` members added or removed, matched by name: the component a member
/// refers to, else its type and position among inline members of that type (titles are
/// annotations, and ignored like descriptions). A side without members counts as the one member it is.
fn compare_members(
    o: &Flat<'_>,
    n: &Flat<'_>,
    old_nodes: &[Node<'_>],
    new_nodes: &[Node<'_>],
    dir: Dir,
) -> Vec<Rel> {
    if o.members.len() < 2 && n.members.len() < 2 {
        return Vec::new();
    }
    let alone = |flat: &Flat<'_>, node: &Node<'_>| -> Vec<(String, Loc)> {
        if flat.members.is_empty() {
            vec![(plain_key(node, flat), node.loc())]
        } else {
            flat.members
                .iter()
                .map(|(key, node)| (key.clone(), node.loc()))
                .collect()
        }
    };
    let old = alone(o, &old_nodes[0]);
    let new = alone(n, &new_nodes[0]);
    let keyword = if n.keyword.is_empty() {
        o.keyword
    } else {
        n.keyword
    };
    let shown = |key: &str| key.split('#').next().unwrap_or_default().to_string();
    let mut out = Vec::new();
    match dir {
        Dir::Response => {
            for (key, loc) in new
                .iter()
                .filter(|(key, _)| !old.iter().any(|(k, _)| k == key))
            {
                out.push(Rel {
                    rule: rules::RESPONSE_VARIANT_ADDED,
                    path: Vec::new(),
                    what: format!("may now be the new {keyword} member `{}`", shown(key)),
                    renamed_to: None,
                    old: None,
                    new: Some(loc.clone()),
                });
            }
            for (key, loc) in old
                .iter()
                .filter(|(key, _)| !new.iter().any(|(k, _)| k == key))
            {
                out.push(Rel {
                    rule: rules::RESPONSE_VARIANT_REMOVED,
                    path: Vec::new(),
                    what: format!("is no longer the {keyword} member `{}`", shown(key)),
                    renamed_to: None,
                    old: Some(loc.clone()),
                    new: None,
                });
            }
        }
        Dir::Request => {
            for (key, loc) in old
                .iter()
                .filter(|(key, _)| !new.iter().any(|(k, _)| k == key))
            {
                out.push(Rel {
                    rule: rules::REQUEST_VARIANT_REMOVED,
                    path: Vec::new(),
                    what: format!("no longer accepts the {keyword} member `{}`", shown(key)),
                    renamed_to: None,
                    old: Some(loc.clone()),
                    new: None,
                });
            }
        }
    }
    out
}

/// The member name of a schema that is not a `oneOf`/`anyOf`.
fn plain_key(node: &Node<'_>, flat: &Flat<'_>) -> String {
    if let Some(name) = node.name() {
        return name;
    }
    format!("{}#0", show_types(flat.types))
}

/// Whether `outer` allows every type of `inner` (an integer is a number).
fn covers(outer: u8, inner: u8) -> bool {
    TYPE_NAMES
        .iter()
        .all(|(bit, _)| inner & bit == 0 || allows(outer, *bit))
}

fn allows(types: u8, bit: u8) -> bool {
    types & bit != 0 || (bit == INTEGER && types & NUMBER != 0)
}

fn overlap(a: u8, b: u8) -> bool {
    TYPE_NAMES
        .iter()
        .any(|(bit, _)| (a & bit != 0 && allows(b, *bit)) || (b & bit != 0 && allows(a, *bit)))
}

/// What a value must be when it must be both `a` and `b`.
fn intersect(a: Option<u8>, b: Option<u8>) -> Option<u8> {
    match (a, b) {
        (None, other) | (other, None) => other,
        (Some(a), Some(b)) => {
            let mut out = 0;
            for (bit, _) in TYPE_NAMES {
                if (a & bit != 0 && allows(b, bit)) || (b & bit != 0 && allows(a, bit)) {
                    out |= bit;
                }
            }
            Some(out)
        }
    }
}

fn show_types(types: Option<u8>) -> String {
    let Some(types) = types else {
        return "any".to_string();
    };
    let names: Vec<&str> = TYPE_NAMES
        .iter()
        .filter(|(bit, _)| types & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(" or ")
    }
}

fn show_values(values: &[&Value]) -> String {
    let shown: Vec<String> = values.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// A number as JSON writes it: `50`, not `50.0`.
fn num(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

fn type_bits(name: &str) -> Option<u8> {
    TYPE_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(bit, _)| *bit)
}

fn value_type(value: &Value) -> u8 {
    match value {
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
        Value::String(_) => STRING,
        Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
        Value::Number(_) => NUMBER,
        Value::Bool(_) => BOOLEAN,
        Value::Null => 0,
    }
}

/// Whether a property's schema says `key: true` (`readOnly`, `writeOnly`), on the
/// property or the component it refers to.
fn flag(contract: &Contract, nodes: &[Node<'_>], key: &str) -> bool {
    nodes.iter().any(|node| {
        node.value.get(key) == Some(&Value::Bool(true))
            || normalise(contract, node.clone()).value.get(key) == Some(&Value::Bool(true))
    })
}

/// What a rename must keep: type, format, nullability and the component referred to.
fn fingerprint(contract: &Contract, nodes: &[Node<'_>]) -> String {
    let Some(node) = declaration(nodes) else {
        return String::new();
    };
    let node = normalise(contract, node);
    let flat = flat(contract, std::slice::from_ref(&node));
    format!(
        "{}|{}|{}|{}",
        show_types(flat.types),
        flat.format.unwrap_or_default(),
        node.name().unwrap_or_default(),
        flat.nullable
    )
}

/// The last token of a JSON pointer, unescaped.
fn last_token(ptr: &str) -> String {
    ptr.rsplit('/')
        .next()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

/// Follows refs that carry nothing but annotations, and steps into a lone `allOf`,
/// `oneOf` or `anyOf` member beside nothing but annotations, so that a property written
/// as a `$ref` (or wrapped to carry a description) and the component it names are the
/// same pair.
pub(super) fn normalise<'a>(contract: &'a Contract, mut node: Node<'a>) -> Node<'a> {
    for _ in 0..MAX_DEPTH {
        let Value::Object(obj) = node.value else {
            break;
        };
        let mut keywords = obj.keys().filter(|key| {
            !crate::schema::ANNOTATIONS.contains(&key.as_str()) && !key.starts_with("x-")
        });
        let (Some(keyword), None) = (keywords.next(), keywords.next()) else {
            break;
        };
        let next = match (keyword.as_str(), &obj[keyword]) {
            ("$ref", Value::String(reference)) => resolve(contract, &node, reference),
            ("allOf" | "oneOf" | "anyOf", Value::Array(members)) if members.len() == 1 => {
                let ptr = super::child(&super::child(&node.ptr, keyword), "0");
                Some(Node::new(node.doc, ptr, &members[0]))
            }
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => break,
        }
    }
    node
}

/// The node `reference`, written in `node`'s document, points at.
fn resolve<'a>(contract: &'a Contract, node: &Node<'a>, reference: &str) -> Option<Node<'a>> {
    let (doc, value) = contract.resolve(node.doc, reference)?;
    let (_, fragment) = pointer::split(reference);
    let ptr = pointer::percent_decode(fragment)?.into_owned();
    Some(Node {
        doc,
        ptr,
        value,
        named: true,
    })
}

/// [`flatten`] with a fresh budget.
fn flat<'a>(contract: &'a Contract, nodes: &[Node<'a>]) -> Flat<'a> {
    let mut work = MAX_FLATTEN;
    flatten(contract, nodes, &mut work, 0)
}

/// Merges `nodes`, their refs and `allOf` parts into one view (see the module docs).
fn flatten<'a>(
    contract: &'a Contract,
    nodes: &[Node<'a>],
    work: &mut usize,
    depth: usize,
) -> Flat<'a> {
    let mut flat = Flat::default();
    if depth > MAX_MEMBER_DEPTH {
        flat.unknown = true;
        return flat;
    }
    let mut stack: Vec<(Node<'a>, usize)> = nodes.iter().rev().map(|n| (n.clone(), 0)).collect();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut groups: Vec<(&'static str, Vec<Node<'a>>)> = Vec::new();
    while let Some((node, level)) = stack.pop() {
        if level > MAX_DEPTH || *work == 0 {
            flat.unknown = true;
            break;
        }
        if !seen.insert(node.addr()) {
            continue;
        }
        *work -= 1;
        let Value::Object(obj) = node.value else {
            continue;
        };
        own_keywords(&mut flat, &node, obj);
        let mut next: Vec<Node<'a>> = Vec::new();
        if let Some(reference) = obj.get("$ref") {
            match reference.as_str().and_then(|r| resolve(contract, &node, r)) {
                Some(target) => next.push(target),
                None => flat.unknown = true,
            }
        }
        if let Some(parts) = obj.get("allOf") {
            match parts.as_array() {
                Some(parts) => {
                    let base = super::child(&node.ptr, "allOf");
                    for (i, part) in parts.iter().enumerate() {
                        next.push(Node::new(
                            node.doc,
                            super::child(&base, &i.to_string()),
                            part,
                        ));
                    }
                }
                None => flat.unknown = true,
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            let Some(members) = obj.get(keyword) else {
                continue;
            };
            let Some(members) = members.as_array() else {
                flat.unknown = true;
                continue;
            };
            let base = super::child(&node.ptr, keyword);
            let mut kept = Vec::new();
            for (i, member) in members.iter().enumerate() {
                let member = normalise(
                    contract,
                    Node::new(node.doc, super::child(&base, &i.to_string()), member),
                );
                if only_null(member.value) {
                    flat.nullable = true;
                } else {
                    kept.push(member);
                }
            }
            match kept.len() {
                0 => {}
                1 => next.extend(kept),
                _ => groups.push((keyword, kept)),
            }
        }
        stack.extend(next.into_iter().rev().map(|n| (n, level + 1)));
    }
    let own: BTreeSet<&str> = flat.properties.keys().copied().collect();
    for (keyword, members) in groups {
        if flat.keyword.is_empty() {
            flat.keyword = keyword;
        }
        let mut union = Some(0);
        let mut common: Option<BTreeSet<&'a str>> = None;
        let mut ordinals: HashMap<String, usize> = HashMap::new();
        for member in members {
            let inner = flatten(contract, std::slice::from_ref(&member), work, depth + 1);
            if inner.unknown {
                flat.unknown = true;
                return flat;
            }
            let key = match member.name() {
                Some(name) => name,
                None => {
                    let base = show_types(inner.types);
                    let count = ordinals.entry(base.clone()).or_default();
                    *count += 1;
                    format!("{base}#{}", *count - 1)
                }
            };
            union = match (union, inner.types) {
                (Some(all), Some(types)) => Some(all | types),
                _ => None,
            };
            flat.nullable |= inner.nullable;
            flat.lists |= inner.lists;
            if inner.types.is_none_or(|t| t & OBJECT != 0) {
                common = Some(match common {
                    None => inner.required.clone(),
                    Some(common) => common.intersection(&inner.required).copied().collect(),
                });
            }
            for (name, nodes) in inner.properties {
                if !own.contains(name) {
                    flat.properties.entry(name).or_insert(nodes);
                }
            }
            if flat.items.is_empty() {
                flat.items = inner.items;
            }
            if flat.values.is_empty() {
                flat.values = inner.values;
            }
            flat.members.push((key, member));
        }
        if union.is_some() {
            flat.types = intersect(flat.types, union);
        }
        flat.required.extend(common.unwrap_or_default());
    }
    if flat.types.is_none() {
        let mut types = 0;
        if !flat.properties.is_empty()
            || flat.lists
            || !flat.required.is_empty()
            || !flat.values.is_empty()
        {
            types |= OBJECT;
        }
        if !flat.items.is_empty() {
            types |= ARRAY;
        }
        for value in flat.enums.iter().flatten() {
            types |= value_type(value);
        }
        if types != 0 {
            flat.types = Some(types);
        }
    }
    flat
}

/// `{type: "null"}` (or `{enum: [null]}`, `{const: null}`, 3.0 `{nullable: true}` alone):
/// the member that makes a `oneOf`/`anyOf` nullable.
fn only_null(value: &Value) -> bool {
    let Value::Object(obj) = value else {
        return false;
    };
    match obj.get("type") {
        Some(Value::String(ty)) => ty == "null",
        Some(Value::Array(types)) => {
            !types.is_empty() && types.iter().all(|t| t.as_str() == Some("null"))
        }
        Some(_) => false,
        None => {
            obj.get("const") == Some(&Value::Null)
                || obj
                    .get("enum")
                    .and_then(Value::as_array)
                    .is_some_and(|values| values.iter().all(Value::is_null) && !values.is_empty())
        }
    }
}

/// A node's own keywords, merged into `flat`.
fn own_keywords<'a>(flat: &mut Flat<'a>, node: &Node<'a>, obj: &'a Map<String, Value>) {
    let names: Vec<&str> = match obj.get("type") {
        Some(Value::String(ty)) => vec![ty.as_str()],
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if names.contains(&"null") {
        flat.nullable = true;
    }
    let known: Vec<u8> = names.iter().filter_map(|name| type_bits(name)).collect();
    if !known.is_empty() || (!names.is_empty() && names.iter().all(|n| *n == "null")) {
        flat.types = intersect(flat.types, Some(known.iter().fold(0, |all, bit| all | bit)));
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        flat.nullable = true;
    }
    let values: Option<Vec<&'a Value>> = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.iter().collect()),
        (_, Some(value)) => Some(vec![value]),
        _ => None,
    };
    if let Some(values) = values {
        if values.iter().any(|v| v.is_null()) {
            flat.nullable = true;
        }
        let values: Vec<&Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        flat.enums = Some(match flat.enums.take() {
            None => values,
            Some(before) => before.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    if flat.format.is_none() {
        flat.format = obj.get("format").and_then(Value::as_str);
    }
    if flat.pattern.is_none() {
        flat.pattern = obj.get("pattern").and_then(Value::as_str);
    }
    let number = |key: &str| obj.get(key).and_then(Value::as_f64);
    let least = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let most = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    flat.max_length = least(flat.max_length, number("maxLength"));
    flat.min_length = most(flat.min_length, number("minLength"));
    flat.max_items = least(flat.max_items, number("maxItems"));
    flat.min_items = most(flat.min_items, number("minItems"));
    // 3.0: `maximum` with a boolean `exclusiveMaximum`; 3.1: a number.
    let bound = |key: &str, exclusive_key: &str| -> Option<Bound> {
        let exclusive = obj.get(exclusive_key);
        match (number(key), exclusive) {
            (_, Some(Value::Number(value))) => value.as_f64().map(|value| Bound {
                value,
                exclusive: true,
            }),
            (Some(value), exclusive) => Some(Bound {
                value,
                exclusive: exclusive == Some(&Value::Bool(true)),
            }),
            (None, _) => None,
        }
    };
    if let Some(new) = bound("maximum", "exclusiveMaximum") {
        flat.maximum = Some(match flat.maximum {
            Some(old) if old.value < new.value || (old.value == new.value && old.exclusive) => old,
            _ => new,
        });
    }
    if let Some(new) = bound("minimum", "exclusiveMinimum") {
        flat.minimum = Some(match flat.minimum {
            Some(old) if old.value > new.value || (old.value == new.value && old.exclusive) => old,
            _ => new,
        });
    }
    if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
        flat.lists |= !properties.is_empty();
        let base = super::child(&node.ptr, "properties");
        for (name, schema) in properties {
            flat.properties
                .entry(name.as_str())
                .or_default()
                .push(Node::new(node.doc, super::child(&base, name), schema));
        }
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(false)) => flat.lists = true,
        Some(schema @ Value::Object(_)) => {
            flat.values.push(node.child("additionalProperties", schema))
        }
        _ => {}
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        flat.required
            .extend(required.iter().filter_map(Value::as_str));
    }
    if let Some(items @ Value::Object(_)) = obj.get("items")
        && !obj.contains_key("prefixItems")
    {
        flat.items.push(node.child("items", items));
    }
}
