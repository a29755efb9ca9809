//! [`Expr`]: a jq program compiled once, when the configuration loads, and evaluated for
//! every event, item and step afterwards.
//!
//! Compilation links the program against jaq's standard library (`map`, `select`, `test`,
//! `tostring`, …) minus `env`, which would let a flow read the process environment and
//! with it every secret passed in that way. Module `include`/`import` is refused because
//! loading files is not this crate's business. The run-context variables of
//! [`VARIABLES`](crate::VARIABLES) are declared as globals, so a misspelt `$step` fails at
//! load time instead of at run time.
//!
//! Evaluation converts the input and the variables the program mentions into jaq values
//! (variables it never names are bound to `null`, which keeps a large `$steps` from being
//! copied for programs that ignore it), runs the program lazily, and converts outputs back.

use std::fmt;
use std::sync::{Arc, OnceLock};

use jaq_core::load::parse::Def;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Exn};
use jaq_json::Val;
use serde_json::Value;

use crate::budget::{self, Meter, Metered, MeteredLut};
use crate::value::{to_val, to_value};
use crate::{CompileError, EvalError, Limit, VARIABLES, Vars, diagnostics, nesting};

type Filter = jaq_core::Filter<Metered>;

/// Longest runtime error message kept, in characters: jaq quotes the offending value, which
/// may be an entire payload.
const MAX_MESSAGE_CHARS: usize = 300;

/// A jq program compiled once and evaluated many times.
///
/// Cloning is cheap (the compiled program is shared), and an `Expr` can be used from any
/// thread.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    filter: Filter,
    /// Which of [`VARIABLES`] the source mentions, in the same order.
    uses: [bool; VARIABLES.len()],
}

impl Expr {
    /// Compiles a jq program.
    ///
    /// Fails with a [`CompileError`] on a syntax error (with its offset), on an undefined
    /// variable or function (naming it), and on programs nested too deeply to be handled
    /// safely.
    pub fn compile(source: &str) -> Result<Expr, CompileError> {
        nesting::check(source)?;

        let program = File {
            code: source,
            path: (),
        };
        let arena = Arena::default();
        let modules = Loader::new(prelude().iter().cloned())
            .load(&arena, program)
            .map_err(|errors| diagnostics::load_errors(source, errors))?;
        // Data imports (`import "x" as $x;`) parse fine but would need file access to bind.
        jaq_core::load::import(&modules, |_| Err("not supported".to_owned()))
            .map_err(|errors| diagnostics::load_errors(source, errors))?;

        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .filter(|(name, _, _)| !matches!(*name, "env" | "fromjson" | "range"))
            .chain([fromjson(), budget::range()]);
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(GLOBALS)
            .compile(modules)
            .map_err(|errors| diagnostics::compile_errors(source, errors))?;

        Ok(Expr {
            inner: Arc::new(Inner {
                source: source.to_owned(),
                filter,
                uses: GLOBALS.map(|var| mentions(source, var)),
            }),
        })
    }

    /// The program's source text.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The first output of the program for this input (`.`) and these variables, within
    /// `vars.budget`.
    ///
    /// Later outputs are never computed.
    pub fn eval(&self, input: &Value, vars: &Vars) -> Result<Value, EvalError> {
        self.with_outputs(input, vars, |outputs, meter| {
            let first = outputs.next().unwrap_or(Err(EvalError::NoOutput))?;
            to_value(&first, meter.output_limit())
        })
    }

    /// All outputs of the program, in order; the first runtime error fails the whole call.
    /// `vars.budget` bounds the whole call, all outputs together.
    pub fn eval_all(&self, input: &Value, vars: &Vars) -> Result<Vec<Value>, EvalError> {
        self.with_outputs(input, vars, |outputs, meter| {
            let limit = meter.output_limit();
            let mut room = limit;
            let mut values = Vec::new();
            for output in outputs {
                let value = to_value(&output?, room).map_err(|e| match e {
                    EvalError::Exceeded(Limit::Output(_)) => {
                        EvalError::Exceeded(Limit::Output(limit))
                    }
                    other => other,
                })?;
                room = room.saturating_sub(crate::value::json_size(&value));
                values.push(value);
            }
            Ok(values)
        })
    }

    /// jq truthiness of the first output: `false` and `null` are false, everything else
    /// (including `0`, `""` and `[]`) is true.
    pub fn eval_bool(&self, input: &Value, vars: &Vars) -> Result<bool, EvalError> {
        self.with_outputs(input, vars, |outputs, _| {
            let first = outputs.next().unwrap_or(Err(EvalError::NoOutput))?;
            Ok(!matches!(first, Val::Null | Val::Bool(false)))
        })
    }

    /// First output converted by `convert`, for callers inside the crate that render it
    /// themselves.
    pub(crate) fn first_with<T>(
        &self,
        input: &Value,
        vars: &Vars,
        convert: impl FnOnce(&Val, usize) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        self.with_outputs(input, vars, |outputs, meter| {
            let first = outputs.next().unwrap_or(Err(EvalError::NoOutput))?;
            convert(&first, meter.output_limit())
        })
    }

