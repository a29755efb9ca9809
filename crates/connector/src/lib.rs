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
//! upstream text is kept ([`redact`]). Building a connector opens no socket
//! and fetches no token, so a project's connectors can be built only to
//! check them; those put in service publish their gauges
//! ([`Connectors::publish_gauges`]).
//!
//! Calls reach only the addresses the connector allows ([`address_filter`]:
//! no loopback, private or metadata address unless it opts in), follow only
//! the redirects it allows, without credentials across origins
//! (`redirect`), and use its TLS settings (`tls`).
//!
//! ## Layout
//!
//! One concern per file, so that a reader follows one call in one place:
//!
//! - `connector.rs`: the [`Connector`] type and its build from configuration;
//!   [`Connectors`], every connector of a project.
//! - `send.rs`: the send pipeline, top to bottom in the order it runs: retry,
//!   span, circuit breaker, rate limit, timeout, request and credential,
//!   HTTP (hop by hop through redirects), response.
//! - `retry.rs`: the retry policy (attempts, backoff with full jitter,
//!   `Retry-After`, which methods may be repeated).
//! - `breaker.rs`, `ratelimit.rs`: the circuit breaker and the throttle
//!   (rate limit and upstream pauses) that `send.rs` passes every attempt
//!   through.
//! - `health.rs`: [`Connector::health`], read from the breaker, the throttle
//!   and `recent.rs` (the last hour of calls).
//! - `in_service.rs`: [`Connectors::publish_gauges`], the gauges of the
//!   connectors put in service (building one sets them too).
//! - `error.rs`: every error a call, a page or a build reports, and the
//!   classification decisions are taken on.
//! - `call.rs`: the request a step hands over and the response it gets.
//! - `auth.rs`, `oauth.rs`, `token_store.rs`, `signing.rs`: credentials,
//!   OAuth 2.0 tokens and where rotated refresh tokens are kept, request
//!   signing.
//! - `address_filter.rs`, `redirect.rs`, `tls.rs`: where calls may go.
//! - `graphql.rs`: GraphQL operations over the pipeline.
//! - `paginate/`: the [`Paginator`] and [`Pagination`] in `mod.rs`, one file
//!   per style (`cursor`, `page`, `offset`, `link`, `connection`), and the
//!   RFC 8288 `Link` header parser in `link_header.rs`.
//! - `events.rs`, `trace_context.rs`, `redact.rs`: logs and metrics, trace
//!   propagation, masking.
//!
//! This crate knows nothing of runs, flows or storage.

#![forbid(unsafe_code)]

pub mod address_filter;
mod auth;
mod breaker;
mod breakers;
mod call;
mod connector;
mod deprecation;
mod error;
pub mod events;
mod graphql;
mod health;
mod in_flight;
mod in_service;
mod oauth;
mod paginate;
mod ratelimit;
mod recent;
pub mod redact;
mod redirect;
mod retry;
mod send;
mod shared;
mod signing;
mod tls;
mod token_store;
pub mod trace_context;

pub use address_filter::{AddressKind, AddressRefusal};
pub use auth::Auth;
pub use breaker::BreakerState;
pub use breakers::{KeyedBreaker, OVERFLOW_KEY};
pub use call::{CallRequest, Response, headers_to_json};
pub use connector::{Connector, Connectors};
pub use deprecation::DeprecationNotice;
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
pub use shared::{
    BreakerWatch, SharedBreakers, SharedError, SharedRate, SharedSlot, SharedSlots, SlotTicket,
};
pub use token_store::{MemoryTokenStore, SharedAccess, TokenStore, TokenStoreError};
