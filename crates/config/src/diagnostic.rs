//! Configuration problems, each pinned to a file, line and column.

use std::fmt;
use std::path::PathBuf;

/// One problem in the configuration, in a plain sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The connector the problem is in, when it is in one. The engine does
    /// not build a connector whose configuration was refused already, so
    /// its problems are told once.
    pub connector: Option<String>,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            column,
            message: message.into(),
            connector: None,
        }
    }

    /// The same problem, marked as one of connector `name`.
    pub fn in_connector(mut self, name: &str) -> Self {
        self.connector = Some(name.to_string());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file.display(), self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            (line, column) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.file.display(),
                self.message
            ),
        }
    }
}

/// Every problem found in a project, sorted by file and position.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    pub fn extend(&mut self, other: Report) {
        self.diagnostics.extend(other.diagnostics);
    }

    /// `Ok(())` when there is nothing to report, the sorted report otherwise.
    pub fn into_result(self) -> Result<(), Report> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.sorted())
        }
    }

    /// The same problems ordered by file and position, without repeats.
    pub fn sorted(mut self) -> Report {
        self.diagnostics.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
        });
        self.diagnostics.dedup();
        self
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        let n = self.diagnostics.len();
        write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

impl From<Diagnostic> for Report {
    fn from(d: Diagnostic) -> Self {
        Report {
            diagnostics: vec![d],
        }
    }
}
