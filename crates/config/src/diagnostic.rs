//! Diagnostics: what `sluice check` reports, each naming where and what.

use std::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational, e.g. a Kubernetes kind Sluice does not use was skipped.
    Note,
    /// Accepted but worth fixing: an unknown field, an address over quota (pending).
    Warning,
    /// The configuration is invalid; `sluice check` fails.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about the manifests: the file, the document in it (1-based, counting the
/// non-empty documents of a multi-document stream), the line where known, the field path
/// (`spec.plan`, `spec.forwarders[0].name`; empty for the whole document) and the message.
///
/// Its `Display` is `addresses.yaml: document 3 (line 14): spec.plan: no AddressPlan named
/// "standard-xl-queue"`; the severity is left to the caller to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The file name as it was given.
    pub file: String,
    /// The document index within the file, 1-based; `None` for the file as a whole.
    pub document: Option<usize>,
    /// The 1-based line where the YAML library gives one.
    pub line: Option<u64>,
    /// The field path within the document, e.g. `spec.plan`; empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// Whether this diagnostic makes the configuration invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        match (self.document, self.line) {
            (Some(document), Some(line)) => write!(f, " document {document} (line {line}):")?,
            (Some(document), None) => write!(f, " document {document}:")?,
            (None, Some(line)) => write!(f, " line {line}:")?,
            (None, None) => {}
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}
