//! `bench-baseline-proxy ADDR UPSTREAM`: the end-to-end baseline. A bare
//! hyper reverse proxy that forwards every request (method, path, headers,
//! body) to `UPSTREAM` over a pooled keep-alive client and returns its
//! answer. Prints `http://BOUND_ADDR` on the first line of standard output.

#![forbid(unsafe_code)]

use std::convert::Infallible;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use patchbay_bench::BenchError;
use patchbay_bench::client::Target;
use patchbay_bench::net;

#[derive(Parser)]
#[command(about = "End-to-end baseline: a bare reverse proxy to UPSTREAM")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:0.
    addr: String,
    /// The upstream's base URL, e.g. http://127.0.0.1:9000.
    upstream: String,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let upstream = Target::parse(&args.upstream).unwrap_or_else(|e| net::exit_on_error(e));
    let Ok(host) = HeaderValue::from_str(&upstream.authority) else {
        net::exit_on_error(BenchError::Invalid {
            what: "upstream",
            value: args.upstream,
            reason: "not a valid host".into(),
        })
    };
    let listener = net::bind_and_announce(&args.addr)
        .await
        .unwrap_or_else(|e| net::exit_on_error(e));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let authority = upstream.authority;
    net::serve(listener, move |req: Request<Incoming>| {
        let client = client.clone();
        let authority = authority.clone();
        let host = host.clone();
        async move { Ok::<_, Infallible>(forward(&client, &authority, host, req).await) }
    })
    .await;
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    authority: &str,
    host: HeaderValue,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(uri) = format!("http://{authority}{path}").parse::<Uri>() else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    parts.uri = uri;
    parts.headers.insert(HOST, host);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => status_only(StatusCode::BAD_GATEWAY),
    }
}

fn status_only(status: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}
