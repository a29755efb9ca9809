//! Errors of the expression crate: [`CompileError`] when a program or template is loaded,
//! [`EvalError`] when one is evaluated.
//!
//! Compile errors are meant for the operator reading `patchbay check` output: the message is
//! one plain sentence naming the offending snippet, and the byte offset lets the caller turn
//! it into a `file:line:column` position. Evaluation errors carry jaq's own wording for
//! runtime failures, cut to a readable length because the failing value is part of it.

/// A jq program or template that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong, as a plain sentence quoting the offending snippet.
    pub message: String,
    /// Byte offset in the source where the problem is, when known.
    pub offset: Option<usize>,
}

impl CompileError {
    pub(crate) fn new(message: impl Into<String>, offset: Option<usize>) -> Self {
        Self {
            message: message.into(),
            offset,
        }
    }

    /// Moves the offset by `by` bytes, for errors found in a part of a larger source.
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        self.offset = self.offset.map(|o| o + by);
        self
    }
}

/// An evaluation that did not produce a usable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The program produced no output at all (for example `empty`, or a `select` that
    /// rejected its input).
    #[error("the expression produced no output")]
    NoOutput,
    /// The program failed while running, for example `error("…")` or `"a" + 1`.
    #[error("{0}")]
    Runtime(String),
    /// A template hole produced a value that cannot be written into a string.
    #[error("`{{{hole}}}` produced {found}, expected a string, number or boolean")]
    NotScalar {
        /// Source of the hole, without its braces.
        hole: String,
        /// jq type name of what the hole produced (`null`, `array`, `object`).
        found: &'static str,
    },
    /// A path template hole produced a value that would change the shape of the path:
    /// an empty segment, `.` or `..`.
    #[error("`{{{hole}}}` produced {value:?}, which is not allowed as a path segment")]
    UnsafeSegment {
        /// Source of the hole, without its braces.
        hole: String,
        /// The rejected value.
        value: String,
    },
    /// The evaluation was stopped: it would have spent more than its budget allows.
    #[error("the expression was stopped: it exceeded its {0}")]
    Exceeded(crate::Limit),
    /// The program's output is nested deeper than Patchbay accepts.
    #[error("the expression's output is nested deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit that was exceeded.
        limit: usize,
    },
}
