//! Holding a flow against its connectors' contracts at compile time: the
//! operation each call names, the parameters and body properties it must
//! supply, and every field a later expression reads from its reply.
//!
//! A call step whose connector has a `spec:` records a [`Reply`]: the
//! operation, its success status and that response's schema. Every
//! expression the flow compiles is recorded too ([`Compiled`]); once all
//! steps are compiled, [`Compiler::check_reads`] takes each path an
//! expression reads (`patchbay_expr::reads`) that starts at such a step's
//! `body` (`$steps.list.body.contacts[].email`, or `.email` in a step that
//! fans out over `$steps.list.body.contacts`) and follows it through the
//! schema:
//!
//! - a field the schema documents as absent is an error, with the closest
//!   documented name as a suggestion;
//! - a field that may be absent (not `required`) or `null`, read without a
//!   default (`// …`), is a warning.
//!
//! The check never guesses. It says nothing for an operation with several
//! documented success responses of their own shapes, where the schema leaves the
//! object open (`additionalProperties`, no `properties`), where the path
//! cannot be followed statically (see `patchbay_expr::reads`: computed keys,
//! `..`, unknown functions), for paginated calls (whose result is the
//! collected items), for steps with a `fallback` (whose result may be the
//! fallback's), and for what a step reads besides `body` (`status`,
//! `headers`, `error` of `on_error: continue`). A read it cannot follow
//! is a read it does not judge: a valid flow never fails `check` here.

use std::path::PathBuf;

use patchbay_config::{Diagnostic, Located};
use patchbay_contract::{Contract, Field, Operation, Schema, Segment as PathPart};
use patchbay_expr::{Read, Root, Segment};

use super::Compiler;
use crate::contracts::ReplyCheck;

/// What a contract says a call step's result holds.
#[derive(Clone)]
pub(crate) struct Reply<'a> {
    pub connector: String,
    /// `GET /contacts/{id}`, for messages.
    pub operation: String,
    pub status: String,
    /// The success response's schema; `None` when it has none.
    pub body: Option<Schema<'a>>,
}

/// Where a flow depends on a contract: a call of an operation, or a field
/// a step reads from its reply. `patchbay spec diff --project` maps the
/// changes between two versions of a spec onto these.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContractUse {
    pub flow: String,
    /// Where the step sits in its flow (`step 2`, `step 2, branch `a` step 1`).
    pub step: String,
    pub file: PathBuf,
    pub line: u64,
    pub connector: String,
    /// `METHOD /path` as the connector's spec writes it.
    pub operation: String,
    /// The response field read, from the body down (`["contacts", "[]",
    /// "email"]`); `None` for the call itself.
    pub field: Option<Vec<String>>,
    /// The documented response the field is read from (`200`); `None` for
    /// the call itself.
    pub response: Option<String>,
    /// What the flow wrote: `$steps.list.body.contacts[].email`, or the
    /// `call:` line.
    pub shown: String,
}

/// An expression compiled in the flow, kept to check its reads.
pub(crate) struct Compiled {
    pub source: Located<String>,
    /// The step field it was written under (`body`, `for_each`, `when`).
    pub key: String,
    pub label: String,
    pub step_id: String,
}

