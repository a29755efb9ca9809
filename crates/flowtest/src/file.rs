//! The flow-test file format (`tests/NAME.yaml`): an event, fixtures per
//! connector, and what should come of it. Every part keeps the line it was
//! written on, so a failure points at the expectation that failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use patchbay_config::{HumanDuration, Located};
use serde::Deserialize;
use serde_json::Value;

use crate::error::FlowTestError;

/// One flow test, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// What the test shows, for reports; the file's stem names it.
    #[serde(default)]
    pub description: Option<String>,
    /// The flow it runs.
    pub flow: Located<String>,
    /// Values of the project's `${env:NAME}` and `${secret:NAME}`; any the
    /// test does not give read as `test-NAME`, never from the environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The flow's state before the run (`$state`).
    #[serde(default)]
    pub state: Option<Value>,
    /// The event (`.` in the flow's expressions); `{}` by default.
    #[serde(default)]
    pub input: Option<Value>,
    /// The webhook request's headers (`$headers`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Fixtures per connector, tried in order for each request.
    #[serde(default)]
    pub upstreams: BTreeMap<String, Vec<Located<Fixture>>>,
    #[serde(default)]
    pub expect: Expect,
    /// Longest the run may take in wall time (default 30 s); waits and run
    /// retries are skipped, so this bounds real work only.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// What `--record` masks besides credentials.
    #[serde(default)]
    pub record: RecordSettings,
}

/// A request matcher and what a matching request is answered.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub request: RequestMatcher,
    /// One reply for every matching request.
    #[serde(default)]
    pub reply: Option<ReplySpec>,
    /// Replies in order, one per matching request; the last one repeats.
    #[serde(default)]
    pub replies: Vec<Located<ReplySpec>>,
}

impl Fixture {
    /// The replies in the order they are given out.
    pub fn sequence(&self) -> Vec<ReplySpec> {
        match &self.reply {
            Some(reply) => vec![reply.clone()],
            None => self.replies.iter().map(|r| r.value.clone()).collect(),
        }
    }
}

/// Which requests match: method and path always; query, headers and body
/// when given, each as a subset of what was sent.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMatcher {
    /// `GET`, `POST`, ... (any case).
    pub method: String,
    /// The whole path the upstream sees (`/v1/charges`); a `{name}`
    /// segment matches any one segment.
    pub path: String,
    /// Query parameters that must be present with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, Value>,
    /// Headers that must be present with these values (names in any case).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON document the body must contain (objects: these keys at
    /// least; arrays: as many items, each containing the given one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// How a fixture answers.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    /// Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON; no body when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Waits this long before answering (never recorded).
    #[serde(default, skip_serializing)]
    pub delay: Option<HumanDuration>,
    /// Misbehaves instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

impl ReplySpec {
    pub fn status(&self) -> u16 {
        self.status.unwrap_or(200)
    }
}

/// Ways an upstream fails below HTTP.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The connection is reset without an answer.
    Reset,
    /// A JSON content type with a body that is not JSON.
    MalformedJson,
}

/// What should come of the run; only what is given is checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `succeeded`, `dead`, `skipped` or `cancelled`.
    #[serde(default)]
    pub status: Option<Located<String>>,
    /// Contained in the run's output.
    #[serde(default)]
    pub output: Option<Located<Value>>,
    /// By step id.
    #[serde(default)]
    pub steps: BTreeMap<String, Located<StepExpect>>,
    /// The exact requests each listed connector received, in order
    /// (`[]`: none).
    #[serde(default)]
    pub requests: BTreeMap<String, Located<Vec<RequestMatcher>>>,
    /// Contained in the flow's state after the run.
    #[serde(default)]
    pub state: Option<Located<Value>>,
    /// Why the run is dead.
    #[serde(default)]
    pub dead_letter: Option<Located<DeadLetterExpect>>,
}

/// What one step should have done.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// `succeeded`, `failed`, `skipped` or `not_run`.
    #[serde(default)]
    pub status: Option<String>,
    /// Contained in the step's output (a call's is `{status, body}`).
    #[serde(default)]
    pub output: Option<Value>,
    /// Contained in the step's last error.
    #[serde(default)]
    pub error: Option<String>,
    /// The class of the step's last failure (`server_error`, `contract`...).
    #[serde(default)]
    pub error_class: Option<String>,
}

/// Why a dead run died.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterExpect {
    /// The step that failed last.
    #[serde(default)]
    pub step: Option<String>,
    /// Its failure class.
    #[serde(default)]
    pub class: Option<String>,
    /// Contained in the run's error.
    #[serde(default)]
    pub error: Option<String>,
}

/// Fields `--record` masks in recorded bodies, besides the defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    #[serde(default)]
    pub redact: Vec<String>,
}

/// A test file read from disk.
#[derive(Clone, Debug)]
pub struct LoadedTest {
    /// The file's stem.
    pub name: String,
    /// As shown in reports (relative to the project when it can be).
    pub path: PathBuf,
    pub test: TestFile,
}

/// Reads and parses one test file; `shown` is the path reports use.
pub fn read(path: &Path, shown: &Path) -> Result<LoadedTest, FlowTestError> {
    let text = std::fs::read_to_string(path).map_err(|source| FlowTestError::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    let test: TestFile = serde_saphyr::from_str(&text).map_err(|e| FlowTestError::Parse {
        path: shown.to_path_buf(),
        message: e.to_string(),
    })?;
    let name = shown
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(LoadedTest {
        name,
        path: shown.to_path_buf(),
        test,
    })
}

/// The test files under `dir`, sorted, recursively: `*.yaml` and `*.yml`,
/// leaving out `*.recorded.yaml` (what `--record` wrote, not yet reviewed).
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, FlowTestError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| FlowTestError::Read {
            path: folder.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path.to_string_lossy();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if yaml && !name.ends_with(".recorded.yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
