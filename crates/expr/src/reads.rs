//! What an expression reads: the paths into its input and its variables
//! that a jq program follows, found without running it.
//!
//! `check` uses them to hold a flow against its APIs' contracts: a flow that
//! reads `$steps.list.body.contcts[].email` reads a field the response does
//! not have. The analysis walks jaq's syntax tree carrying, for each term, the
//! path its input is known to come from (`.` of the whole program is the
//! input's root; `$steps` is the root of the variable), and records every
//! path a term follows from a known place:
//!
//! - paths (`.a.b`, `.items[]`, `.[0]`, `."a b"`, `.["a"]`) extend the path of
//!   their base; pipes carry the left side's path into the right side's `.`;
//! - `map(f)`, `select(f)`, `sort_by(f)` and their kin pass on what their
//!   input's elements (or the input itself) are; `E as $x | ...` binds `$x`
//!   to `E`'s path;
//! - object shorthand `{id, name}` reads `.id` and `.name`;
//! - the left side of `//` is read with a default, which [`Read::defaulted`]
//!   records.
//!
//! Everything else gives up quietly: after `..`, a computed key (`.[$k]`), a
//! function the analysis does not know, or a `reduce`, the path is unknown
//! and nothing below it is recorded. Giving up can only hide a problem, never
//! invent one: every recorded read is a path the program really follows
//! whenever it runs that far.

use std::collections::HashMap;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Pattern, Term};
use jaq_core::path::{Part, Path};

/// Where a read starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// The program's input (`.`).
    Input,
    /// A variable of [`crate::VARIABLES`], named without its `$`.
    Var(String),
}

/// One step of a read path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// `.name`, with the byte offset of the name in the source.
    Field { name: String, offset: usize },
    /// `.[]`, `.[n]` or `.[n:m]` followed by an element access: one element
    /// of an array (or a value of an object).
    Element,
}

/// A path the program follows from a known root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub root: Root,
    pub path: Vec<Segment>,
    /// Whether the read is the left side of `//`, so a missing or null value
    /// is replaced by a default.
    pub defaulted: bool,
}

/// Every read of `source` that can be known statically, in source order
/// (nothing for a program that does not parse).
pub fn reads(source: &str) -> Vec<Read> {
    analyse(source).map(|(reads, _)| reads).unwrap_or_default()
}

/// Where the output of `source` comes from, when it is a path from a known
/// root (`$steps.list.body.items`, `.items | sort_by(.rank)`); `None`
/// otherwise.
pub fn output(source: &str) -> Option<Read> {
    let (_, place) = analyse(source)?;
    let place = place?;
    Some(Read {
        root: place.root,
        path: place.path,
        defaulted: false,
    })
}

/// The reads of `source` and the place of its output; `None` when it does
/// not parse.
fn analyse(source: &str) -> Option<(Vec<Read>, Known)> {
    let term = jaq_core::load::parse(source, |p| p.term())?;
    let mut walker = Walker {
        source,
        reads: Vec::new(),
        bound: HashMap::new(),
    };
    let input = Some(Place {
        root: Root::Input,
        path: Vec::new(),
    });
    let place = walker.walk(&term, &input, false);
    Some((walker.reads, place))
}

/// The keys of an object `source` builds, when the whole program is one
/// object constructor with literal keys (`{name, email: .mail}`); `None`
/// when they cannot be known without running it.
pub fn object_keys(source: &str) -> Option<Vec<String>> {
    let term = jaq_core::load::parse(source, |p| p.term())?;
    let Term::Obj(entries) = term else {
        return None;
    };
    entries
        .iter()
        .map(|(key, _)| match key {
            Term::Var(name) => Some(name.trim_start_matches('$').to_owned()),
            key => literal(key).map(str::to_owned),
        })
        .collect()
}

/// Where a value comes from, when known.
#[derive(Clone, Debug)]
struct Place {
    root: Root,
    path: Vec<Segment>,
}

type Known = Option<Place>;

/// Builtins whose argument runs on each element of their input.
const PER_ELEMENT: [&str; 8] = [
    "map",
    "sort_by",
    "group_by",
    "unique_by",
    "min_by",
    "max_by",
    "any",
    "all",
];

struct Walker<'s> {
    source: &'s str,
    reads: Vec<Read>,
    /// Variables the program binds itself (`as $x`, `reduce`, a
    /// definition's parameters), with their place when known. A bound name
    /// hides the run's variable of the same name.
    bound: HashMap<&'s str, Known>,
}

