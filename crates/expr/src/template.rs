//! [`Template`]: a string with `{jq}` holes, such as the request path
//! `/customers/{.id}/orders/{$steps.order.body.id}`.
//!
//! A hole runs from a `{` to its matching `}`. Braces inside a hole nest (`{ {a: 1}.a }`),
//! and braces inside jq strings in a hole are text (`{"}" + .id}`), including strings inside
//! string interpolations. Finding the matching brace therefore needs a small scanner that
//! knows jq's string syntax; the scanner is iterative, so hostile input cannot exhaust the
//! stack. Outside holes, `{` and `}` are not allowed as text: a lone brace is almost always a
//! typo, and can be written percent-encoded (`%7B`, `%7D`).
//!
//! Rendering a path encodes each inserted value as a single URL path segment, so a value
//! such as `a/b?c` cannot reach another endpoint or add a query. A hole that makes up a whole
//! segment must not render as empty, `.` or `..`: URL parsers treat those (even encoded) as
//! "this" and "parent" directory, so `DELETE /customers/{.id}` with an id of `..` would
//! otherwise delete something else entirely.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::value::{to_value, type_name};
use crate::{CompileError, EvalError, Expr, Vars};

/// A string with `{jq}` holes, parsed and compiled once and rendered many times.
///
/// Cloning is cheap (the parsed parts are shared).
#[derive(Clone)]
pub struct Template {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    parts: Vec<Part>,
}

enum Part {
    Literal(String),
    Hole(Expr),
}

/// What the scanner is inside of, innermost last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `{`, the hole's own brace or one in jq code; holds its offset.
    Brace(usize),
    /// `(` in jq code.
    Paren(usize),
    /// a jq string literal, from its opening `"`.
    Str(usize),
    /// `\(`, an interpolation inside a jq string.
    Interp(usize),
}

impl Template {
    /// Parses a template and compiles each of its holes.
    ///
    /// Fails on an unbalanced brace, an empty hole or a hole that is not valid jq; the
    /// error's offset is relative to the whole template.
    pub fn parse(source: &str) -> Result<Template, CompileError> {
        let mut parts = Vec::new();
        let mut literal_start = 0;
        let mut pos = 0;
        let bytes = source.as_bytes();
        while pos < bytes.len() {
            match bytes[pos] {
                b'{' => {
                    if literal_start < pos {
                        parts.push(Part::Literal(source[literal_start..pos].to_owned()));
                    }
                    let end = hole_end(source, pos)?;
                    parts.push(Part::Hole(compile_hole(source, pos, end)?));
                    pos = end + 1;
                    literal_start = pos;
                }
                b'}' => {
                    return Err(CompileError::new(
                        "unmatched `}`: braces outside a `{…}` expression must be \
                         percent-encoded as `%7D`",
                        Some(pos),
                    ));
                }
                _ => pos += 1,
            }
        }
        if literal_start < source.len() {
            parts.push(Part::Literal(source[literal_start..].to_owned()));
        }
        Ok(Template {
            inner: Arc::new(Inner {
                source: source.to_owned(),
                parts,
            }),
        })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Whether the template has no holes, so every rendering yields [`Template::source`].
    pub fn is_literal(&self) -> bool {
        self.holes().next().is_none()
    }

    /// The compiled holes, in order.
    pub fn holes(&self) -> impl Iterator<Item = &Expr> {
        self.inner.parts.iter().filter_map(|part| match part {
            Part::Hole(expr) => Some(expr),
            Part::Literal(_) => None,
        })
    }

    /// Renders the template as a URL path.
    ///
    /// Each hole contributes its first output: strings as they are, numbers and booleans
    /// as their JSON text, percent-encoded as one path segment. Literal parts are kept
    /// verbatim. `null`, arrays and objects fail with [`EvalError::NotScalar`]; a hole that
    /// fills a whole segment with nothing, `.` or `..` fails with
    /// [`EvalError::UnsafeSegment`].
    pub fn render_path(&self, input: &Value, vars: &Vars) -> Result<String, EvalError> {
        let mut out = String::with_capacity(self.inner.source.len());
        let mut segment = Segment::default();
        for part in &self.inner.parts {
            match part {
                Part::Literal(text) => {
                    let mut pieces = text.split('/');
                    if let Some(first) = pieces.next() {
                        out.push_str(first);
                    }
                    for piece in pieces {
                        segment.finish(&out)?;
                        out.push('/');
                        segment = Segment::starting_at(out.len());
                        out.push_str(piece);
                    }
                }
                Part::Hole(expr) => {
                    let value = scalar_text(expr, input, vars)?;
                    encode_segment(&value, &mut out);
                    segment
                        .hole
                        .get_or_insert((expr.source().to_owned(), value));
                }
            }
        }
        segment.finish(&out)?;
        Ok(out)
    }
}

/// The path segment being rendered, and the first hole that contributed to it.
#[derive(Default)]
struct Segment {
    start: usize,
    hole: Option<(String, String)>,
}

impl Segment {
    fn starting_at(start: usize) -> Self {
        Segment { start, hole: None }
    }

