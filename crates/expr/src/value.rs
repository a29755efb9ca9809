//! Conversion between `serde_json::Value`, the currency of the rest of Patchbay, and jaq's
//! own value type.
//!
//! The walk is written by hand in both directions rather than going through serde: reading
//! needs no intermediate allocation, and jaq-json has no serialiser for writing back.
//!
//! jaq values are a superset of JSON, so writing back is lossy in a few defined ways:
//! integers stay integers while they fit `i64`/`u64` and become the nearest float beyond
//! that; floats that are not finite (`nan`, `infinite`) become `null`, as in jq; byte
//! strings become text with invalid UTF-8 replaced; object keys that are not strings are
//! written as their JSON text. Output nested deeper than [`MAX_OUTPUT_DEPTH`] is refused
//! instead of risking the stack on a hostile or runaway program.

use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};

use crate::EvalError;
use crate::budget::Limit;

/// Deepest nesting of arrays and objects accepted in a program's output.
///
/// This is the deepest serde_json parses by default: anything deeper could be written to
/// the journal but never read back. It also keeps the recursive walk, and jaq's recursive
/// `..` over the value in a later step, well inside a thread's stack.
pub const MAX_OUTPUT_DEPTH: usize = 127;

/// Converts a JSON value into a jaq value.
///
/// Recursion here is bounded by the input: values reaching this point were parsed by
/// serde_json (128 levels at most) or produced by [`to_value`], which enforces its own limit.
pub(crate) fn to_val(value: &Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(number_to_num(n)),
        Value::String(s) => text(s),
        Value::Array(items) => items.iter().map(to_val).collect(),
        Value::Object(fields) => {
            Val::obj(fields.iter().map(|(k, v)| (text(k), to_val(v))).collect())
        }
    }
}

/// A jaq string holding a copy of `s`: one allocation for the bytes, one for jaq's box
/// (going through `String` would add a third).
fn text(s: &str) -> Val {
    Val::utf8_str(s.as_bytes().to_vec())
}

