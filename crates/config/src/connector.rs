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
