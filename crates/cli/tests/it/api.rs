//! The management API end to end, on the real binary: tokens and scopes on
//! every endpoint, pagination across pages, errors, cancel and replay,
//! secrets, reload, the open-API rule, `patchbay token new`, and the
//! committed OpenAPI document.

use std::path::{Path, PathBuf};
use std::time::Duration;

use patchbay_testkit::{MockUpstream, Reply};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Patchbay, TestProject, eventually, get_text, patchbay, patchbay_run};

const READ: &str = "read-token-0123456789abcdef";
const OPERATE: &str = "operate-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef";
/// A run id no run has.
const MISSING_RUN: &str = "01a2188b-bdbe-7459-a48a-df0958e9210e";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A project with a reader, an operator and an admin token (the admin's
/// given as `${env:...}`), three flows and one connector.
fn root() -> String {
    format!(
        "\
api:
  tokens:
    - {{ name: reader, sha256: {read}, scopes: [read] }}
    - {{ name: operator, sha256: {operate}, scopes: [read, operate] }}
    - {{ name: admin, token: \"${{env:PB_ADMIN_TOKEN}}\", scopes: [admin] }}
engine:
  poll_interval: 50ms
  run_retries: []
connectors:
  upstream:
    url: \"${{env:UP_URL}}\"
    dangerous_allow_private: true
    retry: {{ attempts: 1 }}
    circuit_breaker: off
",
        read = sha256_hex(READ),
        operate = sha256_hex(OPERATE),
    )
}

const HELLO: &str = "\
trigger: { manual: {} }
steps:
  - id: greet
    transform: '{greeting: \"hi \\(.name)\"}'
";

/// Calls the upstream (which the tests make fail, hang or succeed), then
/// calls it again.
const CHARGE: &str = "\
trigger: { webhook: { path: /hooks/charge } }
steps:
  - id: charge
    call: upstream POST /charges
    body: '{amount}'
    on_error: fail
  - id: notify
    call: upstream POST /notify
    body: '{done: true}'
    on_error:
      fallback:
        - id: log
          transform: '{logged: true}'
";

const NIGHTLY: &str = "\
trigger: { schedule: \"0 3 * * *\" }
steps:
  - filter: 'false'
";

/// A running `patchbay run`, killed if the test ends early.
struct Node {
    process: Option<Patchbay>,
    base: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// An answer: status, headers and the JSON body (`Null` when empty).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Node {
    fn start(project: &TestProject, upstream: &str, extra: &[&str]) -> Node {
        let log = project.path().join("patchbay.log");
        let mut command = patchbay_run(
            project.path(),
            &[
                ("PB_ADMIN_TOKEN", ADMIN.to_string()),
                ("UP_URL", upstream.to_string()),
            ],
        );
        command.args(extra);
        let process = Patchbay::spawn(command, &log);
        Node {
            base: process.base.clone(),
            process: Some(process),
            log,
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(path, request).await
    }

    /// Sends `body` as it is, with no content type of its own.
    async fn send_text(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &'static str,
    ) -> Answer {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body);
        Self::answer(path, request).await
    }

    /// Sends `body` as it is, labelled `Content-Type: application/json`.
    async fn send_as_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &'static str,
    ) -> Answer {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        Self::answer(path, request).await
    }

    async fn answer(path: &str, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Every item of a list, page by page with `limit`, checking that each
    /// page but the last is full and that the last says so.
    async fn all_pages(&self, path: &str, limit: usize) -> (Vec<Value>, usize) {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
                None => format!("{path}{separator}limit={limit}"),
            };
            let answer = self.get(&url, READ).await;
            assert_eq!(answer.status, 200, "{url}: {}", answer.body);
            let page = answer.body["items"].as_array().expect("items").clone();
            pages += 1;
            cursor = answer.body["next_cursor"].as_str().map(str::to_string);
            if cursor.is_some() {
                assert_eq!(page.len(), limit, "a page before the last is full");
            } else {
                assert!(page.len() <= limit);
            }
            items.extend(page);
            if cursor.is_none() {
                return (items, pages);
            }
            assert!(pages < 1000, "paging does not end");
        }
    }

    async fn run_status(&self, id: &str) -> String {
        let answer = self.get(&format!("/api/v1/runs/{id}"), READ).await;
        answer.body["run"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until run `id` has `status`.
    async fn wait_status(&self, id: &str, status: &str) {
        let reached = eventually(Duration::from_secs(15), || async {
            self.run_status(id).await == status
        })
        .await;
        assert!(
            reached,
            "run {id} did not become {status}; it is {}",
            self.run_status(id).await
        );
    }

    async fn start_run(&self, flow: &str, input: Value) -> String {
        let answer = self
            .post(&format!("/api/v1/flows/{flow}/runs"), OPERATE, &input)
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!(answer.body["status"], "accepted");
        answer.body["run_id"].as_str().unwrap().to_string()
    }

    /// `POST /runs/{id}/{action}` on an id no run has answers 404.
    async fn assert_no_run_to(&self, action: &str) {
        let missing = self
            .post(
                &format!("/api/v1/runs/{MISSING_RUN}/{action}"),
                OPERATE,
                &json!({}),
            )
            .await;
        assert_eq!(missing.status, 404, "{action}: {}", missing.body);
    }

    /// A webhook event for `charge`.
    async fn charge(&self, amount: u64) -> String {
        let response = self
            .client
            .post(format!("{}/hooks/charge", self.base))
            .json(&json!({ "amount": amount }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        body["run_id"].as_str().unwrap().to_string()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        if let Some(process) = self.process.take() {
            process.terminate();
        }
    }
}

fn project() -> TestProject {
    TestProject::new(
        &root(),
        &[("hello", HELLO), ("charge", CHARGE), ("nightly", NIGHTLY)],
    )
}

/// An upstream that charges and notifies successfully.
async fn upstream() -> MockUpstream {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_1" })),
    );
    mock.route("POST", "/notify", Reply::json(200, json!({ "ok": true })));
    mock
}

/// A node serving [`project`], its connector pointing at [`upstream`];
/// `extra` arguments for `patchbay run`.
async fn started(extra: &[&str]) -> (MockUpstream, TestProject, Node) {
    let up = upstream().await;
    let project = project();
    let node = Node::start(&project, &up.url(), extra);
    (up, project, node)
}

/// Every operation, with a path that exists and the scope it needs.
fn operations(run: &str) -> Vec<(Method, String, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/flows".into(), "read", None),
        (Method::GET, "/api/v1/flows/hello".into(), "read", None),
        (
            Method::POST,
            "/api/v1/flows/hello/runs".into(),
            "operate",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/runs".into(), "read", None),
        (Method::GET, format!("/api/v1/runs/{run}"), "read", None),
        (
            Method::POST,
            format!("/api/v1/runs/{run}/cancel"),
            "operate",
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/runs/{run}/replay"),
            "operate",
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/dead-letters".into(), "read", None),
        (
            Method::POST,
            "/api/v1/dead-letters/replay".into(),
            "operate",
            Some(json!({ "ids": [] })),
        ),
        (Method::GET, "/api/v1/connectors".into(), "read", None),
        (
            Method::GET,
            "/api/v1/connectors/upstream".into(),
            "read",
            None,
        ),
        (Method::GET, "/api/v1/stats".into(), "read", None),
        (Method::GET, "/api/v1/nodes".into(), "read", None),
        (Method::GET, "/api/v1/config".into(), "admin", None),
        (Method::POST, "/api/v1/config/reload".into(), "admin", None),
        (Method::GET, "/api/v1/secrets".into(), "admin", None),
        (
            Method::PUT,
            "/api/v1/secrets/SCOPE_CHECK".into(),
            "admin",
            Some(json!({ "value": "v" })),
        ),
        (
            Method::DELETE,
            "/api/v1/secrets/SCOPE_CHECK".into(),
            "admin",
            None,
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_refuses_missing_unknown_and_underscoped_tokens() {
    let (_up, project, node) = started(&[]).await;
    let run = node.start_run("hello", json!({ "name": "a" })).await;
    node.wait_status(&run, "succeeded").await;

    let tokens = [("read", READ), ("operate", OPERATE), ("admin", ADMIN)];
    let rank = |scope: &str| tokens.iter().position(|(name, _)| *name == scope).unwrap();
    for (method, path, needed, body) in operations(&run) {
        let what = format!("{method} {path}");
        let none = node.call(method.clone(), &path, None, body.as_ref()).await;
        assert_eq!(none.status, 401, "{what}: {}", none.body);
        assert_eq!(none.code(), "unauthorized", "{what}");
        assert!(
            none.header("www-authenticate").starts_with("Bearer"),
            "{what}"
        );

        let wrong = node
            .call(
                method.clone(),
                &path,
                Some("not-a-token-at-all-0000"),
                body.as_ref(),
            )
            .await;
        assert_eq!(wrong.status, 401, "{what}");
        assert!(
            wrong.header("www-authenticate").contains("invalid_token"),
            "{what}"
        );

        for (scope, token) in tokens {
            let answer = node
                .call(method.clone(), &path, Some(token), body.as_ref())
                .await;
            if rank(scope) < rank(needed) {
                assert_eq!(answer.status, 403, "{what} with {scope}: {}", answer.body);
                assert_eq!(answer.code(), "forbidden");
                assert_eq!(answer.body["error"]["details"]["required"], needed);
                assert!(
                    answer
                        .header("www-authenticate")
                        .contains("insufficient_scope")
                );
            } else {
                assert!(
                    ![401, 403].contains(&answer.status.as_u16()),
                    "{what} with {scope}: {} {}",
                    answer.status,
                    answer.body
                );
            }
        }
    }
    // Basic credentials are not a bearer token; the scheme name is
    // case-insensitive.
    let basic = node
        .client
        .get(format!("{}/api/v1/flows", node.base))
        .basic_auth("admin", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let lower = node
        .client
        .get(format!("{}/api/v1/flows", node.base))
        .header("authorization", format!("bearer {READ}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
    // Tokens never reach the log.
    node.stop();
    let log = std::fs::read_to_string(project.path().join("patchbay.log")).unwrap();
    for token in [READ, OPERATE, ADMIN] {
        assert!(!log.contains(token), "a token leaked into the log");
    }
}

#[tokio::test]
async fn flows_are_listed_shown_and_started_by_hand() {
    let (_up, _project, node) = started(&[]).await;

    let (flows, pages) = node.all_pages("/api/v1/flows", 1).await;
    assert_eq!(pages, 3);
    let names: Vec<&str> = flows.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["charge", "hello", "nightly"]);
    assert_eq!(flows[0]["trigger"]["kind"], "webhook");
    assert_eq!(flows[0]["trigger"]["path"], "/hooks/charge");
    assert_eq!(flows[1]["trigger"]["kind"], "manual");
    assert_eq!(
        flows[2]["trigger"],
        json!({ "kind": "schedule", "cron": "0 3 * * *", "timezone": "UTC" })
    );
    assert_eq!(
        flows[0]["steps"],
        json!([{ "id": "charge", "kind": "call" }, { "id": "notify", "kind": "call" }])
    );
    let version = flows[0]["config_version"].as_str().unwrap();
    assert_eq!(version.len(), 16);

    let charge = node.get("/api/v1/flows/charge", READ).await;
    assert_eq!(charge.status, 200);
    let steps = &charge.body["steps"];
    assert_eq!(steps[0]["connector"], "upstream");
    assert_eq!(steps[0]["method"], "POST");
    assert_eq!(steps[0]["path"], "/charges");
    assert_eq!(steps[0]["on_error"], "fail");
    assert_eq!(steps[1]["on_error"], "fallback");
    assert_eq!(steps[1]["fallback"][0]["id"], "log");
    assert_eq!(steps[1]["fallback"][0]["kind"], "transform");
    assert_eq!(charge.body["config_version"], version);

    let missing = node.get("/api/v1/flows/nope", READ).await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "not_found")
    );
    let missing = node
        .post("/api/v1/flows/nope/runs", OPERATE, &json!({}))
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "not_found")
    );

    let run = node.start_run("hello", json!({ "name": "Ada" })).await;
    node.wait_status(&run, "succeeded").await;
    let shown = node.get(&format!("/api/v1/runs/{run}"), READ).await;
    assert_eq!(shown.body["run"]["trigger"], "manual");
    assert_eq!(shown.body["run"]["output"], json!({ "greeting": "hi Ada" }));
    assert_eq!(shown.body["journal"][0]["step_id"], "greet");
    assert_eq!(shown.body["journal"][0]["status"], "succeeded");

    // No body means `{}`; a body that is not JSON is refused.
    let empty = node
        .call(
            Method::POST,
            "/api/v1/flows/hello/runs",
            Some(OPERATE),
            None,
        )
        .await;
    assert_eq!(empty.status, 202);
    let broken = node
        .send_as_json(Method::POST, "/api/v1/flows/hello/runs", OPERATE, "{nope")
        .await;
    assert_eq!(
        (broken.status.as_u16(), broken.code()),
        (400, "invalid_json")
    );
    let unlabelled = node
        .send_text(Method::POST, "/api/v1/flows/hello/runs", OPERATE, "{}")
        .await;
    assert_eq!(
        (unlabelled.status.as_u16(), unlabelled.code()),
        (415, "unsupported_media_type")
    );
    node.stop();
}

#[tokio::test]
async fn runs_are_listed_filtered_searched_and_paged() {
    let (up, _project, node) = started(&[]).await;
    up.route(
        "POST",
        "/charges",
        Reply::json(402, json!({ "error": "card declined" })),
    );

    let mut hello = Vec::new();
    for i in 0..7 {
        hello.push(node.start_run("hello", json!({ "name": i })).await);
    }
    let declined = node.charge(5).await;
    for id in &hello {
        node.wait_status(id, "succeeded").await;
    }
    node.wait_status(&declined, "dead").await;
    let before_last = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let last = node.start_run("hello", json!({ "name": "last" })).await;
    node.wait_status(&last, "succeeded").await;

    // Every run once, newest first, over pages of 3.
    let (runs, pages) = node.all_pages("/api/v1/runs", 3).await;
    assert_eq!((runs.len(), pages), (9, 3));
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = hello.iter().map(String::as_str).collect();
    expected.push(&declined);
    expected.push(&last);
    expected.sort_unstable();
    expected.reverse();
    assert_eq!(ids, expected);

    let (only_hello, _) = node.all_pages("/api/v1/runs?flow=hello", 4).await;
    assert_eq!(only_hello.len(), 8);
    let (dead, _) = node.all_pages("/api/v1/runs?status=dead", 50).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], declined.as_str());
    assert!(dead[0]["error"].as_str().unwrap().contains("402"));

    let since = before_last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (recent, _) = node
        .all_pages(&format!("/api/v1/runs?since={since}"), 50)
        .await;
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["id"], last.as_str());
    let (older, _) = node
        .all_pages(&format!("/api/v1/runs?until={since}"), 50)
        .await;
    assert_eq!(older.len(), 8);

    let (found, _) = node.all_pages("/api/v1/runs?q=DECLINED", 50).await;
    assert_eq!(found.len(), 1, "the error names the upstream's answer");
    let (found, _) = node.all_pages("/api/v1/runs?q=402&flow=hello", 50).await;
    assert!(found.is_empty());

    // Bad parameters are named.
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("cursor=!!!", "cursor"),
    ] {
        let answer = node.get(&format!("/api/v1/runs?{query}"), READ).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.code(), "invalid_request", "{query}");
        assert_eq!(
            answer.body["error"]["details"]["parameter"], parameter,
            "{query}"
        );
    }
    // A cursor belongs to its list.
    let flows = node.get("/api/v1/flows?limit=1", READ).await;
    let cursor = flows.body["next_cursor"].as_str().unwrap();
    let mixed = node
        .get(&format!("/api/v1/runs?cursor={cursor}"), READ)
        .await;
    assert_eq!(mixed.status, 400);
    assert_eq!(mixed.body["error"]["details"]["parameter"], "cursor");

    let not_an_id = node.get("/api/v1/runs/123", READ).await;
    assert_eq!(not_an_id.status, 400);
    assert_eq!(not_an_id.body["error"]["details"]["parameter"], "id");
    let unknown = node.get(&format!("/api/v1/runs/{MISSING_RUN}"), READ).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "not_found")
    );
    node.stop();
}

