//! Integration tests for the mock upstreams, driven over real sockets with reqwest.

mod chat;
mod crm;
mod erp;
mod misbehave;
mod mock;
mod payments;
mod shop;

use std::time::Duration;

/// Generous bound for waits that normally finish in milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// A plain HTTP client for the tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Polls `condition` until it holds or `WAIT` passes.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}
