//! Reading a spec from disk: the root document, its version check, and every file
//! its `$ref`s name, transitively, each loaded once.
//!
//! Refs are found by walking each document's JSON. The walk skips places that hold
//! example data rather than spec (`example`, `default`, `enum`, `const`, an Example
//! Object's `value`, `x-` extensions), so that a payload that happens to contain a
//! `"$ref"` key is not taken for a reference, and it knows which objects are maps of
//! user-chosen names (`properties`, `components/schemas`, `paths`…) so that a property
//! called `example` is still walked. When in doubt it skips: a ref left unloaded only
//! makes questions about that part of the spec unanswerable, never wrong.
//!
//! Once every file is in, each ref's pointer is checked so that a typo in a spec is
//! reported at load time, naming the file that holds the ref.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::pointer::{self, FilePart};
use crate::{Contract, ContractError, Document};

/// Larger than any hand-written or generated spec we know of; keeps a ref to
/// `/dev/zero` or a log file from eating the memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// How many files one spec may be split into.
const MAX_FILES: usize = 1024;

/// Keys whose values are data (examples, defaults) or vendor extensions, not spec.
const DATA_KEYS: [&str; 5] = ["example", "default", "enum", "const", "value"];

/// Keys whose values are maps from user-chosen names to spec objects.
const NAME_MAPS: [&str; 21] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "paths",
    "webhooks",
    "schemas",
    "responses",
    "parameters",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
    "examples",
    "content",
    "encoding",
    "variables",
    "mapping",
];

/// Why a file could not be turned into JSON.
enum ReadProblem {
    Io(std::io::Error),
    TooLarge(u64),
    Parse(String),
}

pub(crate) fn load(path: &Path) -> Result<Contract, ContractError> {
    let name = path.display().to_string();
    let root = read(path).map_err(|problem| match problem {
        ReadProblem::Io(error) => ContractError::Read {
            path: name.clone(),
            error,
        },
        other => file_error(&name, other),
    })?;
    let version = check_version(&name, &root)?;
    let canonical = std::fs::canonicalize(path).map_err(|error| ContractError::Read {
        path: name.clone(),
        error,
    })?;

    let mut docs = vec![Document { name, value: root }];
    let mut fs_paths = vec![path.to_path_buf()];
    let mut links: Vec<HashMap<String, usize>> = vec![HashMap::new()];
    let mut refs: Vec<Vec<String>> = Vec::new();
    let mut by_path = HashMap::from([(canonical, 0usize)]);

    let mut next = 0;
    while next < docs.len() {
        let found: Vec<String> = refs_in(&docs[next].value)
            .into_iter()
            .map(str::to_string)
            .collect();
        for reference in &found {
            let (file, _) = pointer::split(reference);
            let relative = match pointer::file_part(file) {
                FilePart::Same => continue,
                FilePart::Path(relative) => relative,
                FilePart::Remote => {
                    return Err(ContractError::RemoteRef {
                        path: docs[next].name.clone(),
                        reference: reference.clone(),
                    });
                }
                FilePart::Unsupported => {
                    return Err(ContractError::UnsupportedRef {
                        path: docs[next].name.clone(),
                        reference: reference.clone(),
                    });
                }
            };
            if links[next].contains_key(file) {
                continue;
            }
            // Relative to the file as it was named, like a URI, not to where a
            // symlink leads; the canonical path only tells files apart.
            let fs_path = fs_paths[next]
                .parent()
                .unwrap_or(Path::new(""))
                .join(&relative);
            let shown = tidy(
                &Path::new(&docs[next].name)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&relative),
            )
            .display()
            .to_string();
            let missing = |problem: String| ContractError::MissingFile {
                path: docs[next].name.clone(),
                reference: reference.clone(),
                target: shown.clone(),
                problem,
            };
            let canonical = std::fs::canonicalize(&fs_path).map_err(|e| missing(e.to_string()))?;
            let index = match by_path.get(&canonical) {
                Some(&index) => index,
                None => {
                    if docs.len() >= MAX_FILES {
                        return Err(ContractError::TooManyFiles {
                            path: docs[0].name.clone(),
                            limit: MAX_FILES,
                        });
                    }
                    let value = read(&fs_path).map_err(|problem| match problem {
                        ReadProblem::Io(error) => missing(error.to_string()),
                        other => file_error(&shown, other),
                    })?;
                    docs.push(Document {
                        name: shown.clone(),
                        value,
                    });
                    fs_paths.push(fs_path);
                    links.push(HashMap::new());
                    by_path.insert(canonical, docs.len() - 1);
                    docs.len() - 1
                }
            };
            links[next].insert(file.to_string(), index);
        }
        refs.push(found);
        next += 1;
    }

    for (at, found) in refs.iter().enumerate() {
        for reference in found {
            let (file, fragment) = pointer::split(reference);
            if !pointer::is_pointer(fragment) {
                continue;
            }
            let target = if file.is_empty() {
                at
            } else {
                match links[at].get(file) {
                    Some(&target) => target,
                    None => continue,
                }
            };
            if pointer::follow(&docs[target].value, fragment).is_none() {
                return Err(ContractError::DanglingRef {
                    path: docs[at].name.clone(),
                    reference: reference.clone(),
                    target: docs[target].name.clone(),
                });
            }
        }
    }

    Ok(Contract::new(docs, links, version))
}

fn file_error(name: &str, problem: ReadProblem) -> ContractError {
    match problem {
        ReadProblem::Io(error) => ContractError::Read {
            path: name.to_string(),
            error,
        },
        ReadProblem::TooLarge(size) => ContractError::TooLarge {
            path: name.to_string(),
            size,
            limit: MAX_FILE_BYTES,
        },
        ReadProblem::Parse(message) => ContractError::Parse {
            path: name.to_string(),
            message,
        },
    }
}

