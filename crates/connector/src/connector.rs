//! [`Connector`]: one configured upstream API and the call pipeline to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use patchbay_config::{ConnectorConfig, Env, Located, interpolate};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::call::{CallRequest, Response};
use crate::error::{BuildError, CallError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// How much of an error body is kept for the journal and messages.
const ERROR_EXCERPT_CHARS: usize = 300;

/// One upstream API, ready to call. Cheap to share behind an `Arc`; the HTTP
/// client inside pools and reuses connections (keep-alive).
#[derive(Debug)]
pub struct Connector {
    name: String,
    base_url: String,
    client: reqwest::Client,
    headers: HeaderMap,
    auth: Auth,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Connector {
    /// Builds a connector, resolving `${env:...}` in its URL, headers and auth.
    pub fn build(
        name: &str,
        config: &ConnectorConfig,
        env: &dyn Env,
    ) -> Result<Connector, BuildError> {
        let config_error = |reason: String| BuildError::Config {
            connector: name.to_string(),
            reason,
        };
        let base_url =
            interpolate(&config.url, env).map_err(|e| config_error(format!("url: {e}")))?;
        reqwest::Url::parse(&base_url)
            .map_err(|e| config_error(format!("url `{base_url}`: {e}")))?;
        let mut headers = HeaderMap::new();
        for (key, value) in &config.headers {
            let value = interpolate(value, env)
                .map_err(|e| config_error(format!("header `{key}`: {e}")))?;
            let header_name = HeaderName::try_from(key.as_str())
                .map_err(|_| config_error(format!("`{key}` is not a valid header name")))?;
            let header_value = HeaderValue::try_from(value)
                .map_err(|_| config_error(format!("header `{key}` has an invalid value")))?;
            headers.insert(header_name, header_value);
        }
        let auth = Auth::build(name, config.auth.as_ref().map(|a| &a.value), env)?;
        let timeout = config.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let client = reqwest::Client::builder()
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(Connector {
            name: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
            headers,
            auth,
            timeout,
            max_response_bytes: config
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the journal records of a request: method, URL and query, without
    /// credentials (query-string keys are added after this summary is made).
    pub fn summarize(&self, request: &CallRequest) -> Value {
        let mut summary = Map::new();
        summary.insert("connector".into(), self.name.clone().into());
        summary.insert("method".into(), request.method.clone().into());
        summary.insert(
            "url".into(),
            format!("{}{}", self.base_url, request.path).into(),
        );
        if !request.query.is_empty() {
            let query: Map<String, Value> = request
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            summary.insert("query".into(), Value::Object(query));
        }
        Value::Object(summary)
    }

    /// Sends one request and reads its JSON response.
    pub async fn call(&self, request: &CallRequest) -> Result<Response, CallError> {
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                after: started.elapsed(),
            }),
        }
    }

    async fn exchange(&self, request: &CallRequest) -> Result<Response, CallError> {
        let invalid = |reason: String| CallError::InvalidRequest {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason,
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("`{}` is not an HTTP method", request.method)))?;
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base_url, request.path))
            .map_err(|e| invalid(format!("bad URL: {e}")))?;
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &request.query {
                pairs.append_pair(key, value);
            }
        }
        self.auth.apply_to_url(&mut url);
        let mut builder = self
            .client
            .request(method.clone(), url)
            .headers(self.headers.clone());
        for (key, value) in &request.headers {
            let name = HeaderName::try_from(key.as_str())
                .map_err(|_| invalid(format!("`{key}` is not a valid header name")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| invalid(format!("header `{key}` has an invalid value")))?;
            builder = builder.header(name, value);
        }
        builder = self
            .auth
            .apply_to_headers(builder)
            .map_err(|_| invalid("the credential cannot be sent in a header".into()))?;
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(request, e))?;
        self.read_response(response, request, method).await
    }

    async fn read_response(
        &self,
        response: reqwest::Response,
        request: &CallRequest,
        method: reqwest::Method,
    ) -> Result<Response, CallError> {
        let status = response.status().as_u16();
        let headers = headers_to_json(response.headers());
        let bytes = self.read_body(response, request, status).await?;

        if !(200..300).contains(&status) {
            return Err(CallError::Status {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                status,
                body: excerpt(&bytes),
            });
        }
        let unusable = |reason: String| CallError::InvalidResponse {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            reason,
        };
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            if status == 204 || method == reqwest::Method::HEAD {
                Value::Null
            } else {
                return Err(unusable("the body is empty (expected JSON)".into()));
            }
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                let content_type = headers
                    .get("content-type")
                    .and_then(Value::as_str)
                    .unwrap_or("none");
                unusable(format!(
                    "the body is not JSON ({e}; content-type {content_type}): {}",
                    excerpt(&bytes)
                ))
            })?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        request: &CallRequest,
        status: u16,
    ) -> Result<Vec<u8>, CallError> {
        let too_large = || CallError::InvalidResponse {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            reason: format!(
                "the body is larger than the limit of {} bytes",
                self.max_response_bytes
            ),
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(request, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, request: &CallRequest, error: reqwest::Error) -> CallError {
        // `without_url`: the URL may carry a query-string credential.
        let error = error.without_url();
        if error.is_timeout() {
            return CallError::Timeout {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                after: self.timeout,
            };
        }
        CallError::Connect {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason: error_chain(&error),
        }
    }
}

/// The error and its causes in one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn headers_to_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            // Repeated headers are joined as HTTP allows (`a, b`).
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

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(ERROR_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Every connector of a project, by name.
#[derive(Clone, Debug, Default)]
pub struct Connectors {
    by_name: HashMap<String, Arc<Connector>>,
}

impl Connectors {
    pub fn build(
        configs: &BTreeMap<String, Located<ConnectorConfig>>,
        env: &dyn Env,
    ) -> Result<Connectors, BuildError> {
        let mut by_name = HashMap::new();
        for (name, config) in configs {
            by_name.insert(name.clone(), Arc::new(Connector::build(name, config, env)?));
        }
        Ok(Connectors { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Connector>> {
        self.by_name.get(name)
    }
}
