//! Patchbay's configuration: the YAML model of an integration project, its
//! loading, `${env:NAME}` interpolation, validation and JSON Schema.
//!
//! An integration project is a folder:
//!
//! ```text
//! patchbay.yaml        connectors, server, store, engine (and optionally flows)
//! flows/<name>.yaml    one flow per file, named after the file
//! ```
//!
//! [`Project::load`] reads every file, deserializes each on its own (so one
//! broken file does not hide the errors of the others; `patchbay.yaml` even
//! a section and a connector at a time when it does not read whole), then
//! runs the cross-field checks in [`validate`]. Every problem is a
//! [`Diagnostic`] with file, line and column; all of them come back together
//! in a [`Report`].
//!
//! This crate knows nothing of jq, HTTP or SQL: expressions are kept as
//! located strings here and compiled by the engine, which reports their errors
//! with the same locations.

#![forbid(unsafe_code)]

mod connector;
mod diagnostic;
mod duration;
mod flow;
mod interpolate;
mod located;
mod node;
mod paginate;
mod project;
mod schema;
mod secret;
mod sections;
mod settings;
mod suggest;
pub mod validate;
mod verify;

pub use connector::{
    AllowPrivate, ApiVersion, CircuitBreakerConfig, ContractMode, ContractSetting, RateLimitConfig,
    ResponseHeaders, default_max_wait,
};
pub use connector::{
    AuthConfig, BackoffConfig, ConnectorConfig, OAuth2ClientAuth, OAuth2Config, OAuth2Grant,
    RetryConfig, SignAlgorithm, SignConfig, SignEncoding, SignScheme,
};
pub use connector::{ConnectorTlsConfig, MAX_REDIRECTS, Percent, RedirectConfig};
pub use diagnostic::{Diagnostic, Report};
pub use duration::HumanDuration;
pub use flow::{FlowConfig, OnError, StepConfig, TriggerConfig};
pub use interpolate::{Env, MapEnv, ProcessEnv, WithSecrets, interpolate};
pub use located::Located;
pub use node::{Node, NodeError, NodeValue};
pub use paginate::{
    ConnectionPaging, CursorPaging, DEFAULT_MAX_PAGES, GraphqlConfig, LinkPaging, MAX_MAX_PAGES,
    OffsetPaging, PagePaging, PaginateConfig, PagingStyle,
};
pub use project::{Project, ProjectConfig, Source};
pub use schema::{flow_schema, project_schema};
pub use secret::Secret;
pub use settings::TelemetryConfig;
pub use settings::{
    ApiConfig, ApiScope, ApiTokenConfig, EngineConfig, ExpressionConfig, PostgresConfig,
    ServerConfig, StoreConfig, TlsConfig,
};
pub use suggest::closest as suggest_closest;
pub use validate::{RESERVED_PATHS, is_header_name};
pub use verify::{HmacAlgorithm, SecretList, SignatureEncoding, VerifyConfig};
