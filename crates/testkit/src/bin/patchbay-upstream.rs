//! A fast mock upstream for load measurements: answers `* /ok` with
//! `200 {"ok": true}` and `* /echo` with the request's JSON body. Prints its
//! URL on the first line of standard output, then serves until killed.
//!
//! Usage: `patchbay-upstream [ADDR]` (default `127.0.0.1:0`).

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: invalid address: {e}");
            std::process::exit(2);
        }
    };
    let mock = match MockUpstream::start_on(addr).await {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    // Recording every request would grow memory without bound under load.
    mock.set_recording(false);
    mock.route("*", "/ok", Reply::json(200, json!({ "ok": true })));
    mock.route_fn("*", "/echo", |req| {
        Reply::json(200, req.json.clone().unwrap_or_default())
    });
    println!("{}", mock.url());
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
