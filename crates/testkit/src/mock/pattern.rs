//! Path patterns such as `/customers/{id}`: parsing, matching and parameter capture.
//!
//! A pattern is split on `/`; a segment written exactly as `{name}` captures one
//! non-empty path segment, every other segment must match literally. Captured
//! values are percent-decoded because callers encode ids they put in paths.
//! When several patterns match one path the one with more literal segments
//! wins, so `/customers/me` can sit next to `/customers/{id}`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    raw: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses `pattern`; a missing leading `/` is added.
    pub(crate) fn parse(pattern: &str) -> Self {
        let raw = if pattern.starts_with('/') {
            pattern.to_owned()
        } else {
            format!("/{pattern}")
        };
        let segments = raw
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) if !name.is_empty() => Segment::Param(name.to_owned()),
                    _ => Segment::Literal(seg.to_owned()),
                },
            )
            .collect();
        Self { raw, segments }
    }

    /// The pattern as written (with its leading `/`).
    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    /// Number of literal segments; higher means more specific.
    pub(crate) fn specificity(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// Matches `path` (without query), returning the captured parameters.
    pub(crate) fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let mut parts = path.split('/');
        let mut params = BTreeMap::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(lit) => {
                    if lit != part {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(part));
                }
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(params)
    }
}

/// Decodes `%XX` escapes; malformed escapes and non-UTF-8 results are kept as
/// written rather than rejected, since a mock should show what it was sent.
pub(crate) fn percent_decode(input: &str) -> String {
    if !input.contains('%') {
        return input.to_owned();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| input.to_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_param_segments() {
        let p = PathPattern::parse("/customers/{id}");
        assert_eq!(p.specificity(), 2);
        let params = p.matches("/customers/c%2F1").unwrap();
        assert_eq!(params["id"], "c/1");
        assert!(p.matches("/customers").is_none());
        assert!(p.matches("/customers/").is_none());
        assert!(p.matches("/customers/1/orders").is_none());
        assert!(p.matches("/contacts/1").is_none());
    }

    #[test]
    fn leading_slash_is_added() {
        let p = PathPattern::parse("v1/charges");
        assert_eq!(p.as_str(), "/v1/charges");
        assert!(p.matches("/v1/charges").is_some());
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("%41b"), "Ab");
        assert_eq!(percent_decode("%ff"), "%ff");
    }
}
