//! The database stage: what comes from the GeoIP DB (and the ASN DB),
//! opened only when one of those files changed.
//!
//! What the stage holds is whatever [`GeoDb::open`] derives from the file;
//! this module only decides whether to open again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::{FileStamp, stamp};
use crate::config::{ConfigError, ServerConfig};
use crate::geo::GeoDb;

/// One opened database stage, or none configured.
#[derive(Clone, Default)]
pub(super) struct DbStage {
    pub(super) db: Option<Arc<GeoDb>>,
    /// The files it was opened from, as they were.
    main: Option<(PathBuf, Option<FileStamp>)>,
    asn: Option<(PathBuf, Option<FileStamp>, Arc<GeoDb>)>,
}

impl DbStage {
    /// [`GeoDb::id`] of the database, 0 without one: a zone built against
    /// one stage is rebuilt when the stage changes.
    pub(super) fn id(&self) -> u64 {
        self.db.as_ref().map_or(0, |d| d.id())
    }

    /// Does `cfg` ask for files other than the ones this stage was opened
    /// from (a file replaced, edited, or never opened)?
    pub(super) fn stale(&self, cfg: &ServerConfig) -> bool {
        let same = |held: Option<(&PathBuf, &Option<FileStamp>)>, want: &Option<PathBuf>| {
            match (held, want) {
                (None, None) => true,
                // A file whose stamp could not be taken is never "the same".
                (Some((p, Some(s))), Some(w)) => p == w && s.still(w),
                _ => false,
            }
        };
        !same(self.main.as_ref().map(|(p, s)| (p, s)), &cfg.geodb)
            || !same(self.asn.as_ref().map(|(p, s, _)| (p, s)), &cfg.geodb_asn)
    }

    /// The stage for `cfg`: this one when nothing changed, else the files
    /// opened again (an unchanged ASN database is kept). Errors name the
    /// file; on error this stage stays as it is.
    pub(super) fn open(&self, cfg: &ServerConfig) -> Result<DbStage, Vec<ConfigError>> {
        if !self.stale(cfg) {
            return Ok(self.clone());
        }
        let main = match &cfg.geodb {
            Some(p) => p,
            None => {
                if cfg.geodb_asn.is_some() {
                    return Err(vec![ConfigError::new(
                        &cfg.path,
                        0,
                        "geodb_asn: needs geodb, the main database",
                    )]);
                }
                return Ok(DbStage::default());
            }
        };
        let asn = match &cfg.geodb_asn {
            None => None,
            Some(p) => match &self.asn {
                Some((held, Some(s), db)) if held == p && s.still(p) => {
                    Some((held.clone(), Some(*s), db.clone()))
                }
                _ => {
                    let before = stamp(p);
                    let db = Arc::new(GeoDb::open(p).map_err(|e| geo_error(p, e))?);
                    Some((p.clone(), before, db))
                }
            },
        };
        let before = stamp(main);
        let mut db = GeoDb::open(main).map_err(|e| geo_error(main, e))?;
        if let Some((_, _, a)) = &asn {
            db = db.with_asn(a.clone());
        }
        Ok(DbStage {
            db: Some(Arc::new(db)),
            main: Some((main.clone(), before)),
            asn,
        })
    }
}

/// A [`crate::geo::GeoError`] as `file:0: reason` (it names the file already).
fn geo_error(path: &Path, e: crate::geo::GeoError) -> Vec<ConfigError> {
    let e = e.to_string();
    let prefix = format!("{}: ", path.display());
    vec![ConfigError::new(
        path,
        0,
        e.strip_prefix(&prefix).unwrap_or(&e),
    )]
}
