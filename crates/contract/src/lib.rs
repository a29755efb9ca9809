//! Patchbay contracts: the OpenAPI documents that describe the APIs a connector talks to,
//! loaded once and asked static questions by `patchbay check` and the engine's compiler.
//!
//! The crate owns reading a spec and answering "what does the spec say about this?":
//! which operation a flow's request is, which parameters and body it needs, and what the
//! response looks like, so that a misspelt path, a missing required query parameter or a
//! read of a field the API never returns is caught before a flow runs.
//!
//! - [`Contract::load`] reads an OpenAPI 3.0 or 3.1 document (JSON or YAML) and every
//!   file its `$ref`s name, checking each ref on the way (`load` and `pointer` modules).
//! - [`Operation`] is one method on one path, found by id, by matching a request path
//!   made of [`Segment`]s, or listed for suggestions (`operation` module).
//! - [`Schema`] is a node of a JSON Schema inside the loaded files, navigated lazily one
//!   field or element at a time; [`Field`] says what reading a field gives (`schema`
//!   module).
//! - [`Schema::bundle`] turns a schema into one self-contained JSON Schema (draft
//!   2020-12) for validating replies at run time (`bundle` module).
//! - [`diff()`] compares two versions of a spec from the consumer's point of view and
//!   lists the changes that may break flows calling the API (`diff` module).
//! - [`ContractError`] is every reason a spec is refused, each naming its file.
//!
//! Nothing here does network I/O: remote refs are refused. Specs come from third parties
//! and may be wrong or hostile, so every question is answered within fixed depth and
//! work limits and unanswerable questions come back as "unknown", never as a panic.

#![forbid(unsafe_code)]

mod bundle;
pub mod diff;
mod error;
mod load;
mod operation;
mod pointer;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

pub use diff::{Change, Location, Severity, diff};
pub use error::ContractError;
pub use operation::{Operation, Segment, path_shape};
pub use schema::{Field, Schema};

/// How many `$ref`s or nested schemas a question may go through before giving up: deep
/// enough for any real spec, shallow enough that a cycle of refs ends quickly.
pub(crate) const MAX_DEPTH: usize = 64;

/// One loaded OpenAPI 3.0/3.1 document plus every file it `$ref`s.
pub struct Contract {
    /// The root document first, then referenced files in the order they were found.
    docs: Vec<Document>,
    /// For each document, the file part of each of its refs → the document it names.
    links: Vec<HashMap<String, usize>>,
    version: String,
    /// The empty schema, which allows anything: what a field is when the spec gives
    /// conflicting answers we cannot combine into one node.
    any: Value,
    /// [`Schema::key`] answers found so far, by node address: finding a node's pointer
    /// walks its whole document, and callers ask once per reply they validate. The
    /// documents are never changed after loading, so an address names one node for
    /// as long as the contract lives.
    keys: Mutex<HashMap<usize, String>>,
}

/// One file of a spec.
pub(crate) struct Document {
    /// The path for messages, relative to where the root was named.
    name: String,
    value: Value,
}

