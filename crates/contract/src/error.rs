//! The one error type of the crate, [`ContractError`]: everything that can make
//! [`Contract::load`](crate::Contract::load) refuse a spec.
//!
//! Each message starts with the file it is about (the one holding the bad
//! `$ref`, not the one it points at) so `patchbay check` can print it as is.

/// A spec that cannot be loaded, with the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A file could not be read at all.
    #[error("{path}: cannot read the file: {error}")]
    Read { path: String, error: std::io::Error },
    /// A file is larger than the loader accepts.
    #[error("{path}: the file is {size} bytes; specs larger than {limit} bytes are refused")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// A file is neither JSON nor YAML.
    #[error("{path}: not valid JSON or YAML: {message}")]
    Parse { path: String, message: String },
    /// A Swagger 2.0 document.
    #[error(
        "{path}: Swagger {version} documents are not supported; convert it to OpenAPI 3 \
         (for example with swagger2openapi)"
    )]
    Swagger { path: String, version: String },
    /// A document without an `openapi` field saying 3.0.x or 3.1.x.
    #[error("{path}: {problem}; Patchbay reads OpenAPI 3.0.x and 3.1.x documents")]
    Version { path: String, problem: String },
    /// A `$ref` to a URL: specs are read offline.
    #[error("{path}: remote $ref '{reference}' is not supported; download it next to the spec")]
    RemoteRef { path: String, reference: String },
    /// A `$ref` whose file part is neither a relative path nor a URL we recognise.
    #[error(
        "{path}: $ref '{reference}' is not supported; refs must be `#/…` pointers or paths \
         of files next to the spec"
    )]
    UnsupportedRef { path: String, reference: String },
    /// A `$ref` naming a file that cannot be read or parsed.
    #[error("{path}: $ref '{reference}' names {target}, which cannot be loaded: {problem}")]
    MissingFile {
        path: String,
        reference: String,
        target: String,
        problem: String,
    },
    /// A `$ref` whose JSON pointer leads nowhere in the file it names.
    #[error("{path}: $ref '{reference}' points at nothing in {target}")]
    DanglingRef {
        path: String,
        reference: String,
        target: String,
    },
    /// More files than any real spec splits into: most likely a generated loop of names.
    #[error("{path}: the spec $refs more than {limit} files; refusing to load more")]
    TooManyFiles { path: String, limit: usize },
}
