//! Shared helpers: connectors built from YAML, requests, two raw TCP
//! servers (a canned-response upstream and a connection-counting proxy), and
//! paused time for tests that talk to loopback sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use patchbay_config::{ConnectorConfig, MapEnv};
use patchbay_connector::{CallError, CallRequest, Connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Parses a connector configuration the way a project file would hold it.
pub fn config(yaml: &str) -> ConnectorConfig {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML {yaml:?}: {e}"))
}

/// Builds connector `crm` from YAML with no environment variables.
pub fn build(yaml: &str) -> Connector {
    build_with(yaml, &MapEnv::default())
}

/// Builds connector `crm` from YAML with `env`.
pub fn build_with(yaml: &str, env: &MapEnv) -> Connector {
    Connector::build("crm", &config(yaml), env)
        .unwrap_or_else(|e| panic!("connector does not build: {e}"))
}

/// An environment holding exactly `vars`.
pub fn env(vars: &[(&str, &str)]) -> MapEnv {
    MapEnv::new(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// A request with no query, headers or body.
pub fn request(method: &str, path: &str) -> CallRequest {
    CallRequest {
        method: method.into(),
        path: path.into(),
        ..CallRequest::default()
    }
}

/// Calls and insists on failure, naming what came back otherwise.
pub async fn call_err(connector: &Connector, request: &CallRequest) -> CallError {
    match connector.call(request).await {
        Ok(response) => panic!("expected an error, got {response:?}"),
        Err(error) => error,
    }
}

/// A loopback port nothing listens on: bound, read back, released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An upstream that answers every request with the same raw bytes and then
/// closes the connection, for framings the mock does not produce.
pub async fn raw_upstream(response: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = Arc::new(response);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = Arc::clone(&response);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // The client may hang up early (that is the point of some
                // tests), so write errors are expected.
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A `200` response with a chunked JSON body (no `Content-Length`).
pub fn chunked_json_response(body: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                    transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        .to_vec();
    for chunk in body.chunks(512) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A TCP proxy in front of `target` that counts the connections it accepts,
/// which the mock itself cannot observe.
pub async fn counting_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, accepted)
}

/// Makes paused time safe for a test that talks to loopback sockets; call it
/// first in a `#[tokio::test(start_paused = true)]`.
///
/// Paused, tokio moves its clock to the next timer whenever the runtime is
/// idle: no task to run, and nothing new from the I/O driver. An exchange
/// with a mock in the same runtime normally never leaves it idle (the kernel
/// has queued the bytes for the peer by the time the writer yields, and a
/// task woken by I/O holds the clock still), but were the kernel late in
/// delivering them (it may defer loopback delivery under load), the next
/// timer could be a call's 30s timeout, firing in the middle of a healthy
/// exchange. This task keeps a timer 1ms ahead at all times, so an idle turn
/// moves the clock by at most 1ms: a timeout could fire early only if an
/// exchange made no progress for (timeout / 1ms) idle turns in a row. A wait
/// with nothing in flight (backoff, `Retry-After`, an open breaker, a
/// rate-limit slot) passes in 1ms steps, in a moment of real time. The
/// runtime ends the task with the test.
pub fn step_paused_time() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}
