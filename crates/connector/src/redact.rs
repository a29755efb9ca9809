//! Redaction: keeping credentials out of logs, errors, the journal and API
//! answers.
//!
//! Two complementary rules:
//!
//! - **by name**: the values of sensitive headers (`Authorization`, cookies,
//!   API-key headers, and whatever a project adds) are replaced by `****`
//!   wherever headers are recorded: a webhook's `$headers`, a call's
//!   response headers;
//! - **by value**: every resolved credential (auth values, signing and
//!   webhook secrets, `${env:...}` header values) is masked wherever text
//!   that an upstream or a sender wrote is kept, because an upstream may
//!   echo what it was sent ("invalid key abc123").
//!
//! Structural redaction is the guarantee; masking by value is the safety
//! net. Values shorter than [`MIN_MASKED_LEN`] are not masked by value: a
//! three-letter "secret" would blank out unrelated words everywhere.

use std::collections::BTreeSet;

use serde_json::Value;

/// What replaces a redacted value.
pub const MASK: &str = "****";

/// Header names whose values are always redacted (lower case).
pub const SENSITIVE_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Header names containing one of these (lower case) are redacted too:
/// `X-Gitlab-Token`, `X-Webhook-Secret`, `X-Partner-Api-Key`, ...
pub const SENSITIVE_HEADER_PARTS: [&str; 5] = ["token", "secret", "password", "api-key", "apikey"];

/// Shortest secret value masked inside free text.
pub const MIN_MASKED_LEN: usize = 6;

/// Masks known secret values inside text and JSON. Cheap to clone; empty
/// (and free) when no secrets are configured. Its `Debug` shows how many
/// values it holds, never them.
#[derive(Clone, Default)]
pub struct Masker {
    /// Longest first, so `Bearer abc...` is masked whole before `abc...`.
    values: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("values", &self.values.len())
            .finish()
    }
}

impl Masker {
    /// A masker for `values`; short and empty ones are left out.
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: BTreeSet<String> = values
            .into_iter()
            .map(Into::into)
            .filter(|v| v.len() >= MIN_MASKED_LEN)
            .collect();
        let mut values: Vec<String> = set.into_iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Masker { values }
    }

    /// Adds the values of `other`.
    pub fn merge(&mut self, other: &Masker) {
        let merged = Masker::new(self.values.iter().chain(&other.values).cloned());
        *self = merged;
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `text` contains a secret.
    pub fn finds(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        self.mask_in_place(&mut out);
        out
    }

    /// Masks secrets in `text`; a no-op (no allocation) when none is there.
    pub fn mask_in_place(&self, text: &mut String) {
        if !self.finds(text) {
            return;
        }
        for value in &self.values {
            if text.contains(value.as_str()) {
                *text = text.replace(value.as_str(), MASK);
            }
        }
    }

    /// Masks secrets in every string (and object key) of `value`.
    pub fn mask_json(&self, value: &mut Value) {
        if self.values.is_empty() {
            return;
        }
        match value {
            Value::String(text) => self.mask_in_place(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_json(item)),
            Value::Object(map) => {
                if map.keys().any(|key| self.finds(key)) {
                    let entries = std::mem::take(map);
                    for (key, mut item) in entries {
                        self.mask_json(&mut item);
                        map.insert(self.mask(&key), item);
                    }
                } else {
                    map.values_mut().for_each(|item| self.mask_json(item));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Header names to redact: [`SENSITIVE_HEADERS`], any name containing one
/// of [`SENSITIVE_HEADER_PARTS`], and those a project or a connector adds.
/// Names compare case-insensitively.
#[derive(Clone, Debug)]
pub struct SensitiveHeaders {
    names: BTreeSet<String>,
}

impl Default for SensitiveHeaders {
    fn default() -> Self {
        SensitiveHeaders {
            names: SENSITIVE_HEADERS.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl SensitiveHeaders {
    /// Adds header names (any case).
    pub fn extend<I, S>(&mut self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.names
            .extend(names.into_iter().map(|n| n.as_ref().to_ascii_lowercase()));
    }

    pub fn contains(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.names.contains(&name)
            || SENSITIVE_HEADER_PARTS
                .iter()
                .any(|part| name.contains(part))
    }

    /// Replaces the values of the headers named in `names` (lower case).
    pub fn redact_names(headers: &mut Value, names: &[String]) {
        let Value::Object(map) = headers else {
            return;
        };
        for name in names {
            if let Some(value) = map.get_mut(name.as_str()) {
                *value = Value::String(MASK.into());
            }
        }
    }

    /// Replaces the values of sensitive headers in a JSON object of headers
    /// (the shape of `$headers` and of a response's `headers`).
    pub fn redact(&self, headers: &mut Value) {
        let Value::Object(map) = headers else {
            return;
        };
        for (name, value) in map.iter_mut() {
            if self.contains(name) {
                *value = Value::String(MASK.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_longest_values_first_and_skips_short_ones() {
        let masker = Masker::new(["tok_123456", "Bearer tok_123456", "abc"]);
        assert_eq!(
            masker.mask("sent Bearer tok_123456 and tok_123456, abc"),
            "sent **** and ****, abc"
        );
        assert!(!masker.finds("nothing here"));
        assert!(Masker::new(["short"]).is_empty());
        assert_eq!(format!("{masker:?}"), "Masker { values: 2 }");
    }

    #[test]
    fn masks_strings_and_keys_in_json() {
        let masker = Masker::new(["sk_live_secret"]);
        let mut value = json!({
            "error": "key sk_live_secret is invalid",
            "list": ["x", "sk_live_secret"],
            "sk_live_secret": 1,
            "n": 5,
        });
        masker.mask_json(&mut value);
        assert_eq!(
            value,
            json!({ "error": "key **** is invalid", "list": ["x", "****"], "****": 1, "n": 5 })
        );
    }

    #[test]
    fn redacts_sensitive_headers_by_name() {
        let mut sensitive = SensitiveHeaders::default();
        sensitive.extend(["X-Partner-Id"]);
        let mut headers = json!({
            "authorization": "Bearer x",
            "cookie": "a=b",
            "x-partner-id": "t",
            "x-gitlab-token": "g",
            "content-type": "application/json",
        });
        sensitive.redact(&mut headers);
        assert_eq!(
            headers,
            json!({
                "authorization": "****",
                "cookie": "****",
                "x-partner-id": "****",
                "x-gitlab-token": "****",
                "content-type": "application/json",
            })
        );
    }
}
