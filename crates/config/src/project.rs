//! Loading an integration project: reading its files, deserializing each, and
//! turning YAML errors into located [`Diagnostic`]s. `patchbay.yaml` is read
//! a section at a time when it fails as a whole (see `crate::sections`), so
//! every broken connector and section is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::connector::ConnectorConfig;
use crate::diagnostic::{Diagnostic, Report};
use crate::duration::HumanDuration;
use crate::flow::{FlowConfig, StepConfig, TriggerConfig};
use crate::interpolate::Env;
use crate::located::Located;
use crate::node::{Node, NodeError, NodeValue};
use crate::settings::{ApiConfig, EngineConfig, ServerConfig, StoreConfig, TelemetryConfig};
use crate::validate;

/// The root file of a project.
pub const ROOT_FILE: &str = "patchbay.yaml";
/// The folder holding one file per flow.
pub const FLOWS_DIR: &str = "flows";

/// The content of `patchbay.yaml`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Upstream APIs, by name.
    #[serde(default)]
    pub connectors: BTreeMap<String, Located<ConnectorConfig>>,
    /// Flows written inline; most projects put each flow in `flows/NAME.yaml`.
    #[serde(default)]
    pub flows: BTreeMap<String, Located<FlowConfig>>,
    #[serde(default)]
    pub server: ServerConfig,
    /// Access to the management API (`/api/v1`).
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    /// Tracing (OpenTelemetry) and header redaction.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// A configuration file's path (as shown in messages) and text.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// A flow together with the file it was written in.
#[derive(Clone, Debug)]
pub struct LoadedFlow {
    pub file: PathBuf,
    pub config: FlowConfig,
}

/// A loaded and validated integration project.
#[derive(Clone, Debug)]
pub struct Project {
    /// The project folder; relative paths (the store file) are resolved from it.
    pub dir: PathBuf,
    /// Path of `patchbay.yaml`, as shown in messages.
    pub root_file: PathBuf,
    /// Connectors and settings (its `flows` map is moved into [`Project::flows`]).
    pub config: ProjectConfig,
    /// Every flow, by name.
    pub flows: BTreeMap<String, LoadedFlow>,
    /// Identifies this exact configuration: a hash of every source file.
    pub version: String,
    /// Whether `patchbay.yaml` could be read, as far as its connectors go
    /// (see `crate::sections`). Without every connector, a reference to a
    /// missing one would look unknown: those checks are skipped rather than
    /// bury the parse error in noise.
    pub root_parsed: bool,
    /// The files it was read from, `patchbay.yaml` first: what a node keeps
    /// in its store so runs created on this version can finish on it.
    pub sources: Vec<Source>,
}

impl Project {
    /// Reads `dir/patchbay.yaml` and `dir/flows/*.yaml`, then validates.
    pub fn load(dir: &Path, env: &dyn Env) -> Result<Project, Report> {
        let (project, report) = Project::load_partial(dir, env)?;
        report.into_result()?;
        Ok(project)
    }

    /// Like [`Project::load`], but returns whatever could be read together
    /// with every problem found, so a caller can check more (the engine
    /// compiles the flows' jq) and report everything in one pass. Only a
    /// missing project file is an error here.
    pub fn load_partial(dir: &Path, env: &dyn Env) -> Result<(Project, Report), Report> {
        Project::load_adjusted(dir, env, |_| {})
    }

    /// [`Project::load_partial`], with `adjust` applied to the project as
    /// read, before it is validated: `patchbay test` points connectors at
    /// its fixture servers this way, and the rules then hold for what runs.
    pub fn load_adjusted(
        dir: &Path,
        env: &dyn Env,
        adjust: impl FnOnce(&mut Project),
    ) -> Result<(Project, Report), Report> {
        let root_path = dir.join(ROOT_FILE);
        let root = match std::fs::read_to_string(&root_path) {
            Ok(text) => Source {
                path: root_path,
                text,
            },
            Err(e) => {
                return Err(Diagnostic::new(
                    &root_path,
                    0,
                    0,
                    format!(
                        "cannot read the project file: {e} (is `{}` a Patchbay project folder?)",
                        dir.display()
                    ),
                )
                .into());
            }
        };
        let mut report = Report::default();
        let mut flow_sources = Vec::new();
        let flows_dir = dir.join(FLOWS_DIR);
        if flows_dir.is_dir() {
            match read_flow_files(&flows_dir) {
                Ok(sources) => flow_sources = sources,
                Err(d) => report.push(d),
            }
        }
        let (mut project, more) = Project::read_sources(dir, root, flow_sources);
        report.extend(more);
        adjust(&mut project);
        report.extend(validate::project(&project, env));
        Ok((project, report))
    }

