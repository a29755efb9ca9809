//! Turns jaq's lexer, parser and compiler errors into [`CompileError`]s an operator can act
//! on: one sentence that quotes the offending snippet, plus the byte offset of the problem.
//!
//! jaq reports positions as string slices of the source; offsets are recovered from the
//! slices' addresses. Slices that do not point into the source (they would come from the
//! bundled standard library) yield no offset rather than a wrong one.

use jaq_core::compile::Undefined;
use jaq_core::load::{self, lex, parse};

use crate::{CompileError, VARIABLES};

/// Longest snippet quoted in a message, in characters.
const SNIPPET_CHARS: usize = 24;

/// Converts the errors of [`load::Loader::load`] or [`load::import`].
pub(crate) fn load_errors(source: &str, errors: load::Errors<&str, ()>) -> CompileError {
    let mut all: Vec<CompileError> = Vec::new();
    for (_file, error) in errors {
        match error {
            load::Error::Io(items) => all.extend(items.into_iter().map(|(path, _)| {
                CompileError::new(
                    format!(
                        "cannot load {}: expressions cannot include or import modules",
                        quote(path)
                    ),
                    offset_in(source, path),
                )
            })),
            load::Error::Lex(items) => all.extend(
                items
                    .into_iter()
                    .map(|(expect, rest)| lex_error(source, expect, rest)),
            ),
            load::Error::Parse(items) => all.extend(
                items
                    .into_iter()
                    .map(|(expect, found)| parse_error(source, expect, found)),
            ),
        }
    }
    first_of(all)
}

/// Converts the errors of [`jaq_core::compile::Compiler::compile`].
pub(crate) fn compile_errors(
    source: &str,
    errors: jaq_core::compile::Errors<&str, ()>,
) -> CompileError {
    let all = errors
        .into_iter()
        .flat_map(|(_file, items)| items)
        .map(|(name, undefined)| undefined_error(source, name, undefined))
        .collect();
    first_of(all)
}

/// Keeps the first problem, noting how many more there are: later ones are often
/// consequences of the first.
fn first_of(mut all: Vec<CompileError>) -> CompileError {
    if all.is_empty() {
        return CompileError::new("the expression is invalid", None);
    }
    let more = all.len() - 1;
    let mut first = all.swap_remove(0);
    match more {
        0 => {}
        1 => first.message.push_str(" (and 1 more problem)"),
        n => first.message.push_str(&format!(" (and {n} more problems)")),
    }
    first
}

fn undefined_error(source: &str, name: &str, undefined: Undefined) -> CompileError {
    let offset = offset_in(source, name);
    let message = match undefined {
        Undefined::Var => {
            let known: Vec<String> = VARIABLES.iter().map(|v| format!("${v}")).collect();
            format!(
                "undefined variable `{name}` (the variables are {})",
                known.join(", ")
            )
        }
        Undefined::Filter(0) if name == "env" => {
            "`env` is not available: expressions cannot read the process environment".to_owned()
        }
        Undefined::Filter(0) => format!("undefined function `{name}`"),
        // jaq parses `reduce xs as $x (init)` as a call with one argument.
        Undefined::Filter(arity) if name == "reduce" || name == "foreach" => {
            format!(
                "`{name}` given {arity} argument{}: write `{name} SOURCE as $x (INIT; UPDATE)`{}",
                plural(arity),
                if name == "foreach" {
                    " or `foreach SOURCE as $x (INIT; UPDATE; EXTRACT)`"
                } else {
                    ""
                }
            )
        }
        Undefined::Filter(arity) => format!(
            "undefined function `{name}/{arity}`: no function `{name}` takes {arity} argument{}",
            plural(arity)
        ),
        Undefined::Label => format!("undefined label `{name}`"),
        Undefined::Mod => format!("undefined module `{name}`"),
        other => format!("undefined {} `{name}`", other.as_str()),
    };
    CompileError::new(message, offset)
}

