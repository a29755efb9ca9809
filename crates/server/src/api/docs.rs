//! `GET /api/docs`: the API reference for people, rendered on the server
//! from the same OpenAPI document that `/api/openapi.json` serves.
//!
//! Plain HTML with one inline stylesheet, no script and nothing fetched
//! from elsewhere: it works offline and behind a strict CSP. Every text
//! taken from the document is escaped; backticks become `<code>`.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

const STYLE: &str = "\
:root{--fg:#1d2330;--muted:#5b6473;--line:#dfe3ea;--bg:#fff;--code:#f3f5f8;--accent:#2b59c3}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#9aa3b2;--line:#2e3440;--bg:#161a21;--code:#222833;--accent:#7aa2f7}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:980px;margin:0 auto;padding:24px 20px 80px}
h1{font-size:28px;margin:0 0 4px}h2{margin-top:48px;border-bottom:1px solid var(--line);padding-bottom:6px}
h3{margin:36px 0 8px;font-size:17px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;background:var(--code);padding:1px 4px;border-radius:4px}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
.method{display:inline-block;min-width:62px;text-align:center;border-radius:4px;padding:1px 6px;margin-right:8px;color:#fff;font-size:12px;font-weight:700}
.get{background:#2f855a}.post{background:#2b6cb0}.put{background:#b7791f}.delete{background:#c53030}.patch{background:#6b46c1}
.muted{color:var(--muted)}.scope{float:right;font-size:13px}
nav>ul{columns:2;padding-left:18px}nav>ul>li{break-inside:avoid;margin-bottom:8px}nav ul ul{padding-left:16px}
td p{margin:0}td p+p{margin-top:6px}
";

/// The page for `document`, and the `Content-Security-Policy` that lets
/// exactly its stylesheet apply.
pub(crate) fn render(document: &Value) -> (String, String) {
    let mut page = Page::default();
    page.document(document);
    let hash = base64_sha256(STYLE);
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    (page.html, csp)
}

fn base64_sha256(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// Text for HTML (and XML) content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with `` `code` `` spans, paragraphs on blank lines.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        out.push_str("<p>");
        for (i, part) in escape(paragraph.trim()).split('`').enumerate() {
            if i % 2 == 1 {
                let _ = write!(out, "<code>{part}</code>");
            } else {
                out.push_str(part);
            }
        }
        out.push_str("</p>");
    }
    out
}

/// An id usable in a URL fragment.
fn anchor(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// A schema in a few words, with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{}\">{}</a>", anchor(name), escape(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = options.iter().map(type_of).collect();
            let joined = parts.join(if key == "allOf" { " and " } else { " or " });
            return if joined.is_empty() {
                "any".into()
            } else {
                joined
            };
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut words: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => format!(
                "array of {}",
                schema
                    .get("items")
                    .map(type_of)
                    .unwrap_or_else(|| "any".into())
            ),
            other => {
                let format = schema.get("format").and_then(Value::as_str);
                match format {
                    Some(format) => format!("{other} ({})", escape(format)),
                    None => escape(other),
                }
            }
        })
        .collect();
    if words.is_empty() {
        words.push("any JSON".into());
    }
    words.join(" or ")
}

