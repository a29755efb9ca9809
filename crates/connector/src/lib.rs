//! Patchbay connectors: everything between a step and an upstream API.
//!
//! A [`Connector`] is built once per configured API from its
//! [`ConnectorConfig`](patchbay_config::ConnectorConfig): base URL, default
//! headers, authentication, timeout and response-size cap, over a pooled
//! keep-alive HTTP client with rustls. A call returns either a JSON
//! [`Response`] or a [`CallError`] whose [`CallClass`] tells the executor (and
//! the retry layer) what kind of failure it was.
//!
//! [`Connector::send`] wraps calls in the connector's resilience: retries,
//! a rate limit with upstream-driven pauses, and a circuit breaker
//! ([`Connector::health`] reports on the last two).
//!
//! Each attempt is an `upstream call` span whose ids travel to the upstream
//! in `traceparent` ([`trace_context`]); notable events write their log line
//! and metrics together ([`events`]); credentials are masked in whatever
//! upstream text is kept ([`redact`]).
//!
//! Calls reach only the addresses the connector allows ([`address_filter`]:
//! no loopback, private or metadata address unless it opts in), follow only
//! the redirects it allows, without credentials across origins
//! (`redirect`), and use its TLS settings (`tls`).
//!
//! This crate knows nothing of runs, flows or storage.

#![forbid(unsafe_code)]

pub mod address_filter;
mod auth;
mod breaker;
mod call;
mod connector;
mod error;
pub mod events;
mod graphql;
mod health;
mod oauth;
mod paginate;
mod ratelimit;
mod recent;
pub mod redact;
mod redirect;
mod retry;
mod send;
mod signing;
mod tls;
mod token_store;
pub mod trace_context;

pub use address_filter::{AddressKind, AddressRefusal};
pub use auth::Auth;
pub use breaker::BreakerState;
pub use call::{CallRequest, Response, headers_to_json};
pub use connector::{Connector, Connectors};
pub use error::{
    BuildError, CallClass, CallError, FetchError, PageError, PaginateConfigError, RedirectRefusal,
};
pub use graphql::{
    Document, GraphqlError, GraphqlRequest, GraphqlResult, MAX_ERRORS_KEPT, variables,
};
pub use health::{ConnectorHealth, RateLimitHeadroom};
pub use paginate::{Collected, Link, Page, Pagination, Paginator, next_link, parse_link_header};
pub use recent::{LastError, MinuteStats, RecentSummary, UpstreamQuota, WINDOW_MINUTES};
pub use retry::RetryPolicy;
pub use send::{Delivered, Undelivered};
pub use token_store::{MemoryTokenStore, TokenStore, TokenStoreError};