/// The node reports itself on its heartbeat and, alone on its store,
/// leads; the list says which node answered.
#[tokio::test]
async fn the_node_list_shows_this_node_alive_and_leading() {
    let (_up, _project, node) = started(&[]).await;
    let address = node.base.trim_start_matches("http://").to_string();
    // The first report may precede the server's binding: the address
    // comes with the next one, at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = node.get("/api/v1/nodes", READ).await.body;
        if shown["items"][0]["address"] == json!(address) {
            break shown;
        }
        assert!(std::time::Instant::now() < deadline, "{shown:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{shown:#}");
    let this = &items[0];
    assert!(this["id"].as_str().unwrap().starts_with("node-"), "{this}");
    assert_eq!(this["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (&this["alive"], &this["leader"], &this["this_node"]),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(this["runs_in_flight"], 0);
    assert!(
        this["config_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(shown["heartbeat_seconds"], 2);
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed() {
    let (up, _project, node) = started(&[]).await;
    up.route(
        "POST",
        "/charges",
        Reply::json(422, json!({ "error": "invalid" })),
    );

    let mut dead = Vec::new();
    for amount in 0..5 {
        dead.push(node.charge(amount).await);
    }
    for id in &dead {
        node.wait_status(id, "dead").await;
    }
    let ok = node.start_run("hello", json!({})).await;
    node.wait_status(&ok, "succeeded").await;

    let (letters, pages) = node.all_pages("/api/v1/dead-letters", 2).await;
    assert_eq!((letters.len(), pages), (5, 3));
    assert!(letters.iter().all(|r| r["status"] == "dead"));
    let (none, _) = node.all_pages("/api/v1/dead-letters?flow=hello", 2).await;
    assert!(none.is_empty());

    // The upstream is fixed: replays succeed.
    up.route(
        "POST",
        "/charges",
        Reply::json(201, json!({ "id": "ch_2" })),
    );
    let one = node
        .post(
            &format!("/api/v1/runs/{}/replay", dead[0]),
            OPERATE,
            &json!({}),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body, json!({ "run_id": dead[0], "status": "queued" }));
    node.wait_status(&dead[0], "succeeded").await;
    let again = node
        .post(
            &format!("/api/v1/runs/{}/replay", dead[0]),
            OPERATE,
            &json!({}),
        )
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "conflict"));
    assert_eq!(again.body["error"]["details"]["status"], "succeeded");

    let by_id = node
        .post(
            "/api/v1/dead-letters/replay",
            OPERATE,
            &json!({ "ids": [dead[1], ok], "from_start": true }),
        )
        .await;
    assert_eq!(
        by_id.body,
        json!({ "replayed": [dead[1]] }),
        "only dead runs replay"
    );
    node.wait_status(&dead[1], "succeeded").await;
    let journal = node.get(&format!("/api/v1/runs/{}", dead[1]), READ).await;
    assert!(
        journal.body["journal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["current"] == false),
        "a replay from the start sets the old journal aside"
    );

    let by_flow = node
        .post(
            "/api/v1/dead-letters/replay",
            OPERATE,
            &json!({ "flow": "hello" }),
        )
        .await;
    assert_eq!(by_flow.body, json!({ "replayed": [] }));
    let everything = node
        .call(
            Method::POST,
            "/api/v1/dead-letters/replay",
            Some(OPERATE),
            None,
        )
        .await;
    let mut replayed: Vec<String> =
        serde_json::from_value(everything.body["replayed"].clone()).unwrap();
    replayed.sort();
    let mut rest = dead[2..].to_vec();
    rest.sort();
    assert_eq!(replayed, rest);
    for id in &dead {
        node.wait_status(id, "succeeded").await;
    }
    assert!(
        node.get("/api/v1/dead-letters", READ).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // `ids` and `flow` together: the named runs of that flow.
    let both = node
        .post(
            "/api/v1/dead-letters/replay",
            OPERATE,
            &json!({ "ids": [dead[0]], "flow": "hello" }),
        )
        .await;
    assert_eq!(both.body, json!({ "replayed": [] }));
    let not_an_object = node
        .post("/api/v1/dead-letters/replay", OPERATE, &json!([null]))
        .await;
    assert_eq!(
        (not_an_object.status.as_u16(), not_an_object.code()),
        (400, "invalid_request")
    );
    let unknown_field = node
        .post(
            "/api/v1/dead-letters/replay",
            OPERATE,
            &json!({ "all": true }),
        )
        .await;
    assert_eq!(unknown_field.status, 400);
    // An empty `error` is in every error: refused, not taken for "any".
    let empty_error = node
        .post(
            "/api/v1/dead-letters/replay",
            OPERATE,
            &json!({ "error": "" }),
        )
        .await;
    assert_eq!(empty_error.status, 400, "{}", empty_error.body);
    node.assert_no_run_to("replay").await;
    node.stop();
}

#[tokio::test]
async fn a_running_run_is_cancelled_at_its_next_step() {
    let (up, _project, node) = started(&[]).await;

    up.hold();
    let run = node.charge(7).await;
    let in_flight = eventually(Duration::from_secs(10), || async { up.in_flight() == 1 }).await;
    assert!(in_flight, "the charge never reached the upstream");
    let cancelled = node
        .post(&format!("/api/v1/runs/{run}/cancel"), OPERATE, &json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(
        cancelled.body,
        json!({ "run_id": run, "status": "cancelled" })
    );
    up.release();

    // The worker learns at its next journal write and stops there.
    let stopped = eventually(Duration::from_secs(10), || async {
        node.log_text().contains("run no longer held by this node")
    })
    .await;
    assert!(stopped, "the executor did not stop:\n{}", node.log_text());
    assert_eq!(node.run_status(&run).await, "cancelled");
    assert!(
        up.requests_to("POST", "/notify").is_empty(),
        "a step ran after cancel"
    );
    let shown = node.get(&format!("/api/v1/runs/{run}"), READ).await;
    assert!(shown.body["journal"].as_array().unwrap().is_empty());
    assert!(shown.body["run"]["finished_at"].is_string());

    let twice = node
        .post(&format!("/api/v1/runs/{run}/cancel"), OPERATE, &json!({}))
        .await;
    assert_eq!((twice.status.as_u16(), twice.code()), (409, "conflict"));
    assert_eq!(twice.body["error"]["details"]["status"], "cancelled");
    let replay = node
        .post(&format!("/api/v1/runs/{run}/replay"), OPERATE, &json!({}))
        .await;
    assert_eq!(replay.status, 409, "a cancelled run is not a dead letter");
    let (cancelled_runs, _) = node.all_pages("/api/v1/runs?status=cancelled", 10).await;
    assert_eq!(cancelled_runs.len(), 1);
    node.assert_no_run_to("cancel").await;
    node.stop();
}

#[tokio::test]
async fn a_queued_run_is_cancelled_before_it_starts() {
    // A node that accepts runs but executes none.
    let (up, project, node) = started(&["--no-workers"]).await;
    let run = node.charge(9).await;
    assert_eq!(node.run_status(&run).await, "queued");
    let cancelled = node
        .post(&format!("/api/v1/runs/{run}/cancel"), OPERATE, &json!({}))
        .await;
    assert_eq!(cancelled.status, 200);
    node.stop();

    // A node with workers on the same store never takes it up.
    let node = Node::start(&project, &up.url(), &[]);
    let other = node.start_run("hello", json!({})).await;
    node.wait_status(&other, "succeeded").await;
    assert_eq!(node.run_status(&run).await, "cancelled");
    assert_eq!(up.request_count(), 0);
    node.stop();
}

#[tokio::test]
async fn connectors_report_their_health() {
    let (_up, _project, node) = started(&[]).await;
    let run = node.charge(1).await;
    node.wait_status(&run, "succeeded").await;

    let upstream = node.get("/api/v1/connectors/upstream", READ).await;
    assert_eq!(upstream.status, 200, "{}", upstream.body);
    assert_eq!(upstream.body["name"], "upstream");
    assert_eq!(upstream.body["breaker"]["state"], "disabled");
    assert_eq!(upstream.body["recent"]["calls"], 2);
    assert_eq!(upstream.body["recent"]["errors"], 0);
    assert!(upstream.body["last_error"].is_null());
    let unknown = node.get("/api/v1/connectors/nope", READ).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "not_found")
    );

    let listed = node.get("/api/v1/connectors", READ).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["upstream"]);
    assert_eq!(listed.body["items"][0]["recent"]["calls"], 2);
    let config = node.get("/api/v1/config", ADMIN).await;
    assert_eq!(config.body["connectors"], json!(["upstream"]));
    node.stop();
}

#[tokio::test]
async fn config_is_shown_and_reloaded_and_secrets_never_read_back() {
    let (_up, project, node) = started(&[]).await;

    let config = node.get("/api/v1/config", ADMIN).await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.body["flows"], json!(["charge", "hello", "nightly"]));
    let version = config.body["version"].as_str().unwrap().to_string();
    assert!(config.body["loaded_at"].is_string());

    let unchanged = node.post("/api/v1/config/reload", ADMIN, &json!({})).await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.body);
    assert_eq!(unchanged.body["changed"], false);
    assert_eq!(unchanged.body["version"], version.as_str());

    std::fs::write(
        project.path().join("flows").join("extra.yaml"),
        "trigger: { manual: {} }\nsteps:\n  - transform: '.'\n",
    )
    .unwrap();
    let changed = node.post("/api/v1/config/reload", ADMIN, &json!({})).await;
    assert_eq!(changed.body["changed"], true, "{}", changed.body);
    assert_eq!(changed.body["previous"], version.as_str());
    assert!(
        node.get("/api/v1/flows/extra", READ)
            .await
            .status
            .is_success()
    );

    std::fs::write(
        project.path().join("flows").join("broken.yaml"),
        "trigger: { manual: {} }\nsteps:\n  - transform: '.[['\n",
    )
    .unwrap();
    let refused = node.post("/api/v1/config/reload", ADMIN, &json!({})).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "invalid_config")
    );
    let problems = refused.body["error"]["details"]["problems"]
        .as_array()
        .unwrap();
    assert!(
        problems[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.yaml"),
        "{problems:?}"
    );
    assert_eq!(problems[0]["line"], 3);
    std::fs::remove_file(project.path().join("flows").join("broken.yaml")).unwrap();

    // Secrets: written, listed by name, never read back.
    for (name, value) in [
        ("B_KEY", "s3cr3t-b"),
        ("A_KEY", "s3cr3t-a"),
        ("C_KEY", "s3cr3t-c"),
    ] {
        let put = node
            .call(
                Method::PUT,
                &format!("/api/v1/secrets/{name}"),
                Some(ADMIN),
                Some(&json!({ "value": value })),
            )
            .await;
        assert_eq!(put.status, 204, "{}", put.body);
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/secrets?limit=2&cursor={c}"),
            None => "/api/v1/secrets?limit=2".to_string(),
        };
        let page = node.get(&path, ADMIN).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            !page.body.to_string().contains("s3cr3t"),
            "a value came back"
        );
        for item in page.body["items"].as_array().unwrap() {
            assert!(item["updated_at"].is_string());
            names.push(item["name"].as_str().unwrap().to_string());
        }
        cursor = page.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(names, ["A_KEY", "B_KEY", "C_KEY"]);
    let deleted = node
        .call(Method::DELETE, "/api/v1/secrets/B_KEY", Some(ADMIN), None)
        .await;
    assert_eq!(deleted.status, 204);
    let again = node
        .call(Method::DELETE, "/api/v1/secrets/B_KEY", Some(ADMIN), None)
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (404, "not_found"));
    let bad_name = node
        .call(
            Method::PUT,
            "/api/v1/secrets/not-valid",
            Some(ADMIN),
            Some(&json!({ "value": "x" })),
        )
        .await;
    assert_eq!(bad_name.status, 400);
    assert_eq!(bad_name.body["error"]["details"]["parameter"], "name");
    let no_value = node
        .call(
            Method::PUT,
            "/api/v1/secrets/X",
            Some(ADMIN),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        (no_value.status.as_u16(), no_value.code()),
        (400, "invalid_request")
    );
    let text = node
        .send_text(Method::PUT, "/api/v1/secrets/X", ADMIN, "x")
        .await;
    assert_eq!(
        (text.status.as_u16(), text.code()),
        (415, "unsupported_media_type")
    );
    node.stop();
    let log = std::fs::read_to_string(project.path().join("patchbay.log")).unwrap();
    assert!(!log.contains("s3cr3t"), "a secret leaked into the log");
}

