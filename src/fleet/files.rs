//! Fingerprints of the files an instance serves, for drift between
//! instances: a sync that missed one shows up as a different hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Hashes each zone and pools file (SHA-256 of its bytes, as on disk now)
/// and takes the GeoIP DB's identity (type, build epoch, size) as given,
/// instead of hashing a database of 100 MB on every reload. Returns file
/// name → hash and one hash over all of them.
pub fn fingerprint(
    zones: &[(PathBuf, Option<PathBuf>)],
    geodb: Option<&str>,
) -> (BTreeMap<String, String>, String) {
    let mut files = BTreeMap::new();
    for (zone, pools) in zones {
        for p in std::iter::once(zone).chain(pools.iter()) {
            let h = match std::fs::read(p) {
                Ok(b) => hex(&Sha256::digest(&b)),
                Err(e) => format!("unreadable: {}", e.kind()),
            };
            files.insert(name(p), h);
        }
    }
    if let Some(db) = geodb {
        files.insert("geodb".into(), hex(&Sha256::digest(db.as_bytes())));
    }
    let mut all = Sha256::new();
    for (n, h) in &files {
        all.update(n.as_bytes());
        all.update([0]);
        all.update(h.as_bytes());
        all.update([b'\n']);
    }
    (files, hex(&all.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_same_hash_and_a_change_shows() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("a.example.zone");
        let p = d.path().join("a.example.pools.yaml");
        std::fs::write(&z, "x").unwrap();
        std::fs::write(&p, "y").unwrap();
        let set = [(z.clone(), Some(p.clone()))];
        let (f1, h1) = fingerprint(&set, Some("db:1"));
        let (_, h2) = fingerprint(&set, Some("db:1"));
        assert_eq!(h1, h2);
        assert_eq!(f1.len(), 3);
        std::fs::write(&p, "y2").unwrap();
        let (f3, h3) = fingerprint(&set, Some("db:1"));
        assert_ne!(h1, h3);
        assert_ne!(f1["a.example.pools.yaml"], f3["a.example.pools.yaml"]);
        assert_eq!(f1["a.example.zone"], f3["a.example.zone"]);
    }
}
