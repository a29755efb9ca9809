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
//!
//! An upstream rarely echoes a credential exactly as it was configured: a
//! basic-auth password comes back as part of `user:pass` or of its base64, a
//! query-string key comes back URL-encoded, a JSON body escapes `/` and `"`.
//! So every credential is registered in each form it can take on the way
//! out (see [`forms`]): raw, base64 (standard and URL-safe, padded or not),
//! URL-encoded (`+` or `%20` for spaces), JSON-escaped, and, for a
//! `user:pass` pair, each half long enough to mask.
//!
//! Masking runs once over the whole text, before any excerpt is cut: an
//! excerpt cut first could keep the start of a secret and lose the end the
//! masker needed to recognise it. All forms are searched in one pass (an
//! Aho-Corasick automaton, longest match first).
//!
//! Credentials issued at run time (OAuth 2.0 access and refresh tokens) are
//! added to a live masker the moment they arrive ([`Masker::add_issued`]).
//! Clones of a [`Masker`] share its values, and readers load them through an
//! `ArcSwap`: no lock on the hot path; an update builds a new automaton and
//! swaps it in. Only the last [`MAX_ISSUED`] issued values are kept, so a
//! short-lived token renewed all day does not grow the masker without end.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
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

/// How many credentials issued at run time a masker keeps (newest win).
pub const MAX_ISSUED: usize = 32;

/// Every form `value` may take in text an upstream writes back, `value`
/// first. Empty when `value` is too short to mask.
pub fn forms(value: &str) -> Vec<String> {
    if value.len() < MIN_MASKED_LEN {
        return Vec::new();
    }
    let mut out = encodings(value);
    // `user:pass` (basic auth, a client id and secret): each half on its own,
    // in each of its forms.
    if let Some((user, password)) = value.split_once(':') {
        for half in [user, password] {
            if half.len() >= MIN_MASKED_LEN {
                out.extend(encodings(half));
            }
        }
    }
    out.retain(|form| form.len() >= MIN_MASKED_LEN);
    out
}

