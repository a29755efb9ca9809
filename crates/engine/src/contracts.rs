//! The connectors' contracts: each `spec:` OpenAPI document, loaded once
//! per build and shared by every flow's checks.
//!
//! A document that cannot be loaded (missing, not OpenAPI 3, a `$ref` to
//! nowhere) is a problem at the connector's `spec:` line, and its
//! connector's calls are then not checked against it: each problem is told
//! once. Plans kept only for stored runs of an earlier version load none,
//! since the files on disk may have changed since that version was
//! served.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use patchbay_config::{ContractMode, ContractSetting, Diagnostic, Project, Report};
use patchbay_contract::{Contract, Operation, Schema};

/// Every connector's contract, by connector name.
#[derive(Clone, Debug, Default)]
pub struct Contracts {
    by_connector: HashMap<String, Loaded>,
    /// Compiled validators by schema, shared by the calls of one operation.
    /// A std mutex: held to look up or insert, never across an await.
    validators: Arc<Mutex<HashMap<String, Arc<jsonschema::Validator>>>>,
    /// What works but deserves a look: a pinned `api_version` the spec
    /// does not describe.
    pub warnings: Vec<Diagnostic>,
}

#[derive(Clone, Debug)]
struct Loaded {
    contract: Arc<Contract>,
    /// The document's path as written in `patchbay.yaml`, for messages.
    shown: PathBuf,
}

impl Contracts {
    /// Loads the `spec:` of every connector of `project`, relative to its
    /// folder; problems go to `report`.
    pub fn load(project: &Project, report: &mut Report) -> Contracts {
        let mut by_connector = HashMap::new();
        let mut version_warnings = Vec::new();
        for (name, connector) in &project.config.connectors {
            let Some(spec) = &connector.spec else {
                continue;
            };
            let shown = PathBuf::from(&spec.value);
            match Contract::load(&project.dir.join(&shown)) {
                Ok(contract) => {
                    if let Some(pinned) = &connector.api_version
                        && let Some(described) = contract.api_version()
                        && described != pinned.value.value
                    {
                        version_warnings.push(Diagnostic::new(
                            &project.root_file,
                            pinned.line,
                            pinned.column,
                            format!(
                                "connector `{name}` pins API version {}, but its spec ({}) describes version {described}: \
                                 the checks hold its flows against another version than they call",
                                pinned.value.value,
                                shown.display()
                            ),
                        ));
                    }
                    by_connector.insert(
                        name.clone(),
                        Loaded {
                            contract: Arc::new(contract),
                            shown,
                        },
                    );
                }
                Err(e) => report.push(Diagnostic::new(
                    &project.root_file,
                    spec.line,
                    spec.column,
                    format!("connector `{name}`: `spec`: {e}"),
                )),
            }
        }
        Contracts {
            by_connector,
            validators: Arc::default(),
            warnings: version_warnings,
        }
    }

    /// The validator of `schema`, compiled once per build.
    fn validator(&self, schema: &Schema<'_>) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.key();
        let mut validators = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(validator) = validators.get(&key) {
            return Ok(validator.clone());
        }
        let validator = Arc::new(
            jsonschema::options()
                .should_validate_formats(false)
                .build(&schema.bundle())
                .map_err(|e| e.to_string())?,
        );
        validators.insert(key, validator.clone());
        Ok(validator)
    }

    /// The contract of connector `name`, if it has one.
    pub fn of(&self, name: &str) -> Option<&Contract> {
        self.by_connector.get(name).map(|loaded| &*loaded.contract)
    }

    /// The path of connector `name`'s document as its `spec:` names it.
    pub fn file_of(&self, name: &str) -> Option<&std::path::Path> {
        self.by_connector
            .get(name)
            .map(|loaded| loaded.shown.as_path())
    }
}

/// Whether a reply written by hand (a flow test's fixture) or recorded
/// fits its connector's contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FixtureVerdict {
    /// The connector has no contract (or it did not load): nothing to check.
    NoContract,
    /// The contract has no operation for the request's method and path.
    NoOperation,
    /// The operation documents no JSON body for the status, or the body fits.
    Fits,
    /// What does not fit, one line each (`/contacts/-/email: expected type
    /// string, seen integer`).
    Breaks(Vec<String>),
}