impl<'s> Walker<'s> {
    /// Walks `term` run on `input`; the place of its output, when known.
    fn walk(&mut self, term: &Term<&'s str>, input: &Known, defaulted: bool) -> Known {
        match term {
            Term::Id => input.clone(),
            Term::Recurse | Term::Num(_) | Term::Break(_) => None,
            Term::Str(_, parts) => {
                for part in parts {
                    if let StrPart::Term(inner) = part {
                        self.walk(inner, input, false);
                    }
                }
                None
            }
            Term::Arr(inner) => {
                if let Some(inner) = inner {
                    self.walk(inner, input, false);
                }
                None
            }
            Term::Obj(entries) => {
                for (key, value) in entries {
                    match (key, value) {
                        // `{name}` is `{name: .name}`; `{$x}` reads `$x`.
                        (key, None) => {
                            if let Some(name) = literal(key) {
                                let field = self.field(name);
                                self.record(input, &[field], defaulted);
                            } else {
                                self.walk(key, input, false);
                            }
                        }
                        (key, Some(value)) => {
                            if literal(key).is_none() {
                                self.walk(key, input, false);
                            }
                            self.walk(value, input, defaulted);
                        }
                    }
                }
                None
            }
            Term::Neg(inner) => {
                self.walk(inner, input, false);
                None
            }
            Term::BinOp(left, op, right) => self.binary(left, op, right, input, defaulted),
            Term::Label(_, inner) => {
                self.walk(inner, input, defaulted);
                None
            }
            Term::Fold(_, over, pattern, args) => {
                self.walk(over, input, false);
                // The accumulator's place, and the bound item's, are unknown.
                let mut names = Vec::new();
                bind(pattern, &mut |name| names.push(name));
                self.scoped(&names, None, |walker| {
                    for arg in args {
                        walker.walk(arg, &None, false);
                    }
                });
                None
            }
            Term::TryCatch(body, catch) => {
                let out = self.walk(body, input, defaulted);
                if let Some(catch) = catch {
                    self.walk(catch, &None, false);
                }
                out
            }
            Term::IfThenElse(branches, otherwise) => {
                for (condition, then) in branches {
                    self.walk(condition, input, false);
                    self.walk(then, input, defaulted);
                }
                if let Some(otherwise) = otherwise {
                    self.walk(otherwise, input, defaulted);
                }
                None
            }
            Term::Def(defs, rest) => {
                // A definition's body runs wherever it is called: its input
                // is unknown. It may also redefine a builtin, so calls after
                // it are not trusted to mean what the builtin means.
                for def in defs {
                    self.scoped(&def.args, None, |walker| {
                        walker.walk(&def.body, &None, false);
                    });
                }
                let shadowed: Vec<&str> = defs.iter().map(|def| def.name).collect();
                if shadowed.iter().any(|name| is_known_builtin(name)) {
                    self.walk(rest, &None, false);
                    None
                } else {
                    self.walk(rest, input, defaulted)
                }
            }
            Term::Call(name, args) => self.call(name, args, input),
            Term::Var(name) => {
                if let Some(place) = self.bound.get(name) {
                    return place.clone();
                }
                let bare = name.strip_prefix('$').unwrap_or(name);
                crate::VARIABLES.contains(&bare).then(|| Place {
                    root: Root::Var(bare.to_owned()),
                    path: Vec::new(),
                })
            }
            Term::Path(base, path) => {
                let base = self.walk(base, input, false);
                self.path(base, path, input, defaulted)
            }
        }
    }

    fn binary(
        &mut self,
        left: &Term<&'s str>,
        op: &BinaryOp<&'s str>,
        right: &Term<&'s str>,
        input: &Known,
        defaulted: bool,
    ) -> Known {
        match op {
            BinaryOp::Pipe(None) => {
                let through = self.walk(left, input, false);
                self.walk(right, &through, defaulted)
            }
            BinaryOp::Pipe(Some(pattern)) => {
                let value = self.walk(left, input, false);
                let mut names = Vec::new();
                bind(pattern, &mut |name| names.push(name));
                // Only `E as $x` binds a known place; a destructured part's
                // place is not followed.
                let value = if matches!(pattern, Pattern::Var(_)) {
                    value
                } else {
                    None
                };
                self.scoped(&names, value, |walker| walker.walk(right, input, defaulted))
            }
            BinaryOp::Alt => {
                self.walk(left, input, true);
                self.walk(right, input, defaulted);
                None
            }
            _ => {
                self.walk(left, input, false);
                self.walk(right, input, false);
                None
            }
        }
    }

