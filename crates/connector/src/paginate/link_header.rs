//! The RFC 8288 `Link` header, parsed: what the `link` pagination style
//! ([`super::link`]) reads its `rel="next"` target from, and public for
//! anyone else who needs a header's links.
//!
//! A hand-written scanner over bytes rather than a grammar: the header is
//! upstream-controlled text, so the parser is lenient and total (it never
//! panics, and an element it cannot read is skipped rather than failing the
//! whole header), and it tracks quoted strings so that a `,` or `;` inside a
//! parameter value does not split a link.

/// One link of an RFC 8288 `Link` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The URI reference between `<` and `>`, as written.
    pub target: String,
    /// Parameters in order: names lowercased, values unquoted (`""` for a
    /// parameter without a value).
    pub params: Vec<(String, String)>,
}

impl Link {
    /// The first value of parameter `name` (lowercase); RFC 8288 ignores
    /// repeats of `rel`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the link has relation type `rel` (compared without case):
    /// `rel` may list several, separated by spaces.
    pub fn has_rel(&self, rel: &str) -> bool {
        self.param("rel").is_some_and(|rels| {
            rels.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(rel))
        })
    }
}

/// Parses a `Link` header value (RFC 8288 §3) into its links.
///
/// Lenient and total: never panics, and skips an element it cannot read
/// rather than failing the rest. Targets may contain `,` and `;` (they end at
/// `>`); parameter values may be tokens or quoted strings with `\` escapes;
/// whitespace may surround every separator. Repeated headers joined with
/// `, ` parse as one list.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let bytes = value.as_bytes();
    let text = |from: usize, to: usize| value.get(from..to).unwrap_or_default();
    let is_space = |b: u8| b == b' ' || b == b'\t' || b == b'\r' || b == b'\n';
    let skip_space = |mut i: usize| {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        i
    };
    let mut links = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if bytes[i] != b'<' {
            // Not a link-value: skip to the next element.
            i = skip_junk(bytes, i, b',');
            continue;
        }
        let start = i + 1;
        let Some(end) = bytes[start..].iter().position(|&b| b == b'>') else {
            break;
        };
        let end = start + end;
        let target = text(start, end).trim().to_string();
        i = end + 1;
        let mut params = Vec::new();
        loop {
            i = skip_space(i);
            if i >= bytes.len() {
                break;
            }
            match bytes[i] {
                b',' => {
                    i += 1;
                    break;
                }
                b';' => {
                    i = skip_space(i + 1);
                    let name_start = i;
                    while i < bytes.len() && is_token(bytes[i]) {
                        i += 1;
                    }
                    let name = text(name_start, i).to_ascii_lowercase();
                    i = skip_space(i);
                    let mut param_value = String::new();
                    if i < bytes.len() && bytes[i] == b'=' {
                        i = skip_space(i + 1);
                        if i < bytes.len() && bytes[i] == b'"' {
                            let (unquoted, after) = quoted(bytes, i);
                            param_value = unquoted;
                            i = after;
                        } else {
                            let value_start = i;
                            while i < bytes.len()
                                && !matches!(bytes[i], b';' | b',')
                                && !is_space(bytes[i])
                            {
                                i += 1;
                            }
                            param_value = text(value_start, i).to_string();
                        }
                    }
                    if !name.is_empty() {
                        params.push((name, param_value));
                    }
                }
                _ => i = skip_junk(bytes, i, b';'),
            }
        }
        links.push(Link { target, params });
    }
    links
}

/// The target of the first link with relation `next`.
pub fn next_link(header: &str) -> Option<String> {
    parse_link_header(header)
        .into_iter()
        .find(|link| link.has_rel("next"))
        .map(|link| link.target)
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Index of the next `,` (or `stop`) outside a quoted string, from `i`;
/// always past `i` unless at the end, so callers make progress.
fn skip_junk(bytes: &[u8], mut i: usize, stop: u8) -> usize {
    let first = i;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = quoted(bytes, i).1,
            b',' if i > first => return i,
            b if b == stop && i > first => return i,
            _ => i += 1,
        }
    }
    i
}

/// The content of the quoted string starting at `bytes[start] == '"'`, and
/// the index after it (the end of input when unterminated).
fn quoted(bytes: &[u8], start: usize) -> (String, usize) {
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => {
                out.push(bytes[i + 1]);
                i += 2;
            }
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_unescape_and_may_be_unterminated() {
        assert_eq!(quoted(br#""a\"b" x"#, 0), ("a\"b".to_string(), 6));
        assert_eq!(quoted(br#""abc"#, 0), ("abc".to_string(), 4));
        assert_eq!(quoted(br#""\"#, 0), ("\\".to_string(), 2));
    }
}
