//! What the fleet keeps in etcd: the keys under the prefix (see the table
//! in [`super`]) and the JSON values stored at them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::health::{AdminNote, AdminState};

/// What an instance publishes about itself (`instances/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub version: String,
    /// Snapshot generation (counts this instance's reloads).
    pub generation: u64,
    /// Hash over every served file's hash: equal means same files.
    pub files_hash: String,
    /// Served file name (zones-relative, `geodb` for the DB) → its hash.
    pub files: BTreeMap<String, String>,
    pub started_ms: u64,
    #[serde(default)]
    pub http: Option<String>,
}

/// Older instances read `state` and ignore the note's fields; values
/// they wrote (no note) read as overrides without reason or expiry.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AdminValue {
    pub(super) state: AdminState,
    #[serde(default)]
    pub(super) by: String,
    #[serde(default)]
    pub(super) at_ms: u64,
    #[serde(flatten)]
    pub(super) note: AdminNote,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LoadValue {
    pub(super) load: f64,
    pub(super) until_ms: u64,
    #[serde(default)]
    pub(super) by: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct VerdictValue {
    pub(super) up: bool,
}

pub(super) type EdgeKey = (String, String);

/// One key under the prefix, decoded.
pub(super) enum Key<'a> {
    Admin(&'a str, &'a str),
    Load(&'a str, &'a str),
    Health(&'a str, &'a str, &'a str),
    Instance(&'a str),
}

pub(super) fn parse_key(rest: &str) -> Option<Key<'_>> {
    let (kind, rest) = rest.split_once('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match (kind, parts.as_slice()) {
        ("admin", [z, e]) => Some(Key::Admin(z, e)),
        ("load", [z, e]) => Some(Key::Load(z, e)),
        ("health", [z, e, i]) => Some(Key::Health(z, e, i)),
        ("instances", [i]) => Some(Key::Instance(i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert!(matches!(
            parse_key("admin/cdn.example./fra1"),
            Some(Key::Admin("cdn.example.", "fra1"))
        ));
        assert!(matches!(
            parse_key("health/z./e/ns1"),
            Some(Key::Health("z.", "e", "ns1"))
        ));
        assert!(matches!(
            parse_key("instances/ns1"),
            Some(Key::Instance("ns1"))
        ));
        assert!(parse_key("admin/onlyzone").is_none());
        assert!(parse_key("other/x").is_none());
    }
}
