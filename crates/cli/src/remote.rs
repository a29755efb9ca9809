//! A client of a running node's management API, for the commands that act
//! on a live instance (`--url`, or `PATCHBAY_URL`; the bearer token from
//! `PATCHBAY_TOKEN`, so it stays out of shell history and process lists).
//!
//! Answers are printed as the API gives them (pretty JSON), so scripts can
//! pipe them to `jq`; an API error becomes the command's error, with its
//! code and message.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "PATCHBAY_TOKEN";

/// Where a node's API is, for commands that talk to one.
#[derive(Clone, Debug, clap::Args)]
pub struct RemoteArgs {
    /// Base URL of a running node, e.g. http://127.0.0.1:8080. The token
    /// is read from PATCHBAY_TOKEN.
    #[arg(long, env = "PATCHBAY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// A connection to one node's API.
pub struct Remote {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Remote {
    pub fn new(args: &RemoteArgs) -> anyhow::Result<Remote> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Remote {
            client,
            base: args.url.trim_end_matches('/').to_string(),
            token: std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => {
                let mut text = format!("{method} {path}: {status}: {code}: {message}");
                if let Some(problems) = error["details"]["problems"].as_array() {
                    for problem in problems {
                        text.push_str(&format!(
                            "\n  {}:{}: {}",
                            problem["file"].as_str().unwrap_or("?"),
                            problem["line"],
                            problem["message"].as_str().unwrap_or("")
                        ));
                    }
                }
                if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
                    text.push_str(&format!("\n(set {TOKEN_ENV} to an API token)"));
                }
                anyhow::bail!(text)
            }
            _ => anyhow::bail!("{method} {path}: {status}: {value}"),
        }
    }
}

/// Prints an API answer for people and pipes alike.
pub fn print(value: &Value) {
    if !value.is_null() {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// `text` as one URL path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string from the pairs whose value is set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}
