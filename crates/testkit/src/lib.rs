//! Mock upstream APIs for Patchbay's integration tests, benchmarks, `patchbay demo`,
//! and the fixture servers of `patchbay test`.
//!
//! Everything here stands in for the outside world that Patchbay calls: payment
//! gateways, CRMs, ERPs and chat APIs. The mocks are real HTTP servers on
//! `127.0.0.1` with real sockets, status codes and headers, so the code under test
//! exercises its full network path rather than a stubbed client.
//!
//! - [`mock`] holds [`MockUpstream`], a scriptable server: default replies per
//!   method and path pattern, scripted reply sequences (faults first, then
//!   success), request recording, in-flight tracking and a hold/release switch
//!   for crash tests.
//! - [`demo`] builds realistic upstreams on top of it (payments with
//!   idempotency keys, a paged CRM, an ERP with basic auth, a chat API) and a
//!   webhook sender that plays the part of a shop.
//! - [`oauth`] holds [`OAuthServer`], an OAuth 2.0 token endpoint with a
//!   protected resource: short-lived bearer tokens, refresh-token rotation,
//!   revocation on demand.
//! - [`Link`] is a TCP forwarder that can be cut: a node's database going
//!   away, and coming back, while the database serves everyone else.
//! - [`pg`] gives the suites that run on either store their PostgreSQL
//!   schemas, one per test, dropped when it ends.
//!
//! This crate depends on no other Patchbay crate, so it can never hide a bug by
//! sharing code with the system it tests.

#![forbid(unsafe_code)]

pub mod demo;
mod error;
mod link;
mod listener;
pub mod mock;
pub mod oauth;
pub mod pg;
mod sync;

pub use error::TestkitError;
pub use link::Link;
pub use listener::counting_listener;
pub use mock::{MockUpstream, RecordedRequest, Reply, ReplyBody};
pub use oauth::{OAuthServer, TokenValidator};