    fn call(&mut self, name: &str, args: &[Term<&'s str>], input: &Known) -> Known {
        let elements = input.as_ref().map(|place| place.element());
        match (name, args) {
            (_, [arg]) if PER_ELEMENT.contains(&name) => {
                self.walk(arg, &elements, false);
                match name {
                    "sort_by" => input.clone(),
                    "min_by" | "max_by" => elements,
                    _ => None,
                }
            }
            ("select", [condition]) => {
                self.walk(condition, input, false);
                input.clone()
            }
            ("first" | "last", []) => elements,
            ("sort" | "unique" | "reverse", []) => input.clone(),
            _ => {
                // What an unknown function does with its input is unknown;
                // its arguments may still read variables.
                for arg in args {
                    self.walk(arg, &None, false);
                }
                None
            }
        }
    }

    fn path(
        &mut self,
        base: Known,
        path: &Path<Term<&'s str>>,
        input: &Known,
        defaulted: bool,
    ) -> Known {
        let mut place = base;
        let mut followed = Vec::new();
        for (part, _optional) in &path.0 {
            match part {
                Part::Index(index) => {
                    if let Some(name) = literal(index) {
                        followed.push(self.field(name));
                    } else if matches!(index, Term::Num(_) | Term::Neg(_)) {
                        followed.push(Segment::Element);
                    } else {
                        // A computed key: evaluated on the path's input.
                        self.walk(index, input, false);
                        self.record(&place, &followed, defaulted);
                        return None;
                    }
                }
                Part::Range(None, None) => followed.push(Segment::Element),
                // A slice: what follows applies to an array, which the
                // analysis does not follow.
                Part::Range(from, to) => {
                    for bound in [from, to].into_iter().flatten() {
                        self.walk(bound, input, false);
                    }
                    self.record(&place, &followed, defaulted);
                    return None;
                }
            }
        }
        self.record(&place, &followed, defaulted);
        if let Some(place) = &mut place {
            place.path.extend(followed);
        }
        place
    }

    /// Runs `walk` with `names` bound to `value`, then restores what they
    /// were bound to before.
    fn scoped<T>(
        &mut self,
        names: &[&'s str],
        value: Known,
        walk: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let saved: Vec<(&'s str, Option<Known>)> = names
            .iter()
            .map(|name| (*name, self.bound.insert(name, value.clone())))
            .collect();
        let out = walk(self);
        for (name, before) in saved.into_iter().rev() {
            match before {
                Some(before) => self.bound.insert(name, before),
                None => self.bound.remove(name),
            };
        }
        out
    }

    /// Records a read of `followed` from `place`, if known and if it reads a
    /// field.
    fn record(&mut self, place: &Known, followed: &[Segment], defaulted: bool) {
        let Some(place) = place else {
            return;
        };
        if !followed.iter().any(|s| matches!(s, Segment::Field { .. })) {
            return;
        }
        let mut path = place.path.clone();
        path.extend_from_slice(followed);
        self.reads.push(Read {
            root: place.root.clone(),
            path,
            defaulted,
        });
    }

    fn field(&self, name: &'s str) -> Segment {
        let offset = jaq_core::load::span(self.source, name).start;
        Segment::Field {
            name: name.to_owned(),
            offset,
        }
    }
}

impl Place {
    fn element(&self) -> Place {
        let mut path = self.path.clone();
        path.push(Segment::Element);
        Place {
            root: self.root.clone(),
            path,
        }
    }
}

/// The text of a string literal without escapes or interpolation.
fn literal<'s>(term: &Term<&'s str>) -> Option<&'s str> {
    match term {
        Term::Str(None, parts) => match parts.as_slice() {
            [StrPart::Str(text)] => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// Calls `each` with every variable a pattern binds.
fn bind<'s>(pattern: &Pattern<&'s str>, each: &mut impl FnMut(&'s str)) {
    match pattern {
        Pattern::Var(name) => each(name),
        Pattern::Arr(items) => items.iter().for_each(|item| bind(item, each)),
        Pattern::Obj(entries) => entries.iter().for_each(|(_, item)| bind(item, each)),
    }
}

fn is_known_builtin(name: &str) -> bool {
    PER_ELEMENT.contains(&name)
        || matches!(
            name,
            "select" | "first" | "last" | "sort" | "unique" | "reverse"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each read as `ROOT.a.b[]` (with `?` when defaulted), for terse asserts.
    fn shown(source: &str) -> Vec<String> {
        reads(source)
            .into_iter()
            .map(|read| {
                let mut text = match read.root {
                    Root::Input => String::new(),
                    Root::Var(name) => format!("${name}"),
                };
                for segment in read.path {
                    match segment {
                        Segment::Field { name, .. } => {
                            text.push('.');
                            text.push_str(&name);
                        }
                        Segment::Element => text.push_str("[]"),
                    }
                }
                if read.defaulted {
                    text.push('?');
                }
                text
            })
            .collect()
    }

    #[test]
    fn paths_from_variables_and_the_input() {
        assert_eq!(shown("$steps.list.body.items"), ["$steps.list.body.items"]);
        assert_eq!(shown(".a.b"), [".a.b"]);
        assert_eq!(shown(r#".a["b"]."c d""#), [".a.b.c d"]);
        assert_eq!(shown(".items[].id"), [".items[].id"]);
        assert_eq!(shown(".items[0].id"), [".items[].id"]);
        assert_eq!(shown(".items[1:].id"), [".items"]);
        assert_eq!(shown("."), Vec::<String>::new());
        assert_eq!(shown("$event"), Vec::<String>::new());
    }

    #[test]
    fn pipes_carry_the_place_into_the_right_side() {
        assert_eq!(
            shown("$steps.x.body | .contacts[] | {email, id: .id}"),
            [
                "$steps.x.body",
                "$steps.x.body.contacts[]",
                "$steps.x.body.contacts[].email",
                "$steps.x.body.contacts[].id"
            ]
        );
        assert_eq!(
            shown("$steps.x.body.items | map(.id) | length"),
            ["$steps.x.body.items", "$steps.x.body.items[].id"]
        );
        assert_eq!(
            shown("[.items[] | select(.active) | .name]"),
            [".items[]", ".items[].active", ".items[].name"]
        );
        assert_eq!(
            shown("$steps.x.body.items | sort_by(.rank) | first | .name"),
            [
                "$steps.x.body.items",
                "$steps.x.body.items[].rank",
                "$steps.x.body.items[].name"
            ]
        );
    }

    #[test]
    fn bindings_and_defaults() {
        assert_eq!(
            shown("$steps.x.body.items[] as $c | $c.email"),
            ["$steps.x.body.items[]", "$steps.x.body.items[].email"]
        );
        assert_eq!(shown(".a.b // \"none\""), [".a.b?"]);
        assert_eq!(
            shown("($steps.x.body.a // 1) + .b"),
            ["$steps.x.body.a?", ".b"]
        );
        assert_eq!(
            shown("\"\\($steps.x.body.name) at \\(.at)\""),
            ["$steps.x.body.name", ".at"]
        );
    }

    #[test]
    fn gives_up_where_the_place_is_unknown() {
        // A computed key, recursion, an unknown function, a fold, a
        // definition shadowing a builtin: nothing below is recorded.
        assert_eq!(shown(".a[$k].b"), [".a"]);
        assert_eq!(shown(".. | .name"), Vec::<String>::new());
        assert_eq!(shown("to_entries | .[].key"), Vec::<String>::new());
        assert_eq!(shown("reduce .items[] as $i (0; . + $i.n)"), [".items[]"]);
        assert_eq!(
            shown("def map(f): f; .items | map(.x)"),
            Vec::<String>::new()
        );
        // A variable the program binds itself is not the run's `$steps`.
        assert_eq!(shown(". as $steps | $steps.a"), [".a"]);
        assert_eq!(shown(". as [$steps] | $steps.a"), Vec::<String>::new());
        assert_eq!(
            shown("reduce .[] as $steps (0; $steps.a)"),
            Vec::<String>::new()
        );
        assert_eq!(shown("def f($steps): $steps.a; f(1)"), Vec::<String>::new());
        assert_eq!(shown("not valid jq ]"), Vec::<String>::new());
    }

    #[test]
    fn the_place_of_the_output() {
        let place = output("$steps.x.body.items | sort_by(.n)").unwrap();
        assert_eq!(place.root, Root::Var("steps".into()));
        assert_eq!(place.path.len(), 3);
        assert_eq!(output("$steps.x.body.items | length"), None);
        assert_eq!(output(".").map(|read| read.path), Some(Vec::new()));
    }

    #[test]
    fn keys_of_an_object_literal() {
        assert_eq!(
            object_keys(r#"{name, "e-mail": .mail, $id}"#),
            Some(vec!["name".into(), "e-mail".into(), "id".into()])
        );
        assert_eq!(object_keys("{(.k): 1}"), None);
        assert_eq!(object_keys("{a: 1} + .extra"), None);
        assert_eq!(object_keys("."), None);
    }

    #[test]
    fn offsets_point_at_each_name() {
        let source = "$steps.x.body.contcts";
        let read = reads(source).remove(0);
        let Some(Segment::Field { name, offset }) = read.path.last() else {
            panic!("no field");
        };
        assert_eq!(name, "contcts");
        assert_eq!(&source[*offset..*offset + name.len()], "contcts");
    }
}
