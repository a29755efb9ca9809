//! The request a step hands to a connector and the response it gets back.

use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

/// One outbound request, already rendered from the step's expressions.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path appended to the connector's base URL; starts with `/`, segments
    /// already percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Sent in the connector's idempotency header; retries send the same key.
    pub idempotency_key: Option<String>,
    /// The connector's rate-limit bucket (its `rate_limit.key`, evaluated);
    /// `None` shares the connector's single bucket.
    pub rate_key: Option<String>,
    /// The circuit breaker the call goes through (its connector's
    /// `circuit_breaker.key`, evaluated); `None` for a connector with one
    /// breaker.
    pub breaker_key: Option<String>,
}

/// A successful (2xx) response with its JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    /// Response headers as a JSON object, names lowercased.
    pub headers: Value,
    /// The JSON body; `null` for 204 and for HEAD.
    pub body: Value,
}

impl Response {
    /// The step output: `{status, headers, body}`.
    pub fn into_value(self) -> Value {
        serde_json::json!({ "status": self.status, "headers": self.headers, "body": self.body })
    }
}

/// HTTP headers as a JSON object of lowercased names, the shape of a call's
/// `headers` and of a webhook's `$headers`. Repeated headers are joined as
/// HTTP allows (`a, b`), so no value is lost.
pub fn headers_to_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    Value::Object(map)
}
