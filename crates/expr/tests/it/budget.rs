//! Budgets stop runaway programs with an error naming the budget, and leave honest ones
//! alone.
//!
//! Like the hostile-input tests, these run on the harness's threads with Rust's default
//! 2 MiB stack, the same as tokio's workers: a program that escaped its budget would
//! overflow the stack or exhaust memory and abort the whole test binary.

use std::time::Duration;

use patchbay_expr::{Budget, EvalError, Expr, Limit, Vars};
use serde_json::{Value, json};

fn with_budget(budget: Budget) -> Vars<'static> {
    Vars {
        budget,
        ..Vars::default()
    }
}

fn run(source: &str, input: Value, budget: Budget) -> Result<Value, EvalError> {
    Expr::compile(source)
        .unwrap_or_else(|e| panic!("{source:?} does not compile: {e}"))
        .eval(&input, &with_budget(budget))
}

fn steps(n: u64) -> Budget {
    Budget {
        steps: Some(n),
        ..Budget::UNLIMITED
    }
}

#[test]
fn an_endless_loop_stops_at_its_time_budget() {
    let budget = Budget {
        time: Some(Duration::from_millis(50)),
        ..Budget::UNLIMITED
    };
    let error = run("0 | until(. < 0; . + 1)", json!(null), budget).unwrap_err();
    assert_eq!(
        error,
        EvalError::Exceeded(Limit::Time(Duration::from_millis(50)))
    );
    assert_eq!(
        error.to_string(),
        "the expression was stopped: it exceeded its time budget of 50ms"
    );
}

#[test]
fn endless_recursion_of_every_kind_stops() {
    let budget = Budget {
        time: Some(Duration::from_millis(50)),
        ..Budget::UNLIMITED
    };
    for source in [
        "def f: f; f",
        "def f: . + 1 | f; 0 | f",
        "[repeat(1)]",
        "last(repeat(1))",
        "reduce repeat(1) as $x (0; . + $x)",
        "[limit(1e12; repeat(1))] | length",
        "0 | while(true; . + 1) | empty",
    ] {
        let error = run(source, json!(null), budget).unwrap_err();
        assert!(matches!(error, EvalError::Exceeded(_)), "{source}: {error}");
    }
}

#[test]
fn range_is_charged_for_every_value() {
    // jaq's own `range` yields values without entering a term, so without a metered
    // replacement this would fill memory between two checks.
    let error = run("[range(1e9)] | length", json!(null), steps(10_000)).unwrap_err();
    assert_eq!(error, EvalError::Exceeded(Limit::Steps(10_000)));
}

#[test]
fn range_still_counts_like_jq() {
    let budget = Budget::UNLIMITED;
    assert_eq!(
        run("[range(5)]", json!(null), budget).unwrap(),
        json!([0, 1, 2, 3, 4])
    );
    assert_eq!(
        run("[range(2; 4)]", json!(null), budget).unwrap(),
        json!([2, 3])
    );
    assert_eq!(
        run("[range(0; 10; 3)]", json!(null), budget).unwrap(),
        json!([0, 3, 6, 9])
    );
    assert_eq!(
        run("[range(5; 0; -2)]", json!(null), budget).unwrap(),
        json!([5, 3, 1])
    );
    assert_eq!(
        run("[range(0; 0)]", json!(null), budget).unwrap(),
        json!([])
    );
    assert_eq!(
        run("[limit(3; range(0; 1; 0))]", json!(null), budget).unwrap(),
        json!([0, 0, 0])
    );
    assert_eq!(
        run("[range(1; 2; 0.5)]", json!(null), budget).unwrap(),
        json!([1, 1.5])
    );
}

#[test]
fn deep_recursion_stops_at_the_stack_budget_not_the_guard_page() {
    let error = run("def f: [f]; f", json!(null), Budget::UNLIMITED).unwrap_err();
    assert_eq!(
        error,
        EvalError::Exceeded(Limit::Stack(Budget::SMALL_STACK))
    );
}

#[test]
fn a_reduce_nesting_the_whole_input_stops_within_its_steps() {
    // The webhook that crashed a node: each item nests the accumulator one level
    // deeper, and dropping the result recursed past the thread's stack. A step budget
    // bounds the nesting, so what is dropped on the way out stays shallow.
    let items: Vec<u32> = (0..375_000).collect();
    let error = run(
        "reduce .items[] as $x (null; {value: $x, next: .})",
        json!({ "items": items }),
        steps(20_000),
    )
    .unwrap_err();
    assert_eq!(error, EvalError::Exceeded(Limit::Steps(20_000)));
}

#[test]
fn output_is_bounded() {
    let budget = Budget {
        output: 1000,
        ..Budget::UNLIMITED
    };
    let error = run("[range(1000)]", json!(null), budget).unwrap_err();
    assert_eq!(error, EvalError::Exceeded(Limit::Output(1000)));
    assert_eq!(
        run("[range(10)]", json!(null), budget).unwrap(),
        json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    let long = "x".repeat(2000);
    assert_eq!(
        run(".", json!(long), budget).unwrap_err(),
        EvalError::Exceeded(Limit::Output(1000))
    );
}

#[test]
fn all_outputs_share_one_output_budget() {
    let budget = Budget {
        output: 100,
        ..Budget::UNLIMITED
    };
    let expr = Expr::compile("range(100)").unwrap();
    let error = expr
        .eval_all(&json!(null), &with_budget(budget))
        .unwrap_err();
    assert_eq!(error, EvalError::Exceeded(Limit::Output(100)));
}

#[test]
fn honest_programs_fit_a_small_step_budget() {
    let order = json!({
        "order_id": "o-1",
        "items": (0..100).map(|i| json!({"sku": format!("s{i}"), "qty": i, "price": 250})).collect::<Vec<_>>(),
    });
    let result = run(
        "{order_id, total: (.items | map(.qty * .price) | add), skus: [.items[].sku]}",
        order,
        steps(20_000),
    )
    .unwrap();
    assert_eq!(result["total"], json!(1_237_500));
    assert_eq!(result["skus"].as_array().map(Vec::len), Some(100));
}

#[test]
fn runtime_errors_are_not_budget_errors() {
    let error = run(r#"error("boom")"#, json!(null), steps(1000)).unwrap_err();
    assert_eq!(error, EvalError::Runtime("boom".into()));
}

#[test]
fn try_cannot_catch_a_stopped_evaluation() {
    let budget = Budget {
        time: Some(Duration::from_millis(50)),
        ..Budget::UNLIMITED
    };
    let error = run("try (0 | until(. < 0; . + 1)) catch 0", json!(null), budget).unwrap_err();
    assert!(
        matches!(error, EvalError::Exceeded(Limit::Time(_))),
        "{error}"
    );
}