impl Contracts {
    /// Checks a reply `connector` would give to `method path` (the whole
    /// path the upstream sees, its URL's path included) against the
    /// connector's contract, whatever its `contract:` mode says: a stale
    /// fixture is stale even where production only warns.
    pub fn check_reply(
        &self,
        project: &Project,
        connector: &str,
        method: &str,
        path: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> FixtureVerdict {
        let Some(contract) = self.of(connector) else {
            return FixtureVerdict::NoContract;
        };
        let parts = |path: &str| -> Vec<patchbay_contract::Segment> {
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with('{') && s.ends_with('}') {
                        patchbay_contract::Segment::Hole
                    } else {
                        patchbay_contract::Segment::Literal(s.to_string())
                    }
                })
                .collect()
        };
        let whole = parts(path);
        let mut prefixes: Vec<Vec<String>> = contract
            .server_prefixes()
            .into_iter()
            .map(|p| p.into_iter().map(str::to_string).collect())
            .collect();
        if let Some(config) = project.config.connectors.get(connector)
            && !config.url.contains("${")
        {
            prefixes.push(
                patchbay_contract::url_path(&config.url)
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        let mut candidates = vec![whole.clone()];
        for prefix in prefixes {
            let starts = prefix.len() <= whole.len()
                && prefix.iter().zip(&whole).all(|(want, got)| {
                    matches!(got, patchbay_contract::Segment::Literal(got) if got == want)
                });
            if starts && !prefix.is_empty() {
                candidates.push(whole[prefix.len()..].to_vec());
            }
        }
        let Some(operation) = candidates
            .iter()
            .find_map(|candidate| contract.match_operation(method, candidate))
        else {
            return FixtureVerdict::NoOperation;
        };
        let mut problems = Vec::new();
        let Some(check) = ReplyCheck::compile(self, connector, operation, None, &mut problems)
        else {
            return FixtureVerdict::Fits;
        };
        let violations = check.violations(status, body);
        if violations.is_empty() {
            return FixtureVerdict::Fits;
        }
        FixtureVerdict::Breaks(
            violations
                .iter()
                .map(|v| {
                    let at = if v.pointer.is_empty() {
                        "/"
                    } else {
                        &v.pointer
                    };
                    format!("{at}: expected {}, seen {}", v.expected, v.seen)
                })
                .collect(),
        )
    }
}

/// What a call holds its replies against at run time: a compiled validator
/// per documented response of its operation, and what to do with a reply
/// that differs.
pub(crate) struct ReplyCheck {
    pub connector: String,
    /// `GET /contacts`, as the spec writes it.
    pub operation: String,
    pub mode: ContractMode,
    /// Share of replies checked.
    pub sample: f64,
    /// For each status from 100 to 599, the documented response it is held
    /// against (an index in `responses`), if any.
    by_status: Vec<Option<usize>>,
    /// Each documented response with a JSON schema: its key (`200`, `2XX`,
    /// `default`) and validator.
    responses: Vec<(String, Arc<jsonschema::Validator>)>,
}

impl std::fmt::Debug for ReplyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyCheck")
            .field("operation", &self.operation)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// One way a reply differs from its documented response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The documented response (`200`, `2XX`, `default`).
    pub response: String,
    /// JSON pointer into the body, array indices written `-`.
    pub pointer: String,
    pub expected: String,
    pub seen: String,
    /// The value there (the whole object for a missing property).
    pub example: serde_json::Value,
}

/// Most violations kept of one reply: a reply of a different shape
/// altogether would otherwise list every item.
const MAX_VIOLATIONS: usize = 16;

impl ReplyCheck {
    /// The check of `operation`'s replies on connector `connector`; `None`
    /// when its setting is `off` or no response documents a JSON schema.
    /// A schema the validator cannot compile is left unchecked, with a
    /// warning for `check`.
    pub fn compile(
        contracts: &Contracts,
        connector: &str,
        operation: Operation<'_>,
        setting: Option<&ContractSetting>,
        warnings: &mut Vec<String>,
    ) -> Option<ReplyCheck> {
        let mode = setting.map_or(ContractMode::Warn, ContractSetting::mode);
        if mode == ContractMode::Off {
            return None;
        }
        let mut responses: Vec<(String, Arc<jsonschema::Validator>)> = Vec::new();
        let mut by_status = vec![None; 600];
        for (status, slot) in by_status.iter_mut().enumerate().skip(100) {
            let status = u16::try_from(status).unwrap_or(u16::MAX);
            let (Some(key), Some(Some(schema))) = (
                operation.response_key(status),
                operation.response_schema(status),
            ) else {
                continue;
            };
            if let Some(index) = responses.iter().position(|(known, _)| known == key) {
                *slot = Some(index);
                continue;
            }
            match contracts.validator(&schema) {
                Ok(validator) => {
                    responses.push((key.to_string(), validator));
                    *slot = Some(responses.len() - 1);
                }
                Err(e) => warnings.push(format!(
                    "the {key} response of `{} {}` cannot be checked at run time: {e}",
                    operation.method(),
                    operation.path()
                )),
            }
        }
        if responses.is_empty() {
            return None;
        }
        Some(ReplyCheck {
            connector: connector.to_string(),
            operation: format!("{} {}", operation.method(), operation.path()),
            mode,
            sample: setting.map_or(1.0, ContractSetting::sample),
            by_status,
            responses,
        })
    }

    /// Whether this reply is to be checked (sampling).
    pub fn sampled(&self) -> bool {
        self.sample >= 1.0 || fastrand::f64() < self.sample
    }

    /// How a reply with `status` and `body` differs from its documented
    /// response; nothing when it does not, or when that status is not
    /// documented with a schema.
    pub fn violations(&self, status: u16, body: &serde_json::Value) -> Vec<Violation> {
        let Some(Some(index)) = self.by_status.get(usize::from(status)) else {
            return Vec::new();
        };
        let (response, validator) = &self.responses[*index];
        validator
            .iter_errors(body)
            .take(MAX_VIOLATIONS)
            .map(|error| describe(response, &error))
            .collect()
    }
}

/// A validator's error as a violation: the pointer with indices folded,
/// what was expected, and what was there.
fn describe(response: &str, error: &jsonschema::ValidationError<'_>) -> Violation {
    use jsonschema::error::ValidationErrorKind;
    let pointer = error
        .instance_path()
        .to_string()
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "-"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let instance = error.instance().as_ref();
    let (expected, seen) = match error.kind() {
        ValidationErrorKind::Required { property } => (
            format!(
                "required property {}",
                property.as_str().unwrap_or_default()
            ),
            "missing".to_string(),
        ),
        ValidationErrorKind::Type { .. } => {
            let message = error.to_string();
            // "42 is not of type \"string\"": the part after the value.
            let wanted = message
                .rsplit_once("is not of type")
                .map(|(_, types)| types.trim().replace('"', ""))
                .unwrap_or_default();
            (format!("type {wanted}"), json_type(instance).to_string())
        }
        kind => (
            format!("keyword {}", kind.keyword()),
            json_type(instance).to_string(),
        ),
    };
    Violation {
        response: response.to_string(),
        pointer,
        expected,
        seen,
        example: instance.clone(),
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
