//! Shared helpers: temporary projects, nodes on ephemeral ports, polling.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use patchbay::{Node, NodeOptions};
use patchbay_config::{MapEnv, Project};
use patchbay_engine::{Plan, Roles};

/// A project folder in a temporary directory.
pub struct TestProject {
    pub dir: tempfile::TempDir,
}

impl TestProject {
    /// Writes `patchbay.yaml` and each `(name, yaml)` as `flows/NAME.yaml`.
    pub fn new(root: &str, flows: &[(&str, &str)]) -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("patchbay.yaml"), root).expect("write root");
        std::fs::create_dir_all(dir.path().join("flows")).expect("flows dir");
        for (name, text) in flows {
            std::fs::write(dir.path().join("flows").join(format!("{name}.yaml")), text)
                .expect("write flow");
        }
        TestProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self, env: &MapEnv) -> Project {
        Project::load(self.path(), env)
            .unwrap_or_else(|report| panic!("invalid test project:\n{report}"))
    }

    /// Starts a node (engine + server on 127.0.0.1:0) for this project.
    pub async fn start(&self, env: &MapEnv) -> Node {
        let project = self.load(env);
        let plan = Plan::compile(&project)
            .unwrap_or_else(|report| panic!("test project does not compile:\n{report}"));
        Node::start(
            &project,
            plan,
            env,
            NodeOptions {
                listen: Some("127.0.0.1:0".parse().expect("address")),
                roles: Roles::default(),
            },
        )
        .await
        .expect("node starts")
    }
}

pub fn env(vars: &[(&str, String)]) -> MapEnv {
    MapEnv::new(vars.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The path of the `patchbay` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_patchbay")
}

/// POSTs `body` as JSON.
pub async fn post_json(url: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// Starts a run of `flow` by hand and waits up to 30 s for it to end.
pub async fn run_manually(
    node: &Node,
    flow: &str,
    input: serde_json::Value,
) -> patchbay_store::Run {
    let outcome = node
        .engine
        .trigger(patchbay_engine::Event {
            flow: flow.into(),
            trigger: "manual",
            input,
            headers: serde_json::json!({}),
            dedupe_key: None,
        })
        .await
        .expect("run committed");
    node.engine
        .wait_for(outcome.run_id(), Duration::from_secs(30))
        .await
        .expect("store readable")
        .expect("run exists")
}

/// GETs `url` and reads its JSON body.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body")
}