fn lex_error(source: &str, expect: lex::Expect<&str>, rest: &str) -> CompileError {
    let at = offset_in(source, rest);
    match expect {
        lex::Expect::Delim(open) => {
            let what = match open {
                "(" => "unclosed `(`: expected a matching `)`",
                "[" => "unclosed `[`: expected a matching `]`",
                "{" => "unclosed `{`: expected a matching `}`",
                "\"" => "unterminated string: expected a closing `\"`",
                _ => "unclosed delimiter",
            };
            CompileError::new(what, offset_in(source, open).or(at))
        }
        lex::Expect::Digit => expected(source, "a digit", rest),
        lex::Expect::Ident => {
            let sigil = at
                .and_then(|at| source[..at].chars().next_back())
                .map_or(String::new(), |c| format!(" after `{c}`"));
            CompileError::new(format!("expected a name{sigil}"), at)
        }
        lex::Expect::Escape => CompileError::new(
            format!(
                "invalid escape sequence `\\{}` in a string",
                rest.chars().next().map_or(String::new(), String::from)
            ),
            at.map(|at| at.saturating_sub(1)),
        ),
        lex::Expect::Unicode => CompileError::new(
            "invalid `\\u` escape: expected 4 hexadecimal digits of a valid code point",
            at,
        ),
        lex::Expect::Token => CompileError::new(
            format!(
                "unexpected character `{}`",
                rest.chars().next().map_or(String::new(), String::from)
            ),
            at,
        ),
        _ => CompileError::new(format!("syntax error at {}", describe(rest)), at),
    }
}

fn parse_error(source: &str, expect: parse::Expect<&str>, found: &str) -> CompileError {
    use parse::Expect as E;
    let what = match expect {
        E::Just(token) => format!("`{token}`"),
        E::Var => "a variable".to_owned(),
        E::Pattern => "a variable or destructuring pattern".to_owned(),
        E::ElseOrEnd => "`else` or `end`".to_owned(),
        E::CommaOrRBrack => "`,` or `]`".to_owned(),
        E::CommaOrRBrace => "`,` or `}`".to_owned(),
        E::SemicolonOrRParen => "`;` or `)`".to_owned(),
        E::Term => "a term".to_owned(),
        E::Key => "a key".to_owned(),
        E::Ident => "a name".to_owned(),
        E::Arg => "an argument".to_owned(),
        E::Str => "a string".to_owned(),
        E::Nothing => {
            return CompileError::new(
                format!("unexpected {}", describe(found)),
                offset_in(source, found),
            );
        }
        other => other.as_str().to_owned(),
    };
    expected(source, &what, found)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// "expected X, found `y`", or "expected X after `z`" when the source ended too early.
fn expected(source: &str, what: &str, found: &str) -> CompileError {
    let at = offset_in(source, found);
    if !found.trim().is_empty() {
        return CompileError::new(format!("expected {what}, found {}", describe(found)), at);
    }
    let end = at.unwrap_or(source.len());
    let before = source[..end].trim_end();
    let message = match last_word(before) {
        "" => format!("expected {what}, but the expression is empty"),
        prev => format!("expected {what} after `{}`", shorten(prev)),
    };
    CompileError::new(message, Some(end))
}

/// The quoted start of `text`, or "the end of the expression" when nothing is left.
fn describe(text: &str) -> String {
    let text = text.trim_start();
    if text.is_empty() {
        "the end of the expression".to_owned()
    } else {
        quote(first_word(text))
    }
}

fn quote(text: &str) -> String {
    format!("`{}`", shorten(text))
}

fn first_word(text: &str) -> &str {
    text.split(char::is_whitespace).next().unwrap_or(text)
}

fn last_word(text: &str) -> &str {
    text.rsplit(char::is_whitespace).next().unwrap_or(text)
}

/// Cuts a snippet to [`SNIPPET_CHARS`] characters so a long token cannot flood the output.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Byte offset of `part` in `whole`, if `part` is a slice of `whole`.
pub(crate) fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    (at >= start && at + part.len() <= start + whole.len()).then(|| at - start)
}
