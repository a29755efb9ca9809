//! Integration tests of the expression crate's public API: compiling and evaluating jq
//! programs, path templates, value conversion, compile diagnostics and hostile input.

mod budget;
mod diagnostics;
mod eval;
mod hostile;
mod template;
mod values;

use patchbay_expr::{Expr, Vars};
use serde_json::Value;

/// Compiles `source` and returns its first output for `input`, with every variable null.
pub fn eval(source: &str, input: Value) -> Value {
    Expr::compile(source)
        .unwrap_or_else(|e| panic!("{source:?} does not compile: {e}"))
        .eval(&input, &Vars::default())
        .unwrap_or_else(|e| panic!("{source:?} fails: {e}"))
}
