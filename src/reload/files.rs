//! Which files make a zone, and how a build tells that one changed without
//! reading it.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// The zone files (`*.zone`) in a directory, sorted for stable output.
pub(super) fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::new(dir, 0, format!("cannot read zones directory: {e}")))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `zones/cdn.example.zone` → `zones/cdn.example.pools.yaml`.
pub(super) fn pools_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("pools.yaml")
}

/// `zones/cdn.example.zone` → `zones/cdn.example.rtt.csv`.
pub(super) fn rtt_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("rtt.csv")
}

/// `zones/cdn.example.zone` → `zones/cdn.example.load.yaml`.
pub(super) fn load_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("load.yaml")
}

/// The files beside a zone file that belong to its zone.
pub(super) fn companions(zone_file: &Path) -> [PathBuf; 3] {
    [
        pools_path(zone_file),
        rtt_path(zone_file),
        load_path(zone_file),
    ]
}

/// What identifies a file version, mostly without reading it.
///
/// Size, modification time, inode and device tell versions apart, except
/// two writes of the same size within the file system's timestamp
/// granularity (a few ms; seconds on some). A file modified less than
/// [`RACY`] before it was stamped could have such a twin, so its content's
/// hash is kept too (as git does for "racily clean" files): it is the only
/// case in which a build reads a file to find out whether it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    ino: u64,
    dev: u64,
    /// The content's hash, for a file stamped soon after it was modified.
    racy: Option<u64>,
}

/// How long after a write a stamp is not trusted alone (FAT keeps times
/// to 2 s).
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

/// The stamp of the file at `path` now (following symlinks, so a flipped
/// link counts as a change), or `None` if there is none.
pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let modified = m.modified().ok();
    // A time in the future counts as recent.
    let recent = modified.is_none_or(|t| t.elapsed().map_or(true, |age| age < RACY));
    Some(FileStamp {
        len: m.len(),
        modified,
        ino: m.ino(),
        dev: m.dev(),
        racy: if recent && m.is_file() {
            content_hash(path)
        } else {
            None
        },
    })
}

impl FileStamp {
    /// Is the file at `path` still this version?
    pub(super) fn still(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::metadata(path) else {
            return false;
        };
        (m.len(), m.modified().ok(), m.ino(), m.dev())
            == (self.len, self.modified, self.ino, self.dev)
            && self.racy.is_none_or(|h| content_hash(path) == Some(h))
    }
}

/// A hash of the file's bytes (not cryptographic: it tells versions of one
/// file apart, nobody forges them).
fn content_hash(path: &Path) -> Option<u64> {
    use std::hash::Hasher;
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = std::hash::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Some(h.finish()),
            Ok(n) => h.write(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// The versions of a set of files, taken before they were read: a build
/// made from them is still good while every stamp is the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stamps(Vec<(PathBuf, Option<FileStamp>)>);

impl Stamps {
    /// Stamps `paths` now (duplicates once).
    pub(super) fn of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Stamps {
        let mut v: Vec<(PathBuf, Option<FileStamp>)> = paths
            .into_iter()
            .map(|p| (p.to_path_buf(), stamp(p)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Stamps(v)
    }

    /// Adds `path` as stamped now, unless it is already in the set.
    pub(super) fn add(&mut self, path: &Path) {
        if let Err(at) = self.0.binary_search_by(|(p, _)| p.as_path().cmp(path)) {
            self.0.insert(at, (path.to_path_buf(), stamp(path)));
        }
    }

    /// Is every file as it was when stamped?
    pub(super) fn unchanged(&self) -> bool {
        self.0.iter().all(|(p, s)| match s {
            Some(s) => s.still(p),
            None => !p.exists(),
        })
    }
}

/// The DNSSEC key files (`*.key`, `*.private`) in `dir` as stamps: any key
/// added, removed or edited changes it, and with it every signed zone.
pub(super) fn key_stamps(dir: &Path) -> Stamps {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Stamps::of([dir]);
    };
    let files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "key" || x == "private"))
        .collect();
    Stamps::of(files.iter().map(PathBuf::as_path).chain([dir]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_see_edits_creation_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.zone");
        let b = dir.path().join("a.pools.yaml");
        std::fs::write(&a, "one").unwrap();
        let s = Stamps::of([a.as_path(), b.as_path()]);
        assert!(s.unchanged());
        std::fs::write(&b, "new").unwrap();
        assert!(!s.unchanged(), "a created file is a change");
        let s = Stamps::of([a.as_path(), b.as_path()]);
        std::fs::write(&a, "two!").unwrap();
        assert!(!s.unchanged(), "an edit is a change");
        let s = Stamps::of([a.as_path(), b.as_path()]);
        std::fs::remove_file(&b).unwrap();
        assert!(!s.unchanged(), "a removed file is a change");
    }

    /// Written twice in place with the same size, faster than the file
    /// system's clock ticks: the content tells the versions apart.
    #[test]
    fn same_size_rewrite_in_place_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.zone");
        std::fs::write(&a, "one").unwrap();
        let s = Stamps::of([a.as_path()]);
        std::fs::write(&a, "two").unwrap();
        assert!(!s.unchanged());
        let s = Stamps::of([a.as_path()]);
        assert!(s.unchanged());
    }

    #[test]
    fn renamed_over_with_same_size_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.zone");
        std::fs::write(&a, "same").unwrap();
        let s = Stamps::of([a.as_path()]);
        let tmp = dir.path().join(".a.tmp");
        std::fs::write(&tmp, "same").unwrap();
        std::fs::rename(&tmp, &a).unwrap();
        assert!(!s.unchanged());
    }
}
