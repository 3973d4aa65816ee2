//! How and when the served state is built from files, and swapped in.
//!
//! State comes in stages, each rebuilt only when its own inputs change:
//! - [`geodb`]: the **database stage**, opened from the GeoIP DB (and ASN
//!   DB) when those files change;
//! - [`zone`] and [`build`]: the **files stage**, one zone at a time from
//!   its zone, pools, RTT, load and key files against the database stage;
//!   a zone whose files are unchanged is reused as built, and a zone whose
//!   files are broken keeps its last good copy (or answers SERVFAIL) while
//!   the others go on;
//! - the live layer (health, load, overrides) is not built here at all.
//!
//! [`stages`] runs the two builds on their own low-priority threads, so an
//! edit never waits for a database being opened; [`watch`] and [`timer`]
//! ask for builds when files change or a DNSSEC key's time comes; SIGHUP
//! and the API ask through [`Reloader::reload`]. [`quiet`] keeps builds
//! from crowding the query path. [`files`] says which files make a zone.

mod build;
mod files;
mod geodb;
mod quiet;
mod stages;
mod status;
mod timer;
mod watch;
mod zone;

use std::sync::Arc;

pub use build::build_snapshot;
pub use status::ReloadStatus;
pub use zone::build_zone;

use watch::Watch;

use crate::config::{ConfigErrors, ServerConfig};
use stages::Stages;

/// Owns the served snapshot and keeps it up to date with the files.
pub struct Reloader {
    pub cfg: ServerConfig,
    pub registry: Arc<crate::health::Registry>,
    stages: Arc<Stages>,
    _watch: Option<Watch>,
}

impl Reloader {
    /// Starts the file watcher (unless `watch: false`), then builds the
    /// first snapshot, so a change made while it builds is built next.
    /// Fails when no zone loads, or on a database or config error: a
    /// broken zone among others is reported and answered SERVFAIL, the
    /// others served.
    pub fn new(
        cfg: ServerConfig,
        registry: Arc<crate::health::Registry>,
        checker: Option<crate::health::Checker>,
    ) -> Result<Arc<Reloader>, ConfigErrors> {
        if let Some(d) = &cfg.dnssec {
            crate::dnssec::sign::SigCache::global().set_capacity(d.cache_size);
        }
        quiet::tune_allocator();
        let io = |e: std::io::Error| {
            ConfigErrors(vec![crate::config::ConfigError::new(
                &cfg.path,
                0,
                format!("cannot start the build threads: {e}"),
            )])
        };
        let stages = Stages::start(cfg.clone(), registry.clone(), checker).map_err(io)?;
        let watch = if !cfg.watch {
            tracing::info!("file watching is off (watch: false); reload with SIGHUP or the API");
            None
        } else {
            match watch::start(&cfg, Arc::downgrade(&stages)) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!("file watching is off: {e}; reload with SIGHUP or the API");
                    None
                }
            }
        };
        let r = Reloader {
            cfg,
            registry,
            stages,
            _watch: watch,
        };
        // The first build, errors and all (a broken zone is not fatal).
        let _ = r.stages.reload_and_wait("start");
        if let Some(errs) = r.stages.start_errors() {
            return Err(ConfigErrors(errs));
        }
        for e in r.status().zones.iter().flat_map(|z| &z.errors) {
            tracing::error!("zone not loaded, answering SERVFAIL: {e}");
        }
        timer::start(Arc::downgrade(&r.stages));
        Ok(Arc::new(r))
    }

    /// The snapshot handle the transports read.
    /// Sets what each new snapshot is handed to before it is swapped in.
    pub fn set_attach(&self, f: Option<stages::Attach>) {
        *self
            .stages
            .attach
            .write()
            .unwrap_or_else(|e| e.into_inner()) = f;
    }

    pub fn shared(&self) -> &crate::snapshot::Shared {
        &self.stages.shared
    }

    pub fn status(&self) -> ReloadStatus {
        self.stages.status()
    }

    /// Brings everything up to date with the files (databases included)
    /// and waits for the snapshot that has it; the generation it serves,
    /// or every problem found (broken zones keep their last good copy, the
    /// others' edits are served). Blocking: call from a blocking thread.
    pub fn reload(&self, trigger: &str) -> Result<u64, ConfigErrors> {
        self.stages.reload_and_wait(trigger).map_err(ConfigErrors)
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.stages.stop();
    }
}
