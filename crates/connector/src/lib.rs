//! Patchbay connectors: everything between a step and an upstream API.
//!
//! A [`Connector`] is built once per configured API from its
//! [`ConnectorConfig`](patchbay_config::ConnectorConfig): base URL, default
//! headers, authentication, timeout and response-size cap, over a pooled
//! keep-alive HTTP client with rustls. A call returns either a JSON
//! [`Response`] or a [`CallError`] whose [`CallClass`] tells the executor (and
//! the retry layer) what kind of failure it was.
//!
//! This crate knows nothing of runs, flows or storage.

mod auth;
mod call;
mod connector;
mod error;
mod retry;

pub use auth::Auth;
pub use call::{CallRequest, Response};
pub use connector::{Connector, Connectors};
pub use error::{BuildError, CallClass, CallError};
pub use retry::{Delivered, RetryPolicy, Undelivered};
