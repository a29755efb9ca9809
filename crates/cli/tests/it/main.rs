//! End-to-end tests of Patchbay: real HTTP over sockets, a real SQLite file,
//! the real binary where process behaviour matters, and testkit mock
//! upstreams standing in for the outside world.

mod api;
mod audit;
mod backlog;
mod bad_input;
mod branching;
mod campaign_crash;
mod campaign_fault;
mod check;
mod cli_remote;
mod cluster;
mod contracts;
mod crash;
mod dashboard;
mod dead_letters;
mod dedupe;
mod demo;
mod edge;
mod flow_tests;
mod for_each;
mod hostile_flows;
mod invoke;
mod journal_full;
mod logs_redaction;
mod metrics;
mod nats;
mod outbound;
mod paginate;
mod postgres_outage;
mod postgres_reload;
mod postgres_store;
mod postgres_wakeups;
mod response_headers;
mod retention;
mod retry;
mod schedule;
mod secrets;
mod signature;
mod spec_diff;
mod store_vanishes;
mod support;
mod tracing;
mod tutorial;
mod versions;
mod webhook;
