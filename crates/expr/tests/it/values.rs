//! Values crossing between serde_json and jaq keep their meaning.

use serde_json::{Value, json};

use crate::eval;

#[test]
fn numbers_round_trip() {
    for n in [
        json!(0),
        json!(1),
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.25),
        json!(1e300),
        json!(-2.5e-300),
    ] {
        assert_eq!(eval(".", n.clone()), n);
        assert_eq!(eval("[.]", n.clone()), json!([n]));
    }
}

#[test]
fn integers_stay_integers() {
    let out = eval(".a + 1", json!({"a": 41}));
    assert!(out.is_i64(), "{out}");
    assert_eq!(out, json!(42));
    let out = eval(". * 2", json!(i64::MAX / 2));
    assert!(out.is_i64(), "{out}");
}

#[test]
fn integer_overflow_does_not_panic() {
    // jaq switches to big integers; back in JSON they become the nearest float.
    let out = eval(". + 1", json!(u64::MAX));
    assert_eq!(out, json!(18446744073709551616.0));
    let out = eval(". * .", json!(i64::MAX));
    assert!(out.is_f64(), "{out}");
    let out = eval(". - 1", json!(i64::MIN));
    assert_eq!(out, json!(-9223372036854775809.0));
    // Literals too large for a float become null rather than infinity.
    assert_eq!(eval(&"9".repeat(400), json!(null)), Value::Null);
    assert_eq!(eval("1e1000", json!(null)), Value::Null);
}

#[test]
fn decimal_literals_and_division() {
    assert_eq!(eval("1.25", json!(null)), json!(1.25));
    assert_eq!(eval("10 / 4", json!(null)), json!(2.5));
    assert_eq!(eval("[1, 2.0]", json!(null)), json!([1, 2.0]));
}

#[test]
fn non_finite_results_become_null() {
    assert_eq!(eval("nan", json!(null)), Value::Null);
    assert_eq!(eval("infinite", json!(null)), Value::Null);
    assert_eq!(eval("[-infinite]", json!(null)), json!([null]));
}

#[test]
fn unicode_strings_round_trip() {
    let text = json!("Grüße, 世界! 👋 \u{0} \"quoted\" \\ \n");
    assert_eq!(eval(".", text.clone()), text);
    assert_eq!(
        eval("{(.): .}", text.clone()),
        json!({text.as_str().unwrap(): text})
    );
    assert_eq!(eval("length", json!("世界👋")), json!(3));
    assert_eq!(eval("ascii_downcase", json!("ÄB")), json!("Äb"));
}

#[test]
fn nested_structures_round_trip() {
    let doc = json!({
        "a": [1, {"b": [null, true, false, "x"]}],
        "c": {"d": {}, "e": []},
        "": "empty key"
    });
    assert_eq!(eval(".", doc.clone()), doc);
}

#[test]
fn byte_strings_come_back_as_text() {
    assert_eq!(eval("\"abc\" | tobytes", json!(null)), json!("abc"));
}

#[test]
fn non_string_keys_are_stringified() {
    // jaq allows any value as an object key; JSON does not.
    assert_eq!(eval("{(1): 2}", json!(null)), json!({"1": 2}));
    assert_eq!(
        eval("{(null): 1, ([1]): 2}", json!(null)),
        json!({"null": 1, "[1]": 2})
    );
}