fn number_to_num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::from_integral(i)
    } else if let Some(u) = n.as_u64() {
        Num::from_integral(u)
    } else {
        // Without serde_json's arbitrary precision every remaining number is an f64.
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Converts a jaq value back into a JSON value of at most `limit` bytes (as JSON text,
/// approximately: numbers count 8 bytes).
pub(crate) fn to_value(val: &Val, limit: usize) -> Result<Value, EvalError> {
    let mut room = limit;
    to_value_at(val, 0, &mut room).map_err(|error| match error {
        Refused::TooDeep => EvalError::TooDeep {
            limit: MAX_OUTPUT_DEPTH,
        },
        Refused::TooLarge => EvalError::Exceeded(Limit::Output(limit)),
    })
}

/// Approximate size of a value as JSON text, counted as [`to_value`] counts it.
pub(crate) fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => SCALAR_SIZE,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|item| json_size(item) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// What a scalar counts against the output budget.
const SCALAR_SIZE: usize = 8;

enum Refused {
    TooDeep,
    TooLarge,
}

fn spend(room: &mut usize, bytes: usize) -> Result<(), Refused> {
    *room = room.checked_sub(bytes).ok_or(Refused::TooLarge)?;
    Ok(())
}

fn to_value_at(val: &Val, depth: usize, room: &mut usize) -> Result<Value, Refused> {
    Ok(match val {
        Val::Null => {
            spend(room, SCALAR_SIZE)?;
            Value::Null
        }
        Val::Bool(b) => {
            spend(room, SCALAR_SIZE)?;
            Value::Bool(*b)
        }
        Val::Num(n) => {
            spend(room, SCALAR_SIZE)?;
            num_to_value(n)
        }
        Val::BStr(b) | Val::TStr(b) => {
            spend(room, b.len() + 2)?;
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Val::Arr(items) => {
            let depth = deeper(depth)?;
            spend(room, 2)?;
            let mut values = Vec::with_capacity(items.len().min(*room));
            for item in items.iter() {
                spend(room, 1)?;
                values.push(to_value_at(item, depth, room)?);
            }
            Value::Array(values)
        }
        Val::Obj(fields) => {
            let depth = deeper(depth)?;
            spend(room, 2)?;
            let mut map = Map::new();
            for (k, v) in fields.iter() {
                let key = key_string(k);
                spend(room, key.len() + 4)?;
                map.insert(key, to_value_at(v, depth, room)?);
            }
            Value::Object(map)
        }
    })
}

fn deeper(depth: usize) -> Result<usize, Refused> {
    if depth >= MAX_OUTPUT_DEPTH {
        Err(Refused::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

fn key_string(key: &Val) -> String {
    match key {
        Val::BStr(b) | Val::TStr(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

fn num_to_value(n: &Num) -> Value {
    match n {
        Num::Int(i) => match i64::try_from(*i) {
            Ok(i) => Value::from(i),
            Err(_) => decimal_to_value(&i.to_string()),
        },
        Num::Float(f) => float_to_value(*f),
        // Big integers and decimal literals keep their exact digits in jaq; going through
        // the text is the one conversion both support without another dependency.
        Num::BigInt(_) | Num::Dec(_) => decimal_to_value(&n.to_string()),
    }
}

fn decimal_to_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::from(i)
    } else if let Ok(u) = text.parse::<u64>() {
        Value::from(u)
    } else {
        float_to_value(text.parse::<f64>().unwrap_or(f64::NAN))
    }
}

fn float_to_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// jq's type name of a value, used in error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) -> Value {
        to_value(&to_val(&v), usize::MAX).unwrap()
    }

    #[test]
    fn integers_stay_integers() {
        for v in [
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
        ] {
            let back = round_trip(v.clone());
            assert_eq!(back, v);
            assert!(back.is_i64() || back.is_u64(), "{back} became a float");
        }
    }

    #[test]
    fn big_integers_become_floats_without_panicking() {
        let big = Val::Num(Num::from_str_radix("123456789012345678901234567890", 10).unwrap());
        let v = to_value(&big, usize::MAX).unwrap();
        assert!(v.is_f64());
        assert!((v.as_f64().unwrap() - 1.2345678901234568e29).abs() < 1e15);
        let huge = Val::Num(Num::from_str_radix(&"9".repeat(400), 10).unwrap());
        assert_eq!(to_value(&huge, usize::MAX).unwrap(), Value::Null);
        let negative = Val::Num(Num::from_str_radix("-18446744073709551616", 10).unwrap());
        assert_eq!(
            to_value(&negative, usize::MAX).unwrap(),
            json!(-18446744073709551616.0)
        );
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(
            to_value(&Val::from(f64::NAN), usize::MAX).unwrap(),
            Value::Null
        );
        assert_eq!(
            to_value(&Val::from(f64::INFINITY), usize::MAX).unwrap(),
            Value::Null
        );
        assert_eq!(
            to_value(&Val::from(f64::NEG_INFINITY), usize::MAX).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn byte_strings_become_text_lossily() {
        let bytes = Val::byte_str(vec![b'o', b'k', 0xff]);
        assert_eq!(to_value(&bytes, usize::MAX).unwrap(), json!("ok\u{fffd}"));
    }

    #[test]
    fn non_string_keys_are_stringified() {
        let mut map = jaq_json::Map::default();
        map.insert(Val::from(1isize), Val::Bool(true));
        map.insert(Val::Null, Val::Null);
        map.insert([Val::from(2isize)].into_iter().collect::<Val>(), Val::Null);
        let v = to_value(&Val::obj(map), usize::MAX).unwrap();
        assert_eq!(v, json!({"1": true, "null": null, "[2]": null}));
    }

    #[test]
    fn over_deep_output_is_an_error() {
        let mut val = Val::Null;
        for _ in 0..MAX_OUTPUT_DEPTH {
            val = [val].into_iter().collect();
        }
        let deepest = to_value(&val, usize::MAX).unwrap();
        // The limit is exactly what serde_json reads back.
        let text = serde_json::to_string(&deepest).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        assert!(serde_json::from_str::<Value>(&format!("[{text}]")).is_err());

        val = [val].into_iter().collect();
        assert_eq!(
            to_value(&val, usize::MAX),
            Err(EvalError::TooDeep {
                limit: MAX_OUTPUT_DEPTH
            })
        );
    }
}