    /// Runs the program lazily under a meter for `vars.budget` and hands its outputs to
    /// `consume`; each output is computed when the iterator is advanced. Whatever
    /// `consume` returns is checked against the memory budget once more, since a single
    /// operation may allocate after the last step was charged.
    fn with_outputs<T>(
        &self,
        input: &Value,
        vars: &Vars,
        consume: impl FnOnce(
            &mut dyn Iterator<Item = Result<Val, EvalError>>,
            &Meter,
        ) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        let meter = Meter::start(vars.budget);
        let outcome = budget::metered(|| {
            let values = [vars.event, vars.steps, vars.state, vars.headers, vars.query];
            let bound = values
                .into_iter()
                .zip(self.inner.uses)
                .map(|(value, used)| if used { to_val(value) } else { Val::Null });
            let filter = &self.inner.filter;
            let data = MeteredLut {
                lut: &filter.lut,
                meter: &meter,
            };
            let ctx = Ctx::<Metered>::new(data, jaq_core::Vars::new(bound));
            let mut outputs = filter
                .id
                .run((ctx, to_val(input)))
                .map(|output| output.map_err(runtime_error));
            let result = consume(&mut outputs, &meter);
            drop(outputs);
            meter.check_memory().map_err(EvalError::Exceeded)?;
            result
        });
        outcome.unwrap_or_else(|limit| Err(EvalError::Exceeded(limit)))
    }
}

/// `fromjson` with a nesting limit. jaq's own parser recurses without one,
/// so a string of a few hundred thousand `[` from a webhook's payload
/// (`.payload | fromjson`) would overflow the stack and abort the process.
/// serde_json refuses documents nested deeper than 128 levels, the same
/// limit the HTTP edge applies to request bodies.
fn fromjson() -> jaq_core::native::Fun<Metered> {
    jaq_core::native::run(("fromjson", jaq_core::native::v(0), |cv| {
        jaq_core::native::bome(parse_json_text(&cv.1))
    }))
}

fn parse_json_text(input: &Val) -> Result<Val, jaq_core::Error<Val>> {
    let (Val::TStr(text) | Val::BStr(text)) = input else {
        return Err(jaq_core::Error::str(format_args!(
            "cannot parse {input} as JSON: not a string"
        )));
    };
    serde_json::from_slice::<Value>(text)
        .map(|value| to_val(&value))
        .map_err(|e| jaq_core::Error::str(format_args!("cannot parse a string as JSON: {e}")))
}

/// The standard library's definitions (`map`, `select`, …), parsed once per process: parsing
/// them costs more than compiling a typical expression.
fn prelude() -> &'static [Def] {
    static PRELUDE: OnceLock<Vec<Def>> = OnceLock::new();
    PRELUDE.get_or_init(|| {
        jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .collect()
    })
}

/// `$`-prefixed names of [`VARIABLES`], in the same order, as jaq expects them.
const GLOBALS: [&str; VARIABLES.len()] = ["$event", "$steps", "$state", "$headers", "$query"];

/// Whether `source` mentions the variable `var` (written with its `$`), as
/// a whole name: `$steps` is not mentioned by `$stepsx`. Conservative: a
/// mention inside a string literal or a comment counts too.
pub fn mentions(source: &str, var: &str) -> bool {
    source.match_indices(var).any(|(at, _)| {
        !source[at + var.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Whether `source` may read a field named `field` of some value: the name
/// as a whole word right after `.` (`.headers`), a quote (`."headers"`,
/// `["headers"]`, `has("headers")`), or `{` or `,` (`{status, headers}`,
/// which reads `.headers`), spaces allowed between. A YAML key (`headers:`
/// at the start of a line) and a variable (`$headers`) do not count.
/// Conservative for the forms it sees: a mention in a string or a comment
/// counts too. A read it cannot see (`.[$name]`, `to_entries`, the whole
/// value passed on) is the caller's to allow for.
pub fn mentions_field(source: &str, field: &str) -> bool {
    source.match_indices(field).any(|(at, _)| {
        let whole_end = !source[at + field.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let before = source[..at]
            .trim_end_matches([' ', '\t'])
            .chars()
            .next_back();
        whole_end && matches!(before, Some('.' | '"' | '{' | ','))
    })
}

fn runtime_error(exn: Exn<'_, Val>) -> EvalError {
    let message = match exn.get_err() {
        Ok(error) => match error.into_val() {
            // `error("text")` reads better without JSON quotes.
            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(&b).into_owned(),
            other => other.to_string(),
        },
        Err(exn) => match exn.get_halt() {
            Ok(code) => format!("the expression called halt with exit code {code}"),
            Err(_) => "the expression broke out of its control flow".to_owned(),
        },
    };
    EvalError::Runtime(truncate(message))
}

fn truncate(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.inner.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_are_the_variables_with_a_dollar() {
        for (global, name) in GLOBALS.iter().zip(VARIABLES) {
            assert_eq!(global.strip_prefix('$'), Some(name));
        }
    }

    #[test]
    fn a_field_is_read_after_a_dot_a_quote_or_in_an_object_shorthand() {
        for read in [
            "$steps.up.headers",
            ".headers.etag",
            "$steps.up | .\"headers\"",
            ".[\"headers\"]",
            "has(\"headers\")",
            "{status, headers}",
            "{ headers }",
            ". headers",
        ] {
            assert!(mentions_field(read, "headers"), "{read}");
        }
        for not_read in [
            "headers: '{accept: \"json\"}'",
            "  headers:\n    x-api-key: k",
            "$headers.host",
            ".headersx",
            ".request_headers",
            "{x: 1} | keys",
        ] {
            assert!(!mentions_field(not_read, "headers"), "{not_read}");
        }
    }

    #[test]
    fn mentions_needs_the_whole_name() {
        assert!(mentions("$steps.a", "$steps"));
        assert!(mentions("[$steps]", "$steps"));
        assert!(mentions("$steps", "$steps"));
        assert!(!mentions("$stepsx", "$steps"));
        assert!(!mentions("$steps_", "$steps"));
        assert!(mentions("$stepsx, $steps", "$steps"));
        assert!(!mentions(".steps", "$steps"));
    }
}