/// Reads one file as JSON if it is JSON, else as YAML (a superset, but the JSON
/// parser gives better errors for JSON and keeps big JSON specs fast).
fn read(path: &Path) -> Result<Value, ReadProblem> {
    let meta = std::fs::metadata(path).map_err(ReadProblem::Io)?;
    if !meta.is_file() {
        return Err(ReadProblem::Io(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge(meta.len()));
    }
    let text = std::fs::read_to_string(path).map_err(ReadProblem::Io)?;
    parse(&text).map_err(ReadProblem::Parse)
}

pub(crate) fn parse(text: &str) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    if text.trim().is_empty() {
        return Err("the file is empty".to_string());
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        let message = match &e {
            serde_saphyr::Error::Message { msg, .. } => msg.clone(),
            other => other
                .without_snippet()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        match e.location() {
            Some(at) if !message.contains(" at line ") => {
                format!("line {} column {}: {message}", at.line(), at.column())
            }
            _ => message,
        }
    })
}

/// The `openapi` version of the root document, or why it is not one we read.
fn check_version(name: &str, root: &Value) -> Result<String, ContractError> {
    let refuse = |problem: String| ContractError::Version {
        path: name.to_string(),
        problem,
    };
    let Value::Object(map) = root else {
        return Err(refuse("the document is not a mapping".to_string()));
    };
    if let Some(swagger) = map.get("swagger") {
        let version = match swagger {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Err(ContractError::Swagger {
            path: name.to_string(),
            version,
        });
    }
    match map.get("openapi") {
        None => Err(refuse(
            "no `openapi` field, so this is not an OpenAPI document".to_string(),
        )),
        Some(Value::String(version)) if supported(version) => Ok(version.clone()),
        Some(Value::String(version)) => Err(refuse(format!(
            "`openapi: {version}` is not a supported version"
        ))),
        Some(Value::Number(n)) => Err(refuse(format!(
            "`openapi: {n}` is a number; write the full version as a string, such as \"{n}.0\""
        ))),
        Some(other) => Err(refuse(format!(
            "`openapi: {other}` is not a version string"
        ))),
    }
}

fn supported(version: &str) -> bool {
    ["3.0", "3.1"].iter().any(|minor| {
        version
            .strip_prefix(minor)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// Every `$ref` string in `value` that refers to spec (see the module doc).
/// Iterative: parsed documents are bounded in depth, but not by much.
pub(crate) fn refs_in(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    // The flag says the object's keys are user-chosen names.
    let mut stack = vec![(value, false)];
    while let Some((value, names)) = stack.pop() {
        match value {
            Value::Object(map) => {
                if !names && let Some(Value::String(reference)) = map.get("$ref") {
                    out.push(reference.as_str());
                }
                for (key, child) in map {
                    if names {
                        stack.push((child, false));
                        continue;
                    }
                    let data = DATA_KEYS.contains(&key.as_str())
                        || key.starts_with("x-")
                        || (key == "examples" && child.is_array());
                    if data || key == "$ref" {
                        continue;
                    }
                    stack.push((child, NAME_MAPS.contains(&key.as_str())));
                }
            }
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, false))),
            _ => {}
        }
    }
    out
}

/// Removes `.` and folds `dir/..` so messages show `specs/common.yaml` rather than
/// `specs/schemas/../common.yaml`. For display only: symlinks make this differ from
/// what the file system does.
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_integer_keys_become_strings() {
        let value = parse("responses:\n  200:\n    description: ok\n  2XX: {}\n").unwrap();
        assert_eq!(
            value,
            json!({"responses": {"200": {"description": "ok"}, "2XX": {}}})
        );
    }

    #[test]
    fn hostile_yaml_is_an_error_not_a_crash() {
        let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i", "j"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let list = vec![format!("*{prev}"); 10].join(", ");
            laughs.push_str(&format!("{name}: &{name} [{list}]\n"));
        }
        assert!(parse(&laughs).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn refs_in_data_and_extensions_are_not_refs() {
        let doc = json!({
            "components": {"schemas": {
                "A": {"$ref": "a.yaml"},
                "example": {"$ref": "named-example.yaml"},
                "B": {
                    "properties": {"default": {"$ref": "prop.yaml"}},
                    "example": {"$ref": "data.yaml"},
                    "x-thing": {"$ref": "ext.yaml"},
                    "examples": [{"$ref": "data2.yaml"}],
                    "enum": [{"$ref": "data3.yaml"}]
                }
            }},
            "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
                "examples": {"one": {"value": {"$ref": "data4.yaml"}}, "two": {"$ref": "ex.yaml"}}
            }}}}}}}
        });
        let mut found = refs_in(&doc);
        found.sort_unstable();
        assert_eq!(
            found,
            ["a.yaml", "ex.yaml", "named-example.yaml", "prop.yaml"]
        );
    }

    #[test]
    fn versions() {
        assert!(supported("3.0.3"));
        assert!(supported("3.1.0"));
        assert!(supported("3.1"));
        assert!(!supported("3.10.0"));
        assert!(!supported("3.2.0"));
        assert!(!supported("2.0"));
    }

    #[test]
    fn tidy_folds_parent_dirs() {
        assert_eq!(
            tidy(Path::new("specs/./schemas/../common.yaml")),
            Path::new("specs/common.yaml")
        );
        assert_eq!(
            tidy(Path::new("../common.yaml")),
            Path::new("../common.yaml")
        );
    }
}