#[tokio::test]
async fn errors_are_json_and_the_reference_is_served() {
    let (_up, _project, node) = started(&[]).await;

    for path in ["/api/v1/nope", "/api/v2/runs", "/api", "/api/v1/runs/x/y/z"] {
        let answer = node.get(path, READ).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (404, "not_found"),
            "{path}"
        );
    }
    let wrong = node
        .call(Method::DELETE, "/api/v1/runs", Some(READ), None)
        .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.code()),
        (405, "method_not_allowed")
    );
    assert_eq!(wrong.header("allow"), "GET, HEAD");
    let wrong = node
        .call(Method::GET, "/api/v1/flows/hello/runs", None, None)
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), "POST");
    let wrong = node
        .call(Method::POST, "/api/openapi.json", None, None)
        .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.code()),
        (405, "method_not_allowed")
    );
    assert!(wrong.header("allow").contains("GET"));

    // The document and the page need no token.
    let document = node
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(document.status, 200);
    assert_eq!(document.body["openapi"], "3.1.0");
    let page = node
        .client
        .get(format!("{}/api/docs", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    for path in document.body["paths"].as_object().unwrap().keys() {
        assert!(html.contains(path.as_str()), "{path} missing from the page");
    }
    assert!(!html.contains("<script"), "the page needs no script");
    // Webhooks take no token.
    let run = node.charge(3).await;
    node.wait_status(&run, "succeeded").await;
    node.stop();
}

#[tokio::test]
async fn an_api_without_tokens_is_open_on_loopback_only() {
    let up = upstream().await;
    let open = TestProject::new("engine: { poll_interval: 50ms }\n", &[("hello", HELLO)]);
    let dir = open.path().to_str().unwrap();

    let refused = patchbay(&["run", "--listen", "0.0.0.0:0", dir]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no tokens") && stderr.contains("0.0.0.0:0") && stderr.contains("loopback"),
        "{stderr}"
    );

    std::fs::write(
        open.path().join("patchbay.yaml"),
        "server: { listen: \"0.0.0.0:8080\" }\n",
    )
    .unwrap();
    let check = patchbay(&["check", dir]);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("patchbay.yaml") && stderr.contains("no tokens"),
        "{stderr}"
    );
    std::fs::write(
        open.path().join("patchbay.yaml"),
        "server: { listen: \"0.0.0.0:8080\" }\napi: { dangerous_allow_anonymous: true }\n",
    )
    .unwrap();
    assert!(patchbay(&["check", dir]).status.success());

    // On loopback, open to every caller.
    std::fs::write(
        open.path().join("patchbay.yaml"),
        "engine: { poll_interval: 50ms }\n",
    )
    .unwrap();
    let node = Node::start(&open, &up.url(), &[]);
    let flows = node.call(Method::GET, "/api/v1/flows", None, None).await;
    assert_eq!(flows.status, 200);
    let config = node.call(Method::GET, "/api/v1/config", None, None).await;
    assert_eq!(config.status, 200);
    node.stop();
}