    /// Loads a project from sources already in memory (the demo ships its
    /// project inside the binary). Each flow source is named after its file
    /// stem.
    pub fn from_sources(
        dir: &Path,
        root: Source,
        flow_sources: Vec<Source>,
        env: &dyn Env,
    ) -> Result<Project, Report> {
        let (project, report) = Project::from_sources_partial(dir, root, flow_sources, env);
        report.into_result()?;
        Ok(project)
    }

    /// [`Project::from_sources`] returning what could be read and every problem.
    pub fn from_sources_partial(
        dir: &Path,
        root: Source,
        flow_sources: Vec<Source>,
        env: &dyn Env,
    ) -> (Project, Report) {
        let (project, mut report) = Project::read_sources(dir, root, flow_sources);
        report.extend(validate::project(&project, env));
        (project, report)
    }

    /// Deserializes every source, part by part, without the cross-field rules.
    fn read_sources(dir: &Path, root: Source, flow_sources: Vec<Source>) -> (Project, Report) {
        let mut report = Report::default();
        let mut hasher = Fnv64::default();
        hasher.write(root.text.as_bytes());

        let (mut config, connectors_known) = if root.text.trim().is_empty() {
            (ProjectConfig::default(), true)
        } else {
            let read = crate::sections::read_root(&root);
            report.extend(read.report);
            (read.config, read.connectors_known)
        };
        let mut flows = BTreeMap::new();
        for (name, flow) in std::mem::take(&mut config.flows) {
            flows.insert(
                name,
                LoadedFlow {
                    file: root.path.clone(),
                    config: flow.value,
                },
            );
        }
        for source in &flow_sources {
            hasher.write(source.path.to_string_lossy().as_bytes());
            hasher.write(source.text.as_bytes());
            let name = source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let flow = match read_flow(source) {
                Ok(flow) => flow,
                Err(problems) => {
                    report.extend(problems);
                    continue;
                }
            };
            if let Some(previous) = flows.get(&name) {
                report.push(Diagnostic::new(
                    &source.path,
                    0,
                    0,
                    format!(
                        "flow `{name}` is defined twice (also in {})",
                        previous.file.display()
                    ),
                ));
                continue;
            }
            flows.insert(
                name,
                LoadedFlow {
                    file: source.path.clone(),
                    config: flow,
                },
            );
        }

        // TLS files are named relative to the project folder, like the store.
        for connector in config.connectors.values_mut() {
            if let Some(tls) = &mut connector.value.tls {
                tls.value.resolve_paths(dir);
            }
        }
        let sources = std::iter::once(root.clone())
            .chain(flow_sources.iter().cloned())
            .collect();
        let project = Project {
            dir: dir.to_path_buf(),
            sources,
            root_file: root.path,
            config,
            flows,
            version: format!("{:016x}", hasher.finish()),
            root_parsed: connectors_known,
        };
        (project, report)
    }

    /// The store file, resolved against the project folder.
    pub fn store_path(&self) -> PathBuf {
        self.dir.join(&self.config.store.path)
    }
}

