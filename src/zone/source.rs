//! What loading a zone file gives: its records, each with the file and
//! line it came from, and its problems as `file:line: reason`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{Name, Record};

/// One problem in a zone file, displayed as `file:line: reason`.
///
/// `line` is 1-based; 0 means the problem concerns the whole file or zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct ZoneError {
    pub file: PathBuf,
    pub line: u32,
    pub reason: String,
}

/// A record and the place (file and first line of its entry) it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedRecord {
    pub record: Record,
    pub file: Arc<Path>,
    pub line: u32,
}

/// A loaded, validated zone. Records are in file order (`$INCLUDE`d records
/// where the directive was), owner names in the case written in the file,
/// all RDATA names absolute, every RRset with a single TTL and no duplicates.
#[derive(Debug, Clone)]
pub struct ZoneFile {
    pub origin: Name,
    pub records: Vec<SourcedRecord>,
    /// Non-fatal problems, e.g. RRset TTL mismatches that were normalised.
    pub warnings: Vec<ZoneError>,
}