impl<'a> Compiler<'a> {
    /// The contract of connector `name`, when calls are checked against
    /// contracts and it has one.
    pub(crate) fn contract(&self, name: &str) -> Option<&'a Contract> {
        self.contracts?.of(name)
    }

    /// The path of connector `name`'s contract as written, for messages.
    pub(crate) fn contract_file(&self, name: &str) -> PathBuf {
        self.contracts
            .and_then(|contracts| contracts.file_of(name))
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    /// Records that the step being compiled calls `operation`.
    pub(crate) fn note_call(
        &mut self,
        at: &Located<String>,
        connector: &str,
        operation: Operation<'a>,
    ) {
        let use_ = ContractUse {
            flow: self.flow().to_string(),
            step: self.label().to_string(),
            file: self.file().to_path_buf(),
            line: at.line,
            connector: connector.to_string(),
            operation: format!("{} {}", operation.method(), operation.path()),
            field: None,
            response: None,
            shown: format!("call: {}", at.value),
        };
        self.uses.push(use_);
    }

    /// Records what the reply of the step being compiled holds. Only when
    /// one documented success response has a JSON schema: with several
    /// (`200` for an existing record, `201` for a new one), a field of
    /// either may be read, and holding reads to one would be wrong.
    pub(crate) fn expect_reply(&mut self, connector: &str, operation: Operation<'a>) {
        let mut documented: Vec<&str> = (200..300)
            .filter(|status| matches!(operation.response_schema(*status), Some(Some(_))))
            .filter_map(|status| operation.response_key(status))
            .collect();
        documented.sort_unstable();
        documented.dedup();
        if documented.len() > 1 {
            return;
        }
        let (status, body) = match operation.success_response() {
            Some((status, body)) => (status.to_string(), body),
            None => return,
        };
        self.replies.insert(
            self.step_id().to_string(),
            Reply {
                connector: connector.to_string(),
                operation: format!("{} {}", operation.method(), operation.path()),
                status,
                body,
            },
        );
    }

    /// The run-time check of `operation`'s replies, per its connector's
    /// `contract` setting; what cannot be checked is a warning at `at`.
    pub(crate) fn reply_check(
        &mut self,
        at: &Located<String>,
        connector: &str,
        operation: Operation<'a>,
    ) -> Option<ReplyCheck> {
        let contracts = self.contracts?;
        let setting = self
            .project
            .config
            .connectors
            .get(connector)
            .and_then(|config| config.contract.as_ref())
            .map(|setting| &setting.value);
        let mut problems = Vec::new();
        let check = ReplyCheck::compile(contracts, connector, operation, setting, &mut problems);
        for problem in problems {
            self.warn_at(at.line, at.column, problem);
        }
        check
    }

    /// Reports a warning of the step being compiled.
    pub(crate) fn warn_at(&mut self, line: u64, column: u64, message: String) {
        let label = self.label().to_string();
        let flow = self.flow().to_string();
        let file = self.file().to_path_buf();
        self.warnings.push(Diagnostic::new(
            file,
            line,
            column,
            format!("flow `{flow}` {label}: {message}"),
        ));
    }

    /// Holds every read of a recorded reply against its schema.
    pub(super) fn check_reads(&mut self) {
        if self.replies.is_empty() {
            return;
        }
        let compiled = std::mem::take(&mut self.compiled);
        for expression in &compiled {
            // In a step that fans out, `.` is an item of its `for_each`,
            // except in `for_each` itself and in `when`.
            let item = match self.fanned_out.get(&expression.step_id) {
                Some(source) if !matches!(expression.key.as_str(), "for_each" | "when") => {
                    patchbay_expr::output(source).map(|mut place| {
                        place.path.push(Segment::Element);
                        place
                    })
                }
                _ => None,
            };
            let reads = patchbay_expr::reads(&expression.source);
            // A read another one extends (`$steps.x.body.contacts[]` before
            // `| .email`) is checked as part of it, and is not a use of the
            // whole value.
            let extended = |read: &Read| {
                reads.iter().any(|other| {
                    other.root == read.root
                        && other.path.len() > read.path.len()
                        && other.path[..read.path.len()] == read.path[..]
                })
            };
            for read in reads.iter().filter(|read| !extended(read)) {
                let path = match (&read.root, &item) {
                    (Root::Var(var), _) if var == "steps" => read.path.clone(),
                    (Root::Input, Some(item)) if item.root == Root::Var("steps".into()) => {
                        let mut path = item.path.clone();
                        path.extend(read.path.iter().cloned());
                        path
                    }
                    _ => continue,
                };
                self.check_read(expression, read, &path);
            }
        }
        self.compiled = compiled;
    }

    /// Follows `path` (from `$steps`) through the reply it starts at.
    fn check_read(&mut self, expression: &Compiled, read: &Read, path: &[Segment]) {
        let Some(Segment::Field { name: step, .. }) = path.first() else {
            return;
        };
        if self.with_fallback.contains(step) {
            return;
        }
        let Some(reply) = self.replies.get(step).cloned() else {
            return;
        };
        let mut rest = &path[1..];
        if self.fanned_out.contains_key(step) {
            match rest.first() {
                Some(Segment::Element) => rest = &rest[1..],
                _ => return,
            }
        }
        match rest.first() {
            Some(Segment::Field { name, .. }) if name == "body" => rest = &rest[1..],
            _ => return,
        }
        let field: Vec<String> = rest
            .iter()
            .map(|segment| match segment {
                Segment::Field { name, .. } => name.clone(),
                Segment::Element => "[]".to_string(),
            })
            .collect();
        let mut written = format!("$steps.{step}.body");
        for part in &field {
            if part != "[]" {
                written.push('.');
            }
            written.push_str(part);
        }
        let first_field = rest.iter().find_map(|segment| match segment {
            Segment::Field { offset, .. } => Some(*offset),
            Segment::Element => None,
        });
        let line = first_field.map_or(expression.source.line, |offset| {
            position(&expression.source, offset).0
        });
        self.uses.push(ContractUse {
            flow: self.flow().to_string(),
            step: expression.label.clone(),
            file: self.file().to_path_buf(),
            line,
            connector: reply.connector.clone(),
            operation: reply.operation.clone(),
            field: Some(field),
            response: Some(reply.status.clone()),
            shown: written,
        });
        let Some(mut schema) = reply.body else {
            return;
        };
        let mut shown = format!("$steps.{step}.body");
        let mut maybe_missing: Option<(String, &'static str)> = None;
        for segment in rest {
            match segment {
                Segment::Element => {
                    shown.push_str("[]");
                    match schema.items() {
                        Some(items) => schema = items,
                        None => return,
                    }
                }
                Segment::Field { name, offset } => {
                    shown.push('.');
                    shown.push_str(name);
                    match schema.field(name) {
                        Field::Found {
                            schema: found,
                            optional,
                            nullable,
                        } => {
                            if maybe_missing.is_none() && (optional || nullable) {
                                let why = if optional { "optional" } else { "nullable" };
                                maybe_missing = Some((name.clone(), why));
                            }
                            schema = found;
                        }
                        Field::Unknown { known } => {
                            let hint =
                                patchbay_config::suggest_closest(name, known.iter().copied())
                                    .map(|closest| format!(" — did you mean `{closest}`?"))
                                    .unwrap_or_default();
                            let (line, column) = position(&expression.source, *offset);
                            let message = format!(
                                "`{shown}`: the {status} reply of `{operation}` (connector `{connector}`, {file}) has no field `{name}`{hint}",
                                status = reply.status,
                                operation = reply.operation,
                                connector = reply.connector,
                                file = self.contract_file(&reply.connector).display(),
                            );
                            self.at_label(&expression.label, |compiler| {
                                compiler.error_at(line, column, message)
                            });
                            return;
                        }
                        Field::Open => return,
                    }
                }
            }
        }
        if let Some((name, why)) = maybe_missing
            && !read.defaulted
        {
            let (line, column) = (expression.source.line, expression.source.column);
            let message = format!(
                "`{shown}` may be missing: `{name}` is {why} in the {status} reply of `{operation}` (connector `{connector}`); give it a default (`… // null`) if that is expected",
                status = reply.status,
                operation = reply.operation,
                connector = reply.connector,
            );
            self.at_label(&expression.label, |compiler| {
                compiler.warn_at(line, column, message)
            });
        }
    }
}

/// The segments of a call's path template, for matching it to the
/// contract's paths: a segment with a `{jq}` hole is computed at run time.
/// A query string written in the path is not part of it.
pub(crate) fn path_parts(template: &str) -> Vec<PathPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut hole = false;
    for c in template.chars() {
        match c {
            '{' => {
                depth += 1;
                hole = true;
            }
            '}' => depth = depth.saturating_sub(1),
            '?' if depth == 0 => break,
            '/' if depth == 0 => {
                push_part(&mut parts, &mut current, &mut hole);
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    push_part(&mut parts, &mut current, &mut hole);
    parts
}

fn push_part(parts: &mut Vec<PathPart>, current: &mut String, hole: &mut bool) {
    if !current.is_empty() {
        parts.push(if *hole {
            PathPart::Hole
        } else {
            PathPart::Literal(std::mem::take(current))
        });
    }
    current.clear();
    *hole = false;
}

/// The names of the query parameters written in a call's path
/// (`/contacts?limit=10` gives `limit`).
pub(crate) fn literal_query(template: &str) -> Vec<String> {
    let Some((_, query)) = template.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty() && !name.contains('{'))
        .map(str::to_string)
        .collect()
}

/// The line and column of byte `offset` of an expression's source: its
/// own line when the expression is on one line, else the line it is on.
pub(super) fn position(source: &Located<String>, offset: usize) -> (u64, u64) {
    let before = &source.value[..offset.min(source.value.len())];
    let newlines = before.matches('\n').count() as u64;
    if newlines == 0 {
        (source.line, source.column)
    } else {
        (source.line + newlines, 0)
    }
}

impl Compiler<'_> {
    /// Runs `report` with the label of the step an expression belongs to.
    pub(super) fn at_label(&mut self, label: &str, report: impl FnOnce(&mut Self)) {
        let current = std::mem::replace(&mut self.label, label.to_string());
        report(self);
        self.label = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_split_outside_holes() {
        let parts = path_parts("/contacts/{.id | tostring}/notes?limit=5");
        assert!(
            matches!(&parts[..], [PathPart::Literal(a), PathPart::Hole, PathPart::Literal(b)] if a == "contacts" && b == "notes")
        );
        let parts = path_parts("/files/{.a / .b}.json/");
        assert!(matches!(&parts[..], [PathPart::Literal(a), PathPart::Hole] if a == "files"));
        assert_eq!(
            literal_query("/x?limit=5&page={.p}&{.k}=1"),
            ["limit", "page"]
        );
        assert!(literal_query("/x").is_empty());
    }
}