fn read_flow_files(flows_dir: &Path) -> Result<Vec<Source>, Diagnostic> {
    let entries = std::fs::read_dir(flows_dir)
        .map_err(|e| Diagnostic::new(flows_dir, 0, 0, format!("cannot list flows: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Source { path, text }),
            Err(e) => Err(Diagnostic::new(&path, 0, 0, format!("cannot read: {e}"))),
        })
        .collect()
}

/// Deserializes a flow file. serde stops at a document's first error, so
/// when the file fails as a whole it is read again as a tree of located
/// nodes and each part (the trigger, each step, `run_retries`) on its own:
/// every broken part is reported, at its line. A file that is not YAML at
/// all reports its first error alone.
fn read_flow(source: &Source) -> Result<FlowConfig, Report> {
    let first = match parse_yaml::<FlowConfig>(source) {
        Ok(flow) => return Ok(flow),
        Err(first) => first,
    };
    let alone = |first: Diagnostic| {
        let mut report = Report::default();
        report.push(first);
        report
    };
    let Ok(tree) = serde_saphyr::from_str::<Node>(&source.text) else {
        return Err(alone(first));
    };
    let NodeValue::Map(entries) = &tree.value else {
        return Err(alone(first));
    };
    let mut report = Report::default();
    let mut problem = |at: &Node, e: NodeError| {
        let (line, column) = if e.line == 0 {
            (at.line, at.column)
        } else {
            (e.line, e.column)
        };
        report.push(Diagnostic::new(&source.path, line, column, e.message));
    };
    for (key, node) in entries {
        let read = match key.value.as_str() {
            "description" => node.read::<Option<String>>().map(drop),
            "trigger" => node.read::<Located<TriggerConfig>>().map(drop),
            "run_retries" => node.read::<Option<Vec<HumanDuration>>>().map(drop),
            "steps" => match &node.value {
                NodeValue::Seq(steps) => {
                    for step in steps {
                        if let Err(e) = step.read::<Located<StepConfig>>() {
                            problem(step, e);
                        }
                    }
                    Ok(())
                }
                _ => node.read::<Vec<Located<StepConfig>>>().map(drop),
            },
            other => {
                let hint = crate::suggest::closest(other, FLOW_KEYS.iter().copied())
                    .map(|k| format!(" — did you mean `{k}`?"))
                    .unwrap_or_default();
                Err(NodeError {
                    message: format!("unknown key `{other}`{hint}"),
                    line: key.line,
                    column: key.column,
                })
            }
        };
        if let Err(e) = read {
            problem(node, e);
        }
    }
    for required in ["trigger", "steps"] {
        if !entries.iter().any(|(key, _)| key.value == required) {
            problem(
                &tree,
                NodeError {
                    message: format!("missing key `{required}`"),
                    line: 0,
                    column: 0,
                },
            );
        }
    }
    // Should no part fail on its own, the whole file's error still stands.
    Err(if report.is_empty() {
        alone(first)
    } else {
        report
    })
}

/// The keys of a flow file.
const FLOW_KEYS: [&str; 4] = ["description", "trigger", "steps", "run_retries"];

/// Deserializes one YAML document, mapping the error to a located diagnostic.
pub(crate) fn parse_yaml<T: DeserializeOwned>(source: &Source) -> Result<T, Diagnostic> {
    if source.text.trim().is_empty() {
        return Err(Diagnostic::new(&source.path, 0, 0, "the file is empty"));
    }
    serde_saphyr::from_str::<T>(&source.text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        Diagnostic::new(&source.path, line, column, explain_yaml_error(&e))
    })
}

/// The error's sentence without serde-saphyr's snippet and position (we print
/// our own), with a suggestion for misspelt keys.
fn explain_yaml_error(e: &serde_saphyr::Error) -> String {
    let text = match e {
        serde_saphyr::Error::Message { msg, .. } => msg.clone(),
        other => {
            let full = other.without_snippet().to_string();
            full.lines().next().unwrap_or_default().to_string()
        }
    };
    let text = strip_position_suffix(&text);
    suggest_key(&text).unwrap_or(text)
}

fn strip_position_suffix(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Rewrites serde's `unknown field `retires`, expected one of `url`, `retry``
/// into `unknown key `retires` — did you mean `retry`?`.
pub(crate) fn suggest_key(message: &str) -> Option<String> {
    let (what, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("key", rest)
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        ("kind", rest)
    } else {
        return None;
    };
    let (unknown, rest) = rest.split_once('`')?;
    // serde writes the candidates with backticks, serde-saphyr without:
    // "expected one of `a`, `b`", "expected one of a, b", "expected `a` or `b`".
    let list = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map(|(_, list)| list)
        .unwrap_or_default();
    let expected: Vec<&str> = list
        .split([',', ' '])
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty() && *c != "or")
        .collect();
    let best = crate::suggest::closest(unknown, expected.iter().copied());
    let list = expected
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(match best {
        Some(candidate) => {
            format!(
                "unknown {what} `{unknown}` — did you mean `{candidate}`? (expected one of {list})"
            )
        }
        None if expected.is_empty() => format!("unknown {what} `{unknown}`"),
        None => format!("unknown {what} `{unknown}` (expected one of {list})"),
    })
}

/// FNV-1a: a stable hash for the configuration version. It only has to tell
/// configurations apart, not resist an attacker.
#[derive(Clone, Copy)]
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        let m = suggest_key("unknown field `retires`, expected one of `url`, `retry`, `timeout`")
            .unwrap();
        assert_eq!(
            m,
            "unknown key `retires` — did you mean `retry`? (expected one of `url`, `retry`, `timeout`)"
        );
        let m = suggest_key("unknown field `zzz`, expected `url` or `timeout`").unwrap();
        assert_eq!(m, "unknown key `zzz` (expected one of `url`, `timeout`)");
        let m = suggest_key("unknown field `timeuot`, expected one of url, timeout").unwrap();
        assert!(m.contains("did you mean `timeout`?"), "{m}");
        assert!(suggest_key("invalid type: string").is_none());
    }
}