    fn finish(&self, out: &str) -> Result<(), EvalError> {
        let Some((hole, value)) = &self.hole else {
            return Ok(());
        };
        match &out[self.start..] {
            "" | "." | ".." => Err(EvalError::UnsafeSegment {
                hole: hole.clone(),
                value: value.clone(),
            }),
            _ => Ok(()),
        }
    }
}

fn scalar_text(expr: &Expr, input: &Value, vars: &Vars) -> Result<String, EvalError> {
    match expr.first_with(input, vars, to_value)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other @ (Value::Null | Value::Array(_) | Value::Object(_)) => Err(EvalError::NotScalar {
            hole: expr.source().to_owned(),
            found: type_name(&other),
        }),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, the one set that means
/// the same in every part of a URL.
fn encode_segment(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

fn compile_hole(source: &str, open: usize, close: usize) -> Result<Expr, CompileError> {
    let code = &source[open + 1..close];
    if code.trim().is_empty() {
        return Err(CompileError::new(
            "empty `{}`: put a jq expression between the braces, such as `{.id}`",
            Some(open),
        ));
    }
    Expr::compile(code).map_err(|e| e.shifted(open + 1))
}

/// Finds the `}` that closes the hole opened at `open`.
///
/// All delimiters are ASCII, so scanning bytes never splits a UTF-8 character.
fn hole_end(source: &str, open: usize) -> Result<usize, CompileError> {
    let bytes = source.as_bytes();
    let mut stack = vec![Frame::Brace(open)];
    // Offset of the byte being looked at; the closing brace once the stack is empty.
    let mut pos = open;
    while let Some(&top) = stack.last() {
        pos += 1;
        let Some(&byte) = bytes.get(pos) else {
            return Err(unclosed(top));
        };
        if let Frame::Str(_) = top {
            match byte {
                b'\\' if bytes.get(pos + 1) == Some(&b'(') => {
                    stack.push(Frame::Interp(pos));
                    pos += 1;
                }
                // Skips the escaped character, which may be a quote.
                b'\\' => pos += 1,
                b'"' => {
                    stack.pop();
                }
                _ => {}
            }
        } else {
            match byte {
                b'"' => stack.push(Frame::Str(pos)),
                b'{' => stack.push(Frame::Brace(pos)),
                b'(' => stack.push(Frame::Paren(pos)),
                b'}' => match top {
                    Frame::Brace(_) => {
                        stack.pop();
                    }
                    _ => return Err(unclosed(top)),
                },
                b')' => match top {
                    Frame::Paren(_) | Frame::Interp(_) => {
                        stack.pop();
                    }
                    _ => {
                        return Err(CompileError::new(
                            "unmatched `)` in a `{…}` expression",
                            Some(pos),
                        ));
                    }
                },
                _ => {}
            }
        }
    }
    Ok(pos)
}

fn unclosed(frame: Frame) -> CompileError {
    let (message, at) = match frame {
        Frame::Brace(at) => ("unclosed `{`: expected a matching `}`", at),
        Frame::Paren(at) => ("unclosed `(`: expected a matching `)`", at),
        Frame::Str(at) => ("unterminated string: expected a closing `\"`", at),
        Frame::Interp(at) => ("unclosed `\\(`: expected a matching `)`", at),
    };
    CompileError::new(message, Some(at))
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.inner.source).finish()
    }
}
