//! "Contains": how expectations compare with what happened. An expected
//! object needs its keys (not all of the actual's); an expected array needs
//! as many items, each containing the expected one; anything else is equal.
//! Every difference is told with its path, so a failure reads as a list of
//! `.body.id: expected "ch_1", got "ch_2"`.

use serde_json::Value;

/// One place where the actual document does not contain the expected one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// jq-style path from the compared document (`.body.items[0].id`);
    /// empty for the document itself.
    pub path: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // jq's spelling: `.` alone, `.[1].id`, `.body.id`.
        let dot = if self.path.starts_with('.') { "" } else { "." };
        write!(
            f,
            "{dot}{}: expected {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

impl Mismatch {
    /// The mismatch told from a containing document: `prefix` is where the
    /// compared document sits in it (`output`, `body`).
    pub fn under(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}: expected {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

/// Where `actual` does not contain `expected`; empty when it does.
pub fn mismatches(expected: &Value, actual: &Value) -> Vec<Mismatch> {
    let mut found = Vec::new();
    compare(expected, actual, String::new(), &mut found);
    found
}

fn compare(expected: &Value, actual: &Value, path: String, found: &mut Vec<Mismatch>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, want) in want {
                let at = format!("{path}{}", key_path(key));
                match got.get(key) {
                    Some(got) => compare(want, got, at, found),
                    None => found.push(Mismatch {
                        path: at,
                        expected: short(want),
                        actual: "nothing (no such key)".to_string(),
                    }),
                }
            }
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            for (index, (want, got)) in want.iter().zip(got).enumerate() {
                compare(want, got, format!("{path}[{index}]"), found);
            }
        }
        (Value::Array(want), Value::Array(got)) => found.push(Mismatch {
            path,
            expected: format!("{} items", want.len()),
            actual: format!("{} items: {}", got.len(), short(actual)),
        }),
        // 1 and 1.0 are the same number to a reader.
        (Value::Number(want), Value::Number(got)) if want.as_f64() == got.as_f64() => {}
        (want, got) if want == got => {}
        (want, got) => found.push(Mismatch {
            path,
            expected: short(want),
            actual: short(got),
        }),
    }
}

fn key_path(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        format!(".{key}")
    } else {
        format!(".{}", Value::String(key.to_string()))
    }
}

/// A value as one line, cut past 200 characters.
pub(crate) fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 200 {
        let cut: String = text.chars().take(200).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_need_only_the_expected_keys() {
        let actual = json!({"status": 201, "body": {"id": "ch_1", "amount": 1200}});
        assert!(mismatches(&json!({"body": {"id": "ch_1"}}), &actual).is_empty());
        let found = mismatches(&json!({"body": {"id": "ch_2", "fee": 3}}), &actual);
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                r#".body.fee: expected 3, got nothing (no such key)"#,
                r#".body.id: expected "ch_2", got "ch_1""#,
            ]
        );
    }

    #[test]
    fn arrays_need_as_many_items_each_containing_the_expected_one() {
        let actual = json!([{"id": 1, "x": true}, {"id": 2}]);
        assert!(mismatches(&json!([{"id": 1}, {}]), &actual).is_empty());
        assert_eq!(
            mismatches(&json!([{"id": 1}]), &actual)[0].to_string(),
            r#".: expected 1 items, got 2 items: [{"id":1,"x":true},{"id":2}]"#
        );
        assert_eq!(
            mismatches(&json!([{"id": 1}, {"id": 3}]), &actual)[0].to_string(),
            ".[1].id: expected 3, got 2"
        );
    }

    #[test]
    fn a_mismatch_is_told_under_its_document() {
        let found = mismatches(&json!({"id": 1}), &json!({"id": 2}));
        assert_eq!(found[0].under("body"), "body.id: expected 1, got 2");
        let found = mismatches(&json!(1), &json!(2));
        assert_eq!(found[0].under("output"), "output: expected 1, got 2");
    }

    #[test]
    fn numbers_compare_by_value_and_odd_keys_are_quoted() {
        assert!(mismatches(&json!(1), &json!(1.0)).is_empty());
        assert_eq!(
            mismatches(&json!({"a-b": null}), &json!({"a-b": 0}))[0].to_string(),
            r#"."a-b": expected null, got 0"#
        );
        assert_eq!(
            mismatches(&json!("1"), &json!(1))[0].to_string(),
            r#".: expected "1", got 1"#
        );
    }
}
