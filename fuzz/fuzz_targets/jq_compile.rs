//! Arbitrary text as a jq program and as a path template: compiling must
//! never panic (programs nested deeper than `MAX_NESTING` are refused, not
//! allowed to exhaust the stack), and a compile error's offset lies within
//! the source.
//!
//! Programs that compile are then evaluated against a small fixed context under the
//! budget the engine gives inline evaluations (20,000 steps, a worker's stack, 200 ms):
//! whatever the program does (`until(false; .)`, `def f: 1 + f; f`, `[range(1e9)]`),
//! it must finish or be stopped by its budget, never hang, overflow the stack or panic.
//! A timeout of the fuzzer is therefore a bug. The one gap left is a single native
//! operation asked for a huge result (`"x" * 1e12`), which is charged only after it
//! returns: programs with large number literals are not evaluated, and the fuzzer's
//! out-of-memory reports are ignored (see `fuzz/run`).

#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

use patchbay_expr::{Budget, EvalError, Expr, Template, Vars};
use serde_json::{Value, json};

/// Longest number literal evaluated (digits only): `"x" * 9999` is fine,
/// `"x" * 1e12` is a memory bomb no budget sees coming.
const MAX_NUMBER_DIGITS: usize = 3;

/// The engine's inline budget, with a shorter time.
const BUDGET: Budget = Budget {
    steps: Some(20_000),
    time: Some(Duration::from_millis(200)),
    stack: Budget::SMALL_STACK / 2,
    memory: None,
    output: 1 << 20,
};

/// Longest an evaluation may take before the budget is known to have failed: the
/// time budget, plus generous room for a slow sanitizer build.
const STOPPED_WITHIN: Duration = Duration::from_secs(3);

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
static QUERY: LazyLock<Value> = LazyLock::new(|| json!({"page": "2", "tag": ["a", "b"]}));

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let vars = Vars {
        event: &EVENT,
        steps: &STEPS,
        state: &STATE,
        headers: &HEADERS,
        query: &QUERY,
        budget: BUDGET,
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
        for outcome in [
            timed(|| expr.eval(&INPUT, &vars).map(drop)),
            timed(|| expr.eval_bool(&INPUT, &vars).map(drop)),
            timed(|| expr.eval_all(&INPUT, &vars).map(drop)),
        ] {
            if let Err(EvalError::Exceeded(limit)) = outcome {
                // Stopping is fine; it must name one of the budgets given.
                assert!(
                    ["steps", "time", "stack", "output"].contains(&limit.name()),
                    "stopped by {limit}, which the budget does not set"
                );
            }
        }
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

/// Runs `evaluate`, and fails when it outlived its budget by far.
fn timed(evaluate: impl FnOnce() -> Result<(), EvalError>) -> Result<(), EvalError> {
    let started = Instant::now();
    let outcome = evaluate();
    let took = started.elapsed();
    assert!(took < STOPPED_WITHIN, "an evaluation ran {took:?} under a 200 ms budget");
    outcome
}

/// Whether `source` may be evaluated: no number literal large enough to make one
/// native operation allocate gigabytes at once. Textual and conservative (digits
/// inside a string literal count too).
fn bounded(source: &str) -> bool {
    let words = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty());
    for word in words {
        // A number: too many digits, or an exponent (`1e9`, `9E+99`).
        if word.starts_with(|c: char| c.is_ascii_digit())
            && (word.len() > MAX_NUMBER_DIGITS || word.contains(['e', 'E']))
        {
            return false;
        }
    }
    true
}