#[tokio::test]
async fn token_new_prints_a_token_and_the_configuration_that_accepts_it() {
    let output = patchbay(&["token", "new", "--scopes", "operate,read", "--name", "ci"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let token = text.lines().next().unwrap().trim().to_string();
    assert!(token.starts_with("pbt_") && token.len() > 40, "{token}");
    assert!(
        text.contains(&format!("sha256: {}", sha256_hex(&token))),
        "{text}"
    );
    assert!(text.contains("scopes: [read, operate]"), "{text}");
    let second = patchbay(&["token", "new"]);
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains(&token),
        "tokens repeat"
    );
    let bad = patchbay(&["token", "new", "--scopes", "write"]);
    assert!(!bad.status.success());

    // The printed snippet, as the project's configuration, accepts it.
    let snippet: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    let project = TestProject::new(&snippet, &[("hello", HELLO)]);
    let up = upstream().await;
    let node = Node::start(&project, &up.url(), &[]);
    let run = node
        .call(
            Method::POST,
            "/api/v1/flows/hello/runs",
            Some(&token),
            Some(&json!({})),
        )
        .await;
    assert_eq!(run.status, 202, "{}", run.body);
    let config = node
        .call(Method::GET, "/api/v1/config", Some(&token), None)
        .await;
    assert_eq!(config.status, 403);
    node.stop();
}

/// `docs/openapi.json`, from the workspace root.
fn committed_document() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let (_up, _project, node) = started(&[]).await;
    let served = get_text(&node.client, &format!("{}/api/openapi.json", node.base)).await;
    node.stop();
    let path = committed_document();
    if std::env::var_os("PATCHBAY_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    assert!(
        parse(&committed) == parse(&served) && committed == served,
        "docs/openapi.json differs from the document the server serves. If the API change \
         is intended, regenerate it with\n\n  PATCHBAY_UPDATE_OPENAPI=1 cargo test -p patchbay \
         --test it api::the_served_openapi_document_is_the_committed_one\n\nand commit the result."
    );
}
