//! Integration tests of the connector over real loopback sockets: what reaches
//! the upstream, authentication, failure classification, unusable bodies,
//! connection reuse, rate limits, the circuit breaker, and outbound network
//! safety (inward addresses, redirects, TLS). Upstreams are
//! `patchbay_testkit::MockUpstream`s, plus two small raw servers in
//! [`support`] for what the mock cannot do (a chunked body, counting TCP
//! connections).

mod auth;
mod bodies;
mod breaker;
mod classify;
mod graphql;
mod in_flight;
mod network;
mod oauth;
mod paginate;
mod pool;
mod ratelimit;
mod request;
mod retry;
mod signing;
mod support;
mod tls;
