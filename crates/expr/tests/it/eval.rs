//! Evaluation: input, variables, outputs, truthiness and runtime errors.

use patchbay_expr::{Budget, EvalError, Expr, VARIABLES, Vars};
use serde_json::{Value, json};

use crate::eval;

#[test]
fn field_access() {
    let order = json!({"id": 7, "customer": {"email": "a@example.com"}, "items": [1, 2]});
    assert_eq!(eval(".id", order.clone()), json!(7));
    assert_eq!(
        eval(".customer.email", order.clone()),
        json!("a@example.com")
    );
    assert_eq!(eval(".items[1]", order.clone()), json!(2));
    assert_eq!(eval(".missing", order.clone()), Value::Null);
    assert_eq!(eval(".", order.clone()), order);
}

#[test]
fn object_construction_with_shorthand_and_interpolation() {
    let person = json!({"id": 3, "first": "Ada", "last": "Lovelace", "email": "ada@example.com"});
    assert_eq!(
        eval(r#"{id, name: "\(.first) \(.last)"}"#, person),
        json!({"id": 3, "name": "Ada Lovelace"})
    );
}

#[test]
fn each_variable_is_bound_to_its_own_value() {
    let event = json!({"order_id": 42});
    let steps = json!({"a": {"body": {"id": "ch_1"}}});
    let state = json!({"cursor": "2024-05-01T00:00:00Z"});
    let headers = json!({"webhook-id": "msg_9"});
    let query = json!({"hub.challenge": "1158201444"});
    let vars = Vars {
        event: &event,
        steps: &steps,
        state: &state,
        headers: &headers,
        query: &query,
        budget: Budget::UNLIMITED,
    };
    let run = |source: &str| {
        Expr::compile(source)
            .unwrap()
            .eval(&json!(null), &vars)
            .unwrap()
    };

    assert_eq!(run("$event"), event);
    assert_eq!(run("$event.order_id"), json!(42));
    assert_eq!(run("$steps.a.body.id"), json!("ch_1"));
    assert_eq!(
        run(r#"$state.cursor // "1970""#),
        json!("2024-05-01T00:00:00Z")
    );
    assert_eq!(run(r#"$headers["webhook-id"]"#), json!("msg_9"));
    assert_eq!(run(r#"$query["hub.challenge"]"#), json!("1158201444"));
    assert_eq!(
        run("[$event, $steps, $state, $headers, $query]"),
        json!([event, steps, state, headers, query])
    );
    assert_eq!(VARIABLES, ["event", "steps", "state", "headers", "query"]);
}

#[test]
fn alternative_applies_when_a_variable_is_null() {
    let state = json!({});
    let vars = Vars {
        state: &state,
        ..Vars::default()
    };
    let expr = Expr::compile(r#"$state.cursor // "1970""#).unwrap();
    assert_eq!(expr.eval(&json!(null), &vars).unwrap(), json!("1970"));
}

#[test]
fn the_input_is_independent_of_event() {
    // Inside `for_each`, `.` is the item while `$event` stays the original event.
    let event = json!({"items": [{"id": 1}]});
    let vars = Vars {
        event: &event,
        ..Vars::default()
    };
    let expr = Expr::compile("{item: .id, count: ($event.items | length)}").unwrap();
    assert_eq!(
        expr.eval(&json!({"id": 1}), &vars).unwrap(),
        json!({"item": 1, "count": 1})
    );
}

#[test]
fn standard_library_is_available() {
    let items = json!([
        {"id": 1, "updated_at": "2024-01-02", "tags": ["a"]},
        {"id": 2, "updated_at": "2024-03-04", "tags": []},
        {"id": 3, "updated_at": "2024-02-03", "tags": ["b", "c"]}
    ]);
    assert_eq!(
        eval("map(.updated_at) | max", items.clone()),
        json!("2024-03-04")
    );
    assert_eq!(
        eval("map(select(.tags | length > 0) | .id)", items.clone()),
        json!([1, 3])
    );
    assert_eq!(
        eval(".[0] | keys", items.clone()),
        json!(["id", "tags", "updated_at"])
    );
    assert_eq!(
        eval("map(.id | tostring) | join(\",\")", items.clone()),
        json!("1,2,3")
    );
    assert_eq!(
        eval(r#"map(.updated_at | test("^2024-0[12]"))"#, items),
        json!([true, false, true])
    );
    assert_eq!(
        eval("[.[] | ascii_downcase]", json!(["A", "b"])),
        json!(["a", "b"])
    );
    assert_eq!(
        eval("to_entries | from_entries", json!({"a": 1})),
        json!({"a": 1})
    );
    assert_eq!(eval("@base64", json!("hi")), json!("aGk="));
    assert_eq!(eval("tojson", json!({"a": [1]})), json!("{\"a\":[1]}"));
    assert_eq!(eval("fromjson", json!("{\"a\":[1]}")), json!({"a": [1]}));
}

#[test]
fn eval_returns_only_the_first_output_and_eval_all_returns_every_one() {
    let expr = Expr::compile(".[]").unwrap();
    let input = json!([1, 2, 3]);
    assert_eq!(expr.eval(&input, &Vars::default()).unwrap(), json!(1));
    assert_eq!(
        expr.eval_all(&input, &Vars::default()).unwrap(),
        vec![json!(1), json!(2), json!(3)]
    );
}

#[test]
fn eval_stops_after_the_first_output() {
    // The error after the first output is never reached by `eval`, only by `eval_all`.
    let expr = Expr::compile(r#"1, error("second output")"#).unwrap();
    assert_eq!(expr.eval(&json!(null), &Vars::default()).unwrap(), json!(1));
    assert_eq!(
        expr.eval_all(&json!(null), &Vars::default()),
        Err(EvalError::Runtime("second output".to_owned()))
    );
}

#[test]
fn eval_bool_uses_jq_truthiness() {
    let truthy = |value: Value| {
        Expr::compile(".")
            .unwrap()
            .eval_bool(&value, &Vars::default())
            .unwrap()
    };
    assert!(!truthy(json!(false)));
    assert!(!truthy(json!(null)));
    assert!(truthy(json!(true)));
    assert!(truthy(json!(0)));
    assert!(truthy(json!([])));
    assert!(truthy(json!({})));
    assert!(truthy(json!("")));

    let filter = Expr::compile(".status == \"paid\"").unwrap();
    assert!(
        filter
            .eval_bool(&json!({"status": "paid"}), &Vars::default())
            .unwrap()
    );
    assert!(
        !filter
            .eval_bool(&json!({"status": "open"}), &Vars::default())
            .unwrap()
    );
}

#[test]
fn no_output_is_an_error() {
    for source in ["empty", "select(false)", ".[]"] {
        let expr = Expr::compile(source).unwrap();
        assert_eq!(
            expr.eval(&json!([]), &Vars::default()),
            Err(EvalError::NoOutput),
            "{source}"
        );
        assert_eq!(
            expr.eval_bool(&json!([]), &Vars::default()),
            Err(EvalError::NoOutput)
        );
        assert_eq!(expr.eval_all(&json!([]), &Vars::default()), Ok(vec![]));
    }
}

#[test]
fn runtime_errors_are_errors_with_jaqs_message() {
    let expr = Expr::compile(".a + 1").unwrap();
    let Err(EvalError::Runtime(message)) = expr.eval(&json!({"a": "text"}), &Vars::default())
    else {
        panic!("adding a number to a string must fail");
    };
    assert!(message.contains("cannot calculate"), "{message}");
    assert!(message.contains("\"text\""), "{message}");

    let expr = Expr::compile(r#"error("order has no lines")"#).unwrap();
    assert_eq!(
        expr.eval(&json!(null), &Vars::default()),
        Err(EvalError::Runtime("order has no lines".to_owned()))
    );

    let expr = Expr::compile("error({code: 7})").unwrap();
    assert_eq!(
        expr.eval(&json!(null), &Vars::default()),
        Err(EvalError::Runtime("{\"code\":7}".to_owned()))
    );

    let expr = Expr::compile(".[0]").unwrap();
    assert!(matches!(
        expr.eval(&json!(true), &Vars::default()),
        Err(EvalError::Runtime(_))
    ));
}

#[test]
fn runtime_errors_can_be_caught_in_jq() {
    assert_eq!(
        eval(r#"try (.a + 1) catch "fallback""#, json!({"a": "x"})),
        json!("fallback")
    );
    assert_eq!(eval("(.a + 1)?  // 0", json!({"a": "x"})), json!(0));
}

#[test]
fn long_runtime_error_messages_are_cut() {
    let huge = json!({"blob": "x".repeat(100_000)});
    let expr = Expr::compile(". + 1").unwrap();
    let Err(EvalError::Runtime(message)) = expr.eval(&huge, &Vars::default()) else {
        panic!("adding a number to an object must fail");
    };
    assert!(
        message.chars().count() <= 301,
        "{} chars",
        message.chars().count()
    );
    assert!(message.ends_with('…'));
}

#[test]
fn halt_is_an_error_and_does_not_exit_the_process() {
    let expr = Expr::compile("halt").unwrap();
    assert!(matches!(
        expr.eval(&json!(null), &Vars::default()),
        Err(EvalError::Runtime(m)) if m.contains("halt")
    ));
    let expr = Expr::compile(r#""bye" | halt_error(3)"#).unwrap();
    assert!(matches!(
        expr.eval(&json!(null), &Vars::default()),
        Err(EvalError::Runtime(m)) if m.contains('3')
    ));
}

#[test]
fn over_deep_output_is_refused() {
    let expr = Expr::compile("reduce range(200) as $i (0; [.])").unwrap();
    assert!(matches!(
        expr.eval(&json!(null), &Vars::default()),
        Err(EvalError::TooDeep { .. })
    ));
    let expr = Expr::compile("reduce range(100) as $i (0; [.])").unwrap();
    assert!(expr.eval(&json!(null), &Vars::default()).is_ok());
}

#[test]
fn source_is_kept_and_clones_share_the_program() {
    let expr = Expr::compile(" .id ").unwrap();
    let clone = expr.clone();
    assert_eq!(clone.source(), " .id ");
    assert_eq!(
        clone.eval(&json!({"id": 1}), &Vars::default()).unwrap(),
        json!(1)
    );
    assert_eq!(format!("{expr:?}"), "Expr(\" .id \")");
}

#[test]
fn expr_and_template_are_send_and_sync() {
    const fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    const _: () = assert_send_sync::<Expr>();
    const _: () = assert_send_sync::<patchbay_expr::Template>();
}

#[test]
fn one_expr_evaluates_on_many_threads_at_once() {
    let expr = Expr::compile("{id, double: (.n * 2)}").unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let expr = expr.clone();
                scope.spawn(move || {
                    for n in 0..200 {
                        let out = expr
                            .eval(&json!({"id": t, "n": n}), &Vars::default())
                            .unwrap();
                        assert_eq!(out, json!({"id": t, "double": n * 2}));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
}

#[test]
fn variables_the_program_does_not_name_are_not_needed() {
    // `$steps` is not mentioned, so its (here: unusual) value must not matter; a mention
    // inside a string still binds it, which is merely conservative.
    let steps = json!({"big": [1, 2, 3]});
    let vars = Vars {
        steps: &steps,
        ..Vars::default()
    };
    assert_eq!(
        Expr::compile(".a")
            .unwrap()
            .eval(&json!({"a": 1}), &vars)
            .unwrap(),
        json!(1)
    );
    assert_eq!(
        Expr::compile("$steps.big | length")
            .unwrap()
            .eval(&json!(null), &vars)
            .unwrap(),
        json!(3)
    );
    assert_eq!(
        Expr::compile("\"$stepsx\", ($steps.big[0])")
            .unwrap()
            .eval_all(&json!(null), &vars)
            .unwrap(),
        vec![json!("$stepsx"), json!(1)]
    );
}

#[test]
fn env_is_not_available() {
    let err = Expr::compile("env.HOME").unwrap_err();
    assert!(err.message.contains("`env`"), "{err}");
    assert!(err.message.contains("environment"), "{err}");
    assert!(Expr::compile("$ENV.HOME").is_err());
}

#[test]
fn includes_and_imports_are_refused() {
    for source in [
        r#"include "lib"; ."#,
        r#"import "lib" as lib; lib::f"#,
        r#"import "data" as $data; $data"#,
    ] {
        let err = Expr::compile(source).unwrap_err();
        assert!(
            err.message.contains("cannot include or import"),
            "{source}: {err}"
        );
        // The offset is that of the module's name, inside the quotes.
        assert_eq!(
            err.offset,
            Some(source.find('"').unwrap() + 1),
            "{source}: {err}"
        );
    }
}