fn encodings(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let form: String = form_urlencoded::byte_serialize(bytes).collect();
    let mut out = vec![
        value.to_string(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        // `byte_serialize` encodes a literal `+` as `%2B`, so every `+` it
        // wrote stands for a space.
        form.replace('+', "%20"),
        form,
    ];
    if let Ok(json) = serde_json::to_string(value) {
        // Without the quotes: `"a\/b"` is echoed inside a longer string.
        out.push(json[1..json.len() - 1].to_string());
    }
    out
}

/// Masks known secret values inside text and JSON. Cheap to clone; clones
/// share their values, so a value added to one is masked by all. Empty (and
/// free) when no secrets are configured. Its `Debug` shows how many values
/// it holds, never them.
#[derive(Clone, Default)]
pub struct Masker {
    shared: Arc<ArcSwap<Patterns>>,
}

/// One immutable generation of a masker's values.
#[derive(Default)]
struct Patterns {
    /// Configured credentials, as given.
    fixed: BTreeSet<String>,
    /// Credentials issued at run time, as given, oldest first.
    issued: VecDeque<String>,
    /// Every form of every value, longest match first; `None` when empty.
    searcher: Option<AhoCorasick>,
    /// How many forms `searcher` holds.
    forms: usize,
    /// The longest form, in bytes.
    longest: usize,
    /// One [`MASK`] per form, as `replace_all` takes them.
    replacements: Vec<&'static str>,
}

impl Patterns {
    fn build(fixed: BTreeSet<String>, issued: VecDeque<String>) -> Patterns {
        let all: BTreeSet<String> = fixed
            .iter()
            .chain(issued.iter())
            .flat_map(|value| forms(value))
            .collect();
        let longest = all.iter().map(String::len).max().unwrap_or(0);
        let searcher = if all.is_empty() {
            None
        } else {
            // Cannot fail for a few thousand short patterns; should it, the
            // masker would mask nothing, so refuse loudly instead.
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&all)
                    .expect("the masker's patterns fit an Aho-Corasick automaton"),
            )
        };
        Patterns {
            fixed,
            issued,
            searcher,
            forms: all.len(),
            longest,
            replacements: vec![MASK; all.len()],
        }
    }

    fn finds(&self, text: &str) -> bool {
        self.searcher.as_ref().is_some_and(|s| s.is_match(text))
    }

    fn mask_in_place(&self, text: &mut String) {
        if let Some(searcher) = &self.searcher
            && searcher.is_match(text.as_str())
        {
            *text = searcher.replace_all(text, &self.replacements);
        }
    }

    fn mask_json(&self, value: &mut Value) {
        match value {
            Value::String(text) => self.mask_in_place(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_json(item)),
            Value::Object(map) => {
                if map.keys().any(|key| self.finds(key)) {
                    let entries = std::mem::take(map);
                    for (mut key, mut item) in entries {
                        self.mask_json(&mut item);
                        self.mask_in_place(&mut key);
                        map.insert(key, item);
                    }
                } else {
                    map.values_mut().for_each(|item| self.mask_json(item));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("values", &self.shared.load().forms)
            .finish()
    }
}

impl Masker {
    /// A masker of its own for `values` (and their forms); short and empty
    /// ones are left out.
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fixed = values.into_iter().map(Into::into).collect();
        Masker {
            shared: Arc::new(ArcSwap::from_pointee(Patterns::build(
                fixed,
                VecDeque::new(),
            ))),
        }
    }

    /// Adds configured credentials to this masker and every clone of it.
    pub fn add<I, S>(&self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        if values.is_empty() {
            return;
        }
        self.shared.rcu(|current| {
            let mut fixed = current.fixed.clone();
            fixed.extend(values.iter().cloned());
            Patterns::build(fixed, current.issued.clone())
        });
    }

    /// Adds credentials issued at run time (OAuth 2.0 tokens) to this
    /// masker and every clone of it; the oldest beyond [`MAX_ISSUED`] are
    /// dropped.
    pub fn add_issued<I, S>(&self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<String> = values
            .into_iter()
            .map(Into::into)
            .filter(|v| v.len() >= MIN_MASKED_LEN)
            .collect();
        if values.is_empty() {
            return;
        }
        self.shared.rcu(|current| {
            let mut issued = current.issued.clone();
            for value in &values {
                if !issued.contains(value) && !current.fixed.contains(value) {
                    issued.push_back(value.clone());
                }
            }
            while issued.len() > MAX_ISSUED {
                issued.pop_front();
            }
            Patterns::build(current.fixed.clone(), issued)
        });
    }

    /// Replaces this masker by one of its own holding its values and those
    /// of `other`.
    pub fn merge(&mut self, other: &Masker) {
        let mine = self.shared.load();
        let theirs = other.shared.load();
        let fixed = mine.fixed.union(&theirs.fixed).cloned().collect();
        let mut issued = mine.issued.clone();
        issued.extend(theirs.issued.iter().cloned());
        *self = Masker {
            shared: Arc::new(ArcSwap::from_pointee(Patterns::build(fixed, issued))),
        };
    }

    pub fn is_empty(&self) -> bool {
        self.shared.load().searcher.is_none()
    }

    /// The length in bytes of the longest form masked: how far past an
    /// excerpt's end a secret that starts inside it can reach.
    pub fn longest(&self) -> usize {
        self.shared.load().longest
    }

    /// Whether `text` contains a secret.
    pub fn finds(&self, text: &str) -> bool {
        self.shared.load().finds(text)
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        self.mask_in_place(&mut out);
        out
    }

    /// Masks secrets in `text`; a no-op (no allocation) when none is there.
    pub fn mask_in_place(&self, text: &mut String) {
        self.shared.load().mask_in_place(text);
    }

    /// Masks secrets in every string (and object key) of `value`.
    pub fn mask_json(&self, value: &mut Value) {
        let patterns = self.shared.load();
        if patterns.searcher.is_some() {
            patterns.mask_json(value);
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

    /// Replaces the values of query parameters named as sensitive headers
    /// are, `_` read as `-` (`api_key` as `api-key`, `access_token`).
    pub fn redact_parameters(&self, parameters: &mut Value) {
        let Value::Object(map) = parameters else {
            return;
        };
        for (name, value) in map.iter_mut() {
            if self.contains(&name.replace('_', "-")) {
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
        assert!(format!("{masker:?}").starts_with("Masker { values: "));
    }

    #[test]
    fn masks_every_form_of_a_credential() {
        let pair = "patchbay-user:pa ss/w+rd\\\"1";
        let masker = Masker::new([pair]);
        let b64 = STANDARD.encode(pair);
        let url_b64 = URL_SAFE_NO_PAD.encode("pa ss/w+rd\\\"1");
        let echoes = [
            format!("bad credentials {pair}!"),
            format!("Basic {b64}"),
            "user=patchbay-user&password=pa+ss%2Fw%2Brd%5C%221".to_string(),
            "password=pa%20ss%2Fw%2Brd%5C%221".to_string(),
            r#"{"password":"pa ss/w+rd\\\"1"}"#.to_string(),
            format!("token {url_b64}"),
            "wrong password: pa ss/w+rd\\\"1".to_string(),
            "unknown user patchbay-user".to_string(),
        ];
        for echo in echoes {
            let masked = masker.mask(&echo);
            assert!(masked.contains(MASK), "{echo} -> {masked}");
            assert!(!masked.contains("ss/w"), "{echo} -> {masked}");
            assert!(!masked.contains("patchbay-user"), "{echo} -> {masked}");
        }
        // A half shorter than the minimum is not masked on its own.
        assert_eq!(Masker::new(["abc:defghijk"]).mask("abc"), "abc");
    }

    #[test]
    fn issued_values_reach_every_clone_and_stay_bounded() {
        let masker = Masker::new(["configured-secret"]);
        let clone = masker.clone();
        masker.add_issued(["issued-token-0"]);
        assert_eq!(clone.mask("got issued-token-0"), "got ****");
        for n in 1..=MAX_ISSUED {
            masker.add_issued([format!("issued-token-{n}")]);
        }
        assert_eq!(clone.mask("got issued-token-0"), "got issued-token-0");
        assert_eq!(clone.mask("configured-secret issued-token-1"), "**** ****");
        let mut merged = Masker::default();
        merged.merge(&clone);
        masker.add(["added-later"]);
        assert_eq!(clone.mask("added-later"), MASK);
        assert_eq!(merged.mask("added-later"), "added-later");
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
