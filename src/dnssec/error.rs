//! What can go wrong with keys and signing.

use std::path::PathBuf;

/// Everything that can go wrong with keys and signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnssecError {
    /// A key file is unreadable or malformed. Never carries key material.
    #[error("{}:{line}: {reason}", file.display())]
    KeyFile {
        file: PathBuf,
        line: u32,
        reason: String,
    },
    /// A zone has key files but none of them signs now.
    #[error("{dir}: zone {zone} has key files but no active key")]
    NoActiveKey { dir: String, zone: String },
    #[error("signing failed")]
    Sign,
    #[error("keygen: {0}")]
    Generate(String),
}

impl DnssecError {
    /// (file, line, reason) for the config error list.
    pub fn parts(&self) -> (PathBuf, u32, String) {
        match self {
            DnssecError::KeyFile { file, line, reason } => (file.clone(), *line, reason.clone()),
            DnssecError::NoActiveKey { dir, zone } => (
                PathBuf::from(dir),
                0,
                format!("zone {zone} has key files but no active key"),
            ),
            other => (PathBuf::new(), 0, other.to_string()),
        }
    }
}
