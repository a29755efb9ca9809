//! `bench-upstream ADDR [--delay-ms N]`: a fast loopback upstream. It reads
//! each request's body, optionally waits `N` ms (precisely: on a blocking
//! thread, for sequential scenarios), and answers
//! `200 {"ok":true}` on any method and path, with keep-alive. Prints
//! `http://BOUND_ADDR` on the first line of standard output, then serves
//! until killed.

#![forbid(unsafe_code)]

use std::convert::Infallible;
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
    net::serve(listener, move |req: Request<Incoming>| async move {
        // Reading the body first keeps the connection reusable whatever the
        // request carried.
        let _ = req.into_body().collect().await;
        if !delay.is_zero() {
            // tokio's timer has a 1 ms granularity and rounds up, which would
            // turn 10 ms into about 11; a thread's sleep keeps to a few tens of
            // microseconds. The delay serves sequential scenarios, so a
            // blocking thread per waiting request is affordable.
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
        }
        Ok::<_, Infallible>(ok_response())
    })
    .await;
}

fn ok_response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(net::SMALL_JSON.as_bytes())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