impl Contract {
    /// Loads `path` (JSON if it parses as JSON, else YAML) and every file its `$ref`s
    /// name, recursively, once each. Refuses Swagger 2.0, anything that is not OpenAPI
    /// 3.0.x or 3.1.x, remote refs, refs to missing files and refs pointing at nothing.
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        load::load(path)
    }

    /// A contract of one in-memory document, for unit tests.
    #[cfg(test)]
    pub(crate) fn inline(value: Value, version: &str) -> Contract {
        let docs = vec![Document {
            name: "inline.json".to_string(),
            value,
        }];
        Contract::new(docs, vec![HashMap::new()], version.to_string())
    }

    fn new(docs: Vec<Document>, links: Vec<HashMap<String, usize>>, version: String) -> Self {
        Contract {
            docs,
            links,
            version,
            any: Value::Object(serde_json::Map::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The `openapi` version string as written, e.g. "3.1.0".
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The API version the document describes (`info.version`), if it says.
    pub fn api_version(&self) -> Option<&str> {
        self.docs.first()?.value.pointer("/info/version")?.as_str()
    }

    /// The operation whose `operationId` is `id`.
    pub fn operation_by_id(&self, id: &str) -> Option<Operation<'_>> {
        self.operations()
            .into_iter()
            .find(|op| op.operation_id() == Some(id))
    }

    /// All operationIds, in the order of [`Contract::operations`], for suggestions.
    pub fn operation_ids(&self) -> Vec<&str> {
        self.operations()
            .into_iter()
            .filter_map(|op| op.operation_id())
            .collect()
    }

    /// The operation for `method` and a request path given as segments (the part after
    /// the connector's base URL, split on `/`, empty segments dropped).
    ///
    /// A [`Segment::Hole`] matches only a templated spec segment (`{id}`); a
    /// [`Segment::Literal`] matches an equal literal segment or a templated one, and the
    /// path with the most literal matches wins, as OpenAPI says concrete paths do. A spec
    /// segment mixing text and a template (`{name}.json`) matches anything. Only paths
    /// declaring `method` take part, so a concrete path without it does not hide a
    /// templated one with it.
    pub fn match_operation(&self, method: &str, path: &[Segment]) -> Option<Operation<'_>> {
        operation::best_match(self.operations(), method, path)
    }

    /// The path prefixes of the spec's `servers` (`https://api.example.com/v2` gives
    /// `["v2"]`), as segments; servers whose path holds a variable are left out, and a
    /// spec without servers gives one empty prefix, as OpenAPI's default server `/` does.
    pub fn server_prefixes(&self) -> Vec<Vec<&str>> {
        let urls: Vec<&str> = self.server_urls().into_iter().map(|(_, url)| url).collect();
        if urls.is_empty() {
            return vec![Vec::new()];
        }
        urls.into_iter()
            .map(url_path)
            .filter(|path| !path.contains('{'))
            .map(|path| path.split('/').filter(|s| !s.is_empty()).collect())
            .collect()
    }

    /// The `url` of each of the spec's `servers`, with its index in the list.
    pub(crate) fn server_urls(&self) -> Vec<(usize, &str)> {
        self.root()
            .get("servers")
            .and_then(Value::as_array)
            .map(|servers| {
                servers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, server)| Some((i, server.get("url")?.as_str()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every operation the spec declares, for suggestions: by path template in byte
    /// order, then by method (GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE).
    pub fn operations(&self) -> Vec<Operation<'_>> {
        operation::all(self)
    }

    /// The name of document `doc`, for messages.
    pub(crate) fn file(&self, doc: usize) -> &str {
        &self.docs[doc].name
    }

    /// The root document.
    pub(crate) fn root(&self) -> &Value {
        &self.docs[0].value
    }

    /// The empty schema (see the `any` field).
    pub(crate) fn any(&self) -> &Value {
        &self.any
    }

    /// What `reference`, written in document `doc`, points at, and the document it is in.
    pub(crate) fn resolve(&self, doc: usize, reference: &str) -> Option<(usize, &Value)> {
        let (file, fragment) = pointer::split(reference);
        let target = if file.is_empty() {
            doc
        } else {
            *self.links.get(doc)?.get(file)?
        };
        pointer::follow(&self.docs.get(target)?.value, fragment).map(|value| (target, value))
    }

    /// The identity of `node`, a node of document `doc` or the empty schema: "DOC#POINTER".
    pub(crate) fn key_of(&self, doc: usize, node: &Value) -> String {
        if std::ptr::eq(node, &self.any) {
            return "any".to_string();
        }
        let address = std::ptr::from_ref(node).addr();
        // A poisoned lock only means another thread panicked while holding it; the
        // map is still a valid cache.
        if let Some(key) = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&address)
        {
            return key.clone();
        }
        // Searched without the lock held, so one slow first lookup does not stall
        // other threads' cached ones.
        let key = match self
            .docs
            .get(doc)
            .and_then(|d| pointer::locate(&d.value, node))
        {
            Some(path) => format!("{doc}#{path}"),
            // Not where the schema says it is: only the empty schema is outside
            // the documents, so no real node gets here.
            None => return "any".to_string(),
        };
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address, key.clone());
        key
    }

    /// Follows a Reference Object (a parameter, response, request body or path item that
    /// is only a `$ref`) to what it stands for. In 3.1 such refs may carry a summary and
    /// description, which say nothing we need, so siblings are ignored here.
    pub(crate) fn follow_refs<'a>(
        &'a self,
        mut doc: usize,
        mut node: &'a Value,
    ) -> Option<(usize, &'a Value)> {
        for _ in 0..MAX_DEPTH {
            match node.get("$ref") {
                Some(Value::String(reference)) => (doc, node) = self.resolve(doc, reference)?,
                _ => return Some((doc, node)),
            }
        }
        None
    }
}

/// The path part of a URL (`https://host/v2?x` gives `/v2`); a relative URL is a path.
pub fn url_path(url: &str) -> &str {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => url,
    };
    rest.split(['?', '#']).next().unwrap_or("")
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("version", &self.version)
            .field(
                "files",
                &self
                    .docs
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
