//! Arbitrary text as a jq program and as a path template: compiling must
//! never panic (programs nested deeper than `MAX_NESTING` are refused, not
//! allowed to exhaust the stack), and a compile error's offset lies within
//! the source.
//!
//! Programs that compile are evaluated against a small fixed context when
//! they stay within [`bounded`]: jq evaluation has no time, memory or stack
//! budget, so a program that loops (`until(false; .)`), recurses without end
//! (`def f: 1 + f; f`) or builds an unboundedly deep value would only rediscover
//! that. Whatever still slips through the filter and runs too long or too big
//! is caught by the fuzzer's own time and memory limits (see `fuzz/run`).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patchbay_expr::{Expr, Template, Vars};
use serde_json::{Value, json};

/// Longest program evaluated: short enough that chains of generators
/// (`(.,.) | (.,.) | …`) cannot multiply into billions of outputs.
const MAX_EVAL_LEN: usize = 96;

/// Words that iterate or recurse, directly or through the standard library.
const UNBOUNDED_WORDS: [&str; 10] = [
    "def",
    "reduce",
    "foreach",
    "range",
    "repeat",
    "recurse",
    "while",
    "until",
    "combinations",
    "walk",
];

/// Longest number literal evaluated (digits only): `"x" * 9999` is fine,
/// `"x" * 1e12` is a memory bomb.
const MAX_NUMBER_DIGITS: usize = 3;

static INPUT: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "id": "ord_1",
        "total": 12.5,
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": null}],
        "tags": ["new", "vip"],
        "ok": true,
        "note": "héllo\u{0}wörld",
    })
});
static EVENT: LazyLock<Value> =
    LazyLock::new(|| json!({"type": "order.created", "data": {"id": 7}}));
static STEPS: LazyLock<Value> =
    LazyLock::new(|| json!({"lookup": {"status": 200, "body": [1, 2, 3]}}));
static STATE: LazyLock<Value> = LazyLock::new(|| json!({"cursor": "abc", "seen": 3}));
static HEADERS: LazyLock<Value> = LazyLock::new(|| json!({"content-type": "application/json"}));

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let vars = Vars {
        event: &EVENT,
        steps: &STEPS,
        state: &STATE,
        headers: &HEADERS,
    };

    match Template::parse(&source) {
        Ok(template) if bounded(&source) => {
            let _ = template.render_path(&INPUT, &vars);
        }
        Ok(_) => {}
        Err(error) => check_offset(&source, error.offset),
    }

    let expr = match Expr::compile(&source) {
        Ok(expr) => expr,
        Err(error) => {
            check_offset(&source, error.offset);
            return;
        }
    };
    if bounded(&source) {
        let _ = expr.eval(&INPUT, &vars);
        let _ = expr.eval_bool(&INPUT, &vars);
    }
});

fn check_offset(source: &str, offset: Option<usize>) {
    if let Some(offset) = offset {
        assert!(
            offset <= source.len(),
            "offset {offset} past the end of a {}-byte source",
            source.len()
        );
    }
}

/// Whether `source` is small and simple enough to evaluate without a budget:
/// short, no looping or recursive construct, no large number literal.
/// Conservative and textual (a word inside a string literal counts too).
fn bounded(source: &str) -> bool {
    if source.len() > MAX_EVAL_LEN {
        return false;
    }
    let words = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty());
    for word in words {
        if UNBOUNDED_WORDS.contains(&word) {
            return false;
        }
        // A number: too many digits, or an exponent (`1e9`, `9E+99`).
        if word.starts_with(|c: char| c.is_ascii_digit())
            && (word.len() > MAX_NUMBER_DIGITS || word.contains(['e', 'E']))
        {
            return false;
        }
    }
    true
}