#[derive(Default)]
struct Page {
    html: String,
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl Page {
    fn document(&mut self, document: &Value) {
        let info = &document["info"];
        let title = escape(info["title"].as_str().unwrap_or("API"));
        let version = escape(info["version"].as_str().unwrap_or(""));
        let _ = write!(
            self.html,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head><body><main>\
             <h1>{title}</h1><p class=\"muted\">Version {version} · OpenAPI {} · \
             <a href=\"/api/openapi.json\">openapi.json</a></p>{}",
            escape(document["openapi"].as_str().unwrap_or("")),
            prose(info["description"].as_str().unwrap_or("")),
        );
        let operations = operations(document);
        self.contents(document, &operations);
        for tag in tags(document) {
            let _ = write!(
                self.html,
                "<h2 id=\"tag-{}\">{}</h2>",
                anchor(&tag.0),
                escape(&tag.0)
            );
            if !tag.1.is_empty() {
                self.html.push_str(&prose(&tag.1));
            }
            for op in operations.iter().filter(|op| op.tag == tag.0) {
                self.operation(op);
            }
        }
        self.schemas(document);
        self.html.push_str("</main></body></html>\n");
    }

    fn contents(&mut self, document: &Value, operations: &[Operation<'_>]) {
        self.html.push_str("<nav><h2>Contents</h2><ul>");
        for (tag, _) in tags(document) {
            let _ = write!(
                self.html,
                "<li><a href=\"#tag-{}\">{}</a><ul>",
                anchor(&tag),
                escape(&tag)
            );
            for op in operations.iter().filter(|op| op.tag == tag) {
                let _ = write!(
                    self.html,
                    "<li><a href=\"#{}\"><code>{} {}</code></a></li>",
                    op.anchor(),
                    op.method.to_uppercase(),
                    escape(op.path)
                );
            }
            self.html.push_str("</ul></li>");
        }
        self.html
            .push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>");
    }

    fn operation(&mut self, op: &Operation<'_>) {
        let spec = op.spec;
        let scope = spec["security"][0][super::auth::SCHEME]
            .as_array()
            .and_then(|names| names.first())
            .and_then(Value::as_str)
            .unwrap_or("read");
        let _ = write!(
            self.html,
            "<h3 id=\"{}\"><span class=\"method {}\">{}</span>{}<span class=\"scope muted\">scope: {}</span></h3>",
            op.anchor(),
            op.method,
            op.method.to_uppercase(),
            escape(op.path),
            escape(scope)
        );
        if let Some(summary) = spec["summary"].as_str() {
            let _ = write!(self.html, "<p><strong>{}</strong></p>", escape(summary));
        }
        if let Some(description) = spec["description"].as_str() {
            self.html.push_str(&prose(description));
        }
        if let Some(parameters) = spec["parameters"].as_array().filter(|p| !p.is_empty()) {
            self.html.push_str(
                "<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>",
            );
            for parameter in parameters {
                let required = if parameter["required"].as_bool() == Some(true) {
                    " <span class=\"muted\">required</span>"
                } else {
                    ""
                };
                let _ = write!(
                    self.html,
                    "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(parameter["name"].as_str().unwrap_or("")),
                    escape(parameter["in"].as_str().unwrap_or("")),
                    type_of(&parameter["schema"]),
                    prose(parameter["description"].as_str().unwrap_or("")),
                );
            }
            self.html.push_str("</table>");
        }
        if let Some(body) = spec.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            let _ = write!(
                self.html,
                "<p><strong>Body</strong> (<code>application/json</code>{}): {}</p>{}",
                if body["required"].as_bool() == Some(true) {
                    ", required"
                } else {
                    ""
                },
                type_of(schema),
                prose(body["description"].as_str().unwrap_or("")),
            );
        }
        self.html
            .push_str("<table><tr><th>Status</th><th>Answer</th><th>Description</th></tr>");
        for (status, response) in spec["responses"].as_object().into_iter().flatten() {
            let schema = response["content"]
                .as_object()
                .and_then(|content| content.values().next())
                .map(|media| type_of(&media["schema"]))
                .unwrap_or_else(|| "—".into());
            let _ = write!(
                self.html,
                "<tr><td><code>{}</code></td><td>{schema}</td><td>{}</td></tr>",
                escape(status),
                prose(response["description"].as_str().unwrap_or("")),
            );
        }
        self.html.push_str("</table>");
    }

    fn schemas(&mut self, document: &Value) {
        self.html.push_str("<h2 id=\"schemas\">Schemas</h2>");
        for (name, schema) in document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let _ = write!(
                self.html,
                "<h3 id=\"schema-{}\">{}</h3>{}",
                anchor(name),
                escape(name),
                prose(schema["description"].as_str().unwrap_or("")),
            );
            self.schema_body(schema);
        }
    }

    fn schema_body(&mut self, schema: &Value) {
        if let Some(properties) = schema["properties"].as_object() {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            self.html
                .push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
            for (field, property) in properties {
                let marker = if required.contains(&field.as_str()) {
                    ""
                } else {
                    " <span class=\"muted\">optional</span>"
                };
                let _ = write!(
                    self.html,
                    "<tr><td><code>{}</code>{marker}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    type_of(property),
                    prose(property["description"].as_str().unwrap_or("")),
                );
            }
            self.html.push_str("</table>");
        } else if let Some(variants) = schema["oneOf"].as_array() {
            self.html.push_str("<p>One of:</p>");
            for variant in variants {
                self.html
                    .push_str(&prose(variant["description"].as_str().unwrap_or("")));
                self.schema_body(variant);
            }
        } else {
            let _ = write!(self.html, "<p>{}</p>", type_of(schema));
        }
    }
}

struct Operation<'a> {
    path: &'a str,
    method: &'static str,
    tag: String,
    spec: &'a Value,
}

impl Operation<'_> {
    fn anchor(&self) -> String {
        format!("op-{}-{}", self.method, anchor(self.path))
    }
}

/// Every operation, in path order then method order.
fn operations(document: &Value) -> Vec<Operation<'_>> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(spec) = item.get(method) {
                let tag = spec["tags"][0].as_str().unwrap_or("other").to_string();
                found.push(Operation {
                    path,
                    method,
                    tag,
                    spec,
                });
            }
        }
    }
    found
}

/// The document's tags with their descriptions, in declared order.
fn tags(document: &Value) -> Vec<(String, String)> {
    document["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| {
            Some((
                tag["name"].as_str()?.to_string(),
                tag["description"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_document_is_escaped() {
        assert_eq!(
            prose("a <b> `c&d`"),
            "<p>a &lt;b&gt; <code>c&amp;d</code></p>"
        );
        let document = serde_json::json!({
            "openapi": "3.1.0",
            "info": { "title": "<script>", "version": "1" },
            "paths": {}, "components": { "schemas": {} }
        });
        let (html, csp) = render(&document);
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(csp.contains("style-src 'sha256-") && csp.contains("default-src 'none'"));
    }
}
