//! `$ref` strings: splitting them into a file part and a fragment, decoding the
//! fragment (percent-encoding first, then JSON pointer `~1`/`~0` escapes, as RFC 6901
//! section 6 orders it for URI fragments) and following it through a document.

use std::borrow::Cow;

use serde_json::Value;

/// What the part of a `$ref` before `#` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FilePart {
    /// Nothing: the ref points into the file holding it.
    Same,
    /// A relative (or absolute) file path, percent-decoded.
    Path(String),
    /// An `http://` or `https://` URL.
    Remote,
    /// Some other URI scheme (`urn:`, `file:`…), which we do not follow.
    Unsupported,
}

/// Splits `reference` at its first `#` into the file part and the fragment.
pub(crate) fn split(reference: &str) -> (&str, &str) {
    match reference.split_once('#') {
        Some((file, fragment)) => (file, fragment),
        None => (reference, ""),
    }
}

pub(crate) fn file_part(file: &str) -> FilePart {
    if file.is_empty() {
        return FilePart::Same;
    }
    let lower = file.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return FilePart::Remote;
    }
    if has_scheme(file) {
        return FilePart::Unsupported;
    }
    FilePart::Path(percent_decode(file).map_or_else(|| file.to_string(), Cow::into_owned))
}

/// `scheme:` per RFC 3986. A single letter is a Windows drive, not a scheme.
fn has_scheme(file: &str) -> bool {
    let Some((scheme, _)) = file.split_once(':') else {
        return false;
    };
    scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Follows a fragment through `root`. `None` when it leads nowhere, and also for
/// plain-name fragments (3.1 `$anchor`s), which we do not index: callers treat
/// those as unknown rather than wrong.
pub(crate) fn follow<'v>(root: &'v Value, fragment: &str) -> Option<&'v Value> {
    let decoded = percent_decode(fragment)?;
    if decoded.is_empty() {
        return Some(root);
    }
    let rest = decoded.strip_prefix('/')?;
    let mut at = root;
    for token in rest.split('/') {
        let token = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        at = match at {
            Value::Object(map) => map.get(token.as_ref())?,
            Value::Array(items) => {
                // RFC 6901: no leading zeros, no sign.
                if token.len() > 1 && token.starts_with('0') {
                    return None;
                }
                if !token.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                items.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// The JSON pointer (RFC 6901, not percent-encoded) of the node at `target`'s address
/// inside `root`, found by walking the whole document; `None` when it is not there.
pub(crate) fn locate(root: &Value, target: &Value) -> Option<String> {
    enum Token<'v> {
        Key(&'v str),
        Index(usize),
    }
    // An explicit stack rather than recursion: YAML documents may nest deeper than
    // the thread's stack allows.
    let mut path: Vec<Token<'_>> = Vec::new();
    let mut stack: Vec<(&Value, usize, Option<Token<'_>>)> = vec![(root, 0, None)];
    while let Some((node, depth, token)) = stack.pop() {
        path.truncate(depth.saturating_sub(1));
        if let Some(token) = token {
            path.push(token);
        }
        if std::ptr::eq(node, target) {
            let mut out = String::new();
            for token in &path {
                out.push('/');
                match token {
                    Token::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
                    Token::Index(index) => out.push_str(&index.to_string()),
                }
            }
            return Some(out);
        }
        match node {
            Value::Object(map) => stack.extend(
                map.iter()
                    .map(|(key, child)| (child, depth + 1, Some(Token::Key(key)))),
            ),
            Value::Array(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, child)| (child, depth + 1, Some(Token::Index(index)))),
            ),
            _ => {}
        }
    }
    None
}

/// Whether a fragment is a JSON pointer (as opposed to a 3.1 anchor name).
pub(crate) fn is_pointer(fragment: &str) -> bool {
    fragment.is_empty() || fragment.starts_with('/') || fragment.starts_with("%2F")
}

/// `%XX` decoding. `None` when an escape is malformed or the bytes are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tilde_and_percent_escapes_are_decoded_in_that_order() {
        let doc = json!({"paths": {"/contacts/{id}": {"get": 1}, "a~b": 2, "%7B": 3}});
        assert_eq!(
            follow(&doc, "/paths/~1contacts~1%7Bid%7D/get"),
            Some(&json!(1))
        );
        assert_eq!(follow(&doc, "/paths/a~0b"), Some(&json!(2)));
        // `%257B` decodes to the literal key `%7B`, not to `{`.
        assert_eq!(follow(&doc, "/paths/%257B"), Some(&json!(3)));
        assert_eq!(follow(&doc, ""), Some(&doc));
        assert_eq!(follow(&doc, "/nope"), None);
        assert_eq!(follow(&doc, "anchor"), None);
        assert_eq!(follow(&doc, "/paths/%zz"), None);
    }

    #[test]
    fn nodes_are_located_by_address() {
        let doc = json!({"paths": {"/a~b": {"get": [1, {"x": 2}]}}, "other": 3});
        let target = follow(&doc, "/paths/~1a~0b/get/1/x").unwrap();
        assert_eq!(
            locate(&doc, target).as_deref(),
            Some("/paths/~1a~0b/get/1/x")
        );
        assert_eq!(locate(&doc, &doc).as_deref(), Some(""));
        // An equal value elsewhere is not the node.
        assert_eq!(locate(&doc, &json!(3)), None);
    }

    #[test]
    fn array_indexes_follow_rfc_6901() {
        let doc = json!({"a": [10, 11]});
        assert_eq!(follow(&doc, "/a/1"), Some(&json!(11)));
        assert_eq!(follow(&doc, "/a/01"), None);
        assert_eq!(follow(&doc, "/a/-1"), None);
        assert_eq!(follow(&doc, "/a/2"), None);
    }

    #[test]
    fn file_parts_are_classified() {
        assert_eq!(file_part(""), FilePart::Same);
        assert_eq!(file_part("HTTPS://x/y.yaml"), FilePart::Remote);
        assert_eq!(file_part("urn:x:y"), FilePart::Unsupported);
        assert_eq!(
            file_part("C:/specs/a.yaml"),
            FilePart::Path("C:/specs/a.yaml".into())
        );
        assert_eq!(
            file_part("my%20schemas.yaml"),
            FilePart::Path("my schemas.yaml".into())
        );
        assert_eq!(split("a.yaml#/B"), ("a.yaml", "/B"));
        assert_eq!(split("a.yaml"), ("a.yaml", ""));
    }
}
