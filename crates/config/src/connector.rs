//! Connector configuration: how to reach one upstream API.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::located::Located;

/// One upstream API. Values of `url`, `headers` and `auth` may use
/// `${env:NAME}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Base URL; a step's path is appended to it (`http://host/api` +
    /// `/contacts`).
    pub url: Located<String>,
    /// What this API is, for people reading the project.
    #[serde(default)]
    pub description: Option<String>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// Authentication added to every request.
    #[serde(default)]
    pub auth: Option<Located<AuthConfig>>,
    /// Deadline of one request, from connecting to the last body byte
    /// (default `30s`).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Largest response body accepted, in bytes (default 10 MiB); a larger
    /// one is a step error.
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
    /// How failed calls are retried (default: 3 attempts, backoff 200ms to 10s).
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Header carrying the idempotency key of `POST` and `PATCH` calls, and
    /// of any call whose step sets `idempotency_key` (default
    /// `Idempotency-Key`; an empty string sends none).
    #[serde(default)]
    pub idempotency_header: Option<String>,
}

/// Retries of one call. Transient failures (connect errors, timeouts, 5xx,
/// 408, 429) are retried with exponential backoff and full jitter; a
/// `Retry-After` header is honoured, capped by `backoff.max`. `POST` and
/// `PATCH` are retried only when the call carries an idempotency key.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 disables retries). Default 3.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default)]
    pub backoff: BackoffConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            backoff: BackoffConfig::default(),
        }
    }
}

fn default_attempts() -> u32 {
    3
}

/// Exponential backoff bounds: the first wait is up to `min`, each next one
/// up to twice the previous, never more than `max`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub min: HumanDuration,
    pub max: HumanDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min: std::time::Duration::from_millis(200).into(),
            max: std::time::Duration::from_secs(10).into(),
        }
    }
}

/// Authentication of a connector.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A key sent in a header (`header: X-Api-Key`) or in the query string
    /// (`query: api_key`).
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        query: Option<String>,
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
}
