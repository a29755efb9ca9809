//! Integration tests of the connector over real loopback sockets: what reaches
//! the upstream, authentication, failure classification, unusable bodies and
//! connection reuse. Upstreams are `patchbay_testkit::MockUpstream`s, plus two
//! small raw servers in [`support`] for what the mock cannot do (a chunked
//! body, counting TCP connections).

mod auth;
mod bodies;
mod classify;
mod pool;
mod request;
mod retry;
mod support;
