//! The HTTP edge under hostile clients, over real sockets: requests a web
//! page in the operator's browser could send (foreign `Origin`, non-JSON
//! bodies, a rebound `Host`), slow clients (trickled headers and bodies),
//! the connection and per-webhook caps, pipelining, and HTTPS with a
//! certificate renewed while the node runs.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{Patchbay, TestProject, env, patchbay_run};

/// A manual flow, so runs can be started through the API.
const HELLO: &str = "\
trigger: { manual: {} }
steps:
  - id: greet
    transform: '{greeting: \"hi\"}'
";

/// A webhook at `/hooks/in` whose run only transforms the event.
const INTAKE: &str = "\
trigger: { webhook: { path: /hooks/in } }
steps:
  - id: echo
    transform: '{got: .}'
";

/// The same at `/hooks/other`.
const OTHER: &str = "\
trigger: { webhook: { path: /hooks/other } }
steps:
  - id: echo
    transform: '{got: .}'
";

/// Sends `request` as is on a new connection and reads until the node
/// closes it (send `Connection: close`).
async fn raw(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the node answers and closes within 10 s")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of the first answer in `answer`.
fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// The JSON error code in `answer`'s body.
fn error_code(answer: &str) -> String {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A `POST` of `body` to `path` with `headers` (each ending in `\r\n`).
fn post(path: &str, host: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn run_count(base: &str) -> usize {
    let listed: Value = reqwest::get(format!("{base}/api/v1/runs?limit=500"))
        .await
        .expect("list runs")
        .json()
        .await
        .expect("JSON");
    listed["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn browser_origin_requests_are_refused_while_plain_json_calls_work() {
    let project = TestProject::new("", &[("hello", HELLO)]);
    let node = project.start(&env(&[])).await;
    let address = node.address;
    let host = address.to_string();
    let base = format!("http://{address}");
    let runs = "/api/v1/flows/hello/runs";
    let json_type = "Content-Type: application/json\r\n";

    // A page on another site: `fetch(..., {mode: "no-cors"})` sends its
    // Origin, whatever the body.
    let answer = raw(
        address,
        &post(
            runs,
            &host,
            &format!("Origin: http://evil.example\r\n{json_type}"),
            "{\"x\":1}",
        ),
    )
    .await;
    assert_eq!(
        (status(&answer), error_code(&answer).as_str()),
        (403, "origin_not_allowed"),
        "{answer}"
    );
    // The "simple" bodies a page may send without asking: text and forms.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = raw(
            address,
            &post(
                runs,
                &host,
                &format!("Content-Type: {content_type}\r\n"),
                "{\"x\":1}",
            ),
        )
        .await;
        assert_eq!(
            (status(&answer), error_code(&answer).as_str()),
            (415, "unsupported_media_type"),
            "{content_type}: {answer}"
        );
    }
    let answer = raw(address, &post(runs, &host, "", "{\"x\":1}")).await;
    assert_eq!(status(&answer), 415, "no Content-Type: {answer}");
    // DNS rebinding: the page's own name, resolved to this node. Same
    // origin as far as the browser knows, so reads would work too.
    let rebound = format!("evil.example:{}", address.port());
    let answer = raw(
        address,
        &post(
            "/api/v1/config/reload",
            &rebound,
            &format!("Origin: http://{rebound}\r\n"),
            "",
        ),
    )
    .await;
    assert_eq!(
        (status(&answer), error_code(&answer).as_str()),
        (421, "host_not_allowed"),
        "{answer}"
    );
    let answer = raw(
        address,
        &format!("GET /api/v1/runs HTTP/1.1\r\nHost: {rebound}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&answer), 421, "{answer}");
    // The dashboard refuses foreign pages too.
    let answer = raw(
        address,
        &format!("GET /ui HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    assert_eq!(run_count(&base).await, 0, "a refused request started a run");

    // The same call as a client (or the dashboard itself) makes it.
    for (host, extra) in [
        (host.clone(), String::new()),
        (host.clone(), format!("Origin: http://{host}\r\n")),
        (format!("localhost:{}", address.port()), String::new()),
    ] {
        let answer = raw(
            address,
            &post(runs, &host, &format!("{extra}{json_type}"), "{\"x\":1}"),
        )
        .await;
        assert_eq!(status(&answer), 202, "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\ncache-control: no-store\r\n"),
            "{answer}"
        );
    }
    let answer = raw(
        address,
        &format!(
            "GET /api/v1/runs HTTP/1.1\r\nHost: [::1]:{}\r\nConnection: close\r\n\r\n",
            address.port()
        ),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(run_count(&base).await, 3);
    // Webhooks are called by other servers from anywhere: not concerned.
    node.stop().await.expect("node stops");
}

#[test]
fn dangerous_allow_anonymous_is_warned_about_at_every_start() {
    let project = TestProject::new(
        "api: { dangerous_allow_anonymous: true }\n",
        &[("hello", HELLO)],
    );
    let log = project.path().join("node.log");
    for _ in 0..2 {
        // The warning comes before the address is printed.
        Patchbay::spawn(patchbay_run(project.path(), &[]), &log).kill();
    }
    let text = std::fs::read_to_string(&log).expect("log");
    let warnings = text
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("dangerous_allow_anonymous"))
        .count();
    assert_eq!(warnings, 2, "{text}");
}

/// A node whose `patchbay.yaml` says `server: SERVER`, with the webhooks
/// `/hooks/in` and `/hooks/other`.
async fn node_with(server: &str) -> (TestProject, patchbay::Node) {
    let project = TestProject::new(
        &format!("server: {server}\n"),
        &[("in", INTAKE), ("other", OTHER)],
    );
    let node = project.start(&env(&[])).await;
    (project, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_within_the_header_timeout() {
    let (_project, node) = node_with("{ header_timeout: 1s }").await;
    let address = node.address;
    let started = Instant::now();
    let mut closed = Vec::new();
    for _ in 0..100 {
        let stream = TcpStream::connect(address).await.expect("connect");
        let (mut read, mut write) = stream.into_split();
        // One header byte every 200 ms, for ever.
        tokio::spawn(async move {
            let head = b"POST /hooks/in HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in head {
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        closed.push(tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            loop {
                match read.read(&mut buffer).await {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(_) => {}
                }
            }
        }));
    }
    // Meanwhile an honest client is served at once.
    let client = reqwest::Client::new();
    let before = Instant::now();
    let answer = client
        .post(format!("http://{address}/hooks/in"))
        .json(&serde_json::json!({"n": 1}))
        .send()
        .await
        .expect("control request");
    assert_eq!(answer.status(), 202);
    assert!(
        before.elapsed() < Duration::from_millis(500),
        "control took {:?}",
        before.elapsed()
    );
    for task in closed {
        let after = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("a trickling connection was still open after 5 s")
            .expect("reader");
        assert!(
            after < Duration::from_secs(3),
            "closed only after {after:?}"
        );
    }
    node.stop().await.expect("node stops");
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_after_the_body_timeout() {
    let (_project, node) = node_with("{ body_timeout: 1s }").await;
    let mut stream = TcpStream::connect(node.address).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"POST /hooks/in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered within 5 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(
        (status(&answer), error_code(&answer).as_str()),
        (408, "body_timeout"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let (_project, node) = node_with("{ max_connections: 3, header_timeout: 30s }").await;
    let address = node.address;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(address).await.expect("connect"));
    }
    let health = format!("http://{address}/healthz");
    // Timed from before the task starts: the sleep below then bounds it from below.
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let answer = reqwest::Client::new().get(&health).send().await;
        (answer.map(|a| a.status().as_u16()), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a fourth connection was served past the cap of 3"
    );
    drop(idle.pop());
    let (answer, took) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .expect("task");
    assert_eq!(answer.expect("answered"), 200);
    assert!(took >= Duration::from_millis(700), "{took:?}");
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_path_past_its_inflight_cap_answers_503_with_retry_after() {
    let (_project, node) = node_with("{ max_inflight_per_webhook: 2 }").await;
    let address = node.address;
    // Two requests on /hooks/in whose bodies are still on their way.
    let slow_request = || async {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"POST /hooks/in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\"")
            .await
            .expect("write");
        stream
    };
    let mut slow = vec![slow_request().await, slow_request().await];
    let client = reqwest::Client::new();
    // The slow requests hold their places once their heads are read. A
    // probe may be served before a slow head is read, and take that place:
    // the slow request is then the one refused, and is sent again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        for stream in slow.iter_mut() {
            let mut buf = [0u8; 512];
            match stream.try_read(&mut buf) {
                Ok(n) if n > 0 => {
                    assert!(
                        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503"),
                        "a slow request was answered before its body ended"
                    );
                    *stream = slow_request().await;
                }
                _ => {}
            }
        }
        let answer = client
            .post(format!("http://{address}/hooks/in"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("sent");
        if answer.status() == 503 {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "a third request on the path was never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "busy");
    // Other paths are not held up.
    let other = client
        .post(format!("http://{address}/hooks/other"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 202);
    // The slow ones finish, and their places come back.
    for mut stream in slow {
        stream.write_all(b":1}").await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        assert_eq!(status(&String::from_utf8_lossy(&answer)), 202);
    }
    let again = client
        .post(format!("http://{address}/hooks/in"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 202);
    node.stop().await.expect("node stops");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_project, node) = node_with("{}").await;
    let webhook = |n: u32| {
        let body = format!("{{\"n\":{n}}}");
        format!(
            "POST /hooks/in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let request = format!(
        "{}GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n{}POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\n\r\n{{\"n\":0}}{}",
        webhook(1),
        webhook(2),
        post(
            "/hooks/in",
            "127.0.0.1",
            "Content-Type: application/json\r\n",
            "{\"n\":3}"
        ),
    );
    let answer = raw(node.address, &request).await;
    let statuses: Vec<u16> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| status(&answer[at..]))
        .collect();
    assert_eq!(statuses, [202, 200, 202, 404, 202], "{answer}");
    node.stop().await.expect("node stops");
}

/// A certificate authority and a `localhost` certificate it signed, PEM:
/// `(authority, certificate, key)`.
fn certificate() -> (String, String, String) {
    let authority_key = rcgen::KeyPair::generate().expect("key");
    let mut authority = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let authority_cert = authority.self_signed(&authority_key).expect("self-signed");
    let issuer = rcgen::Issuer::new(authority, authority_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("signed");
    (authority_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Replaces `path` at once (write aside, rename), as renewal tools do.
fn replace(path: &std::path::Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

/// Whether `GET url` succeeds for a client trusting only `authority`.
async fn trusted_by(authority: &str, url: &str) -> bool {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(authority.as_bytes()).expect("PEM")])
        .build()
        .expect("client");
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|answer| answer.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_and_a_renewed_certificate_is_picked_up_without_restart() {
    let (first_authority, cert, key) = certificate();
    let project = TestProject::new(
        "server: { tls: { cert: tls/cert.pem, key: tls/key.pem } }\n",
        &[("in", INTAKE)],
    );
    let tls = project.path().join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    std::fs::write(tls.join("cert.pem"), &cert).expect("cert");
    std::fs::write(tls.join("key.pem"), &key).expect("key");
    let node = project.start(&env(&[])).await;
    let base = format!("https://localhost:{}", node.address.port());
    assert!(trusted_by(&first_authority, &format!("{base}/healthz")).await);
    // The dashboard's origin is now https: its own calls still pass.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(first_authority.as_bytes()).expect("PEM")])
        .build()
        .expect("client");
    let answer = client
        .post(format!("{base}/hooks/in"))
        .json(&serde_json::json!({"n": 1}))
        .send()
        .await
        .expect("webhook over TLS");
    assert_eq!(answer.status(), 202);
    let answer = client
        .get(format!("{base}/api/v1/runs"))
        .header("origin", &base)
        .send()
        .await
        .expect("API over TLS");
    assert_eq!(answer.status(), 200);
    // Plain HTTP gets no answer on the TLS port.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", node.address.port()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // Renewal: new authority, new key, same files.
    let (second_authority, cert, key) = certificate();
    replace(&tls.join("key.pem"), &key);
    replace(&tls.join("cert.pem"), &cert);
    let url = format!("{base}/healthz");
    let started = Instant::now();
    let mut renewed = false;
    while started.elapsed() < Duration::from_secs(15) {
        if trusted_by(&second_authority, &url).await {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        renewed,
        "the renewed certificate was not served within 15 s"
    );
    assert!(!trusted_by(&first_authority, &url).await);
    node.stop().await.expect("node stops");
}

#[test]
fn unusable_tls_files_are_reported_by_check() {
    let (_, cert, _) = certificate();
    let (_, _, other_key) = certificate();
    let project = TestProject::new(
        "server: { tls: { cert: cert.pem, key: key.pem } }\n",
        &[("in", INTAKE)],
    );
    let dir = project.path().to_str().expect("UTF-8 path");
    let run = |args: &[&str]| {
        let output = crate::support::patchbay(args);
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    // Missing files.
    let (code, text) = run(&["check", dir]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("server.tls: cannot read") && text.contains("cert.pem"),
        "{text}"
    );
    // A key of another certificate.
    std::fs::write(project.path().join("cert.pem"), &cert).expect("cert");
    std::fs::write(project.path().join("key.pem"), &other_key).expect("key");
    let (code, text) = run(&["check", dir]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("does not belong to the certificate"),
        "{text}"
    );
    // Not PEM at all; `run` refuses what `check` reports.
    std::fs::write(project.path().join("key.pem"), "not a key").expect("key");
    let (code, text) = run(&["run", "--listen", "127.0.0.1:0", dir]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("key.pem holds no usable PEM private key"),
        "{text}"
    );
}

#[tokio::test]
async fn silent_and_idle_kept_alive_connections_are_closed_after_the_header_timeout() {
    let (_project, node) = node_with("{ header_timeout: 1s }").await;
    let started = Instant::now();
    let silent = TcpStream::connect(node.address).await.expect("connect");
    let mut kept = TcpStream::connect(node.address).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 4096];
    assert!(kept.read(&mut answer).await.expect("answer") > 0);
    for mut stream in [silent, kept] {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("closed within 5 s")
            .expect("read");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    node.stop().await.expect("node stops");
}
