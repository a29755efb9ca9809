//! `bench-upstream ADDR [--delay-ms N]`: a fast loopback upstream. It reads
//! each request's body, optionally waits `N` ms (precisely: on a blocking
//! thread, for sequential scenarios), and answers
//! `200 {"ok":true}` on any method and path, with keep-alive. Prints
//! `http://BOUND_ADDR` on the first line of standard output, then serves
//! until killed.
//!
//! `GET /_count` answers `{"requests": N}`, the number of other requests
//! served so far, so a benchmark can check that each request it sent to a
//! node caused exactly one call here.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response};
use patchbay_bench::net;

#[derive(Parser)]
#[command(about = "A fast loopback upstream answering 200 {\"ok\":true}")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:0.
    addr: String,
    /// Wait this long before answering each request.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = net::bind_and_announce(&args.addr)
        .await
        .unwrap_or_else(|e| net::exit_on_error(e));
    let delay = Duration::from_millis(args.delay_ms);
    let served = Arc::new(AtomicU64::new(0));
    net::serve(listener, move |req: Request<Incoming>| {
        let served = Arc::clone(&served);
        async move {
            if req.uri().path() == "/_count" {
                let count = format!("{{\"requests\":{}}}", served.load(Ordering::Relaxed));
                return Ok::<_, Infallible>(json_response(Bytes::from(count)));
            }
            // Reading the body first keeps the connection reusable whatever the
            // request carried.
            let _ = req.into_body().collect().await;
            served.fetch_add(1, Ordering::Relaxed);
            if !delay.is_zero() {
                // tokio's timer has a 1 ms granularity and rounds up, which would
                // turn 10 ms into about 11; a thread's sleep keeps to a few tens of
                // microseconds. The delay serves sequential scenarios, so a
                // blocking thread per waiting request is affordable.
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
            }
            Ok::<_, Infallible>(json_response(Bytes::from_static(
                net::SMALL_JSON.as_bytes(),
            )))
        }
    })
    .await;
}

fn json_response(body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
