//! Watching the files: a change to a zone's files asks the files stage for
//! a build, a change to a database file asks the database stage; each
//! after a short quiet time, so an rsync of many files is one build.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::stages::Stages;
use crate::config::ServerConfig;

/// How long the files must be quiet before a build.
const QUIET: Duration = Duration::from_millis(150);
/// The longest a build waits for quiet after the first change.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Keeps the file watcher alive; it stops when dropped.
pub(super) struct Watch {
    _watcher: Arc<std::sync::Mutex<notify::RecommendedWatcher>>,
}

/// What a change asks for.
#[derive(Clone, Copy, Default)]
struct Wanted {
    files: bool,
    db: bool,
}

impl Wanted {
    fn any(self) -> bool {
        self.files || self.db
    }
}

/// Starts watching `cfg`'s files for `stages`.
///
/// Raw notify plus our own debounce rather than a debouncer crate:
/// building *reads* the files, and the read (access) events must be
/// filtered out by kind, or every build would trigger the next one.
pub(super) fn start(cfg: &ServerConfig, stages: Weak<Stages>) -> Result<Watch, notify::Error> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(tx)?;
    for d in watch_dirs(cfg) {
        watcher.watch(&d, RecursiveMode::NonRecursive)?;
    }
    let watcher = Arc::new(std::sync::Mutex::new(watcher));
    let weak_watcher = Arc::downgrade(&watcher);
    let dirs_cfg = cfg.clone();
    let cfg = cfg.clone();
    let wanted = move |ev: &notify::Result<notify::Event>| match ev {
        Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => Wanted::default(),
        Ok(ev) => ev.paths.iter().fold(Wanted::default(), |w, p| {
            let k = classify(&cfg, p);
            Wanted {
                files: w.files || k.files,
                db: w.db || k.db,
            }
        }),
        Err(e) => {
            tracing::warn!("file watch error: {e}");
            Wanted::default()
        }
    };
    std::thread::Builder::new()
        .name("geosteer-watch".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            while let Ok(ev) = rx.recv() {
                let mut want = wanted(&ev);
                if !want.any() {
                    continue;
                }
                // Debounce: build after QUIET without *relevant* events,
                // but no later than MAX_WAIT after the first one, so a
                // file rewritten every 100 ms still gets loaded.
                // Irrelevant events (the state file, other files in the
                // parent directory) neither trigger nor delay.
                let first = Instant::now();
                let mut last = first;
                loop {
                    let deadline = (last + QUIET).min(first + MAX_WAIT);
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    match rx.recv_timeout(left) {
                        Ok(ev) => {
                            let w = wanted(&ev);
                            if w.any() {
                                last = Instant::now();
                                want.files |= w.files;
                                want.db |= w.db;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                // Re-arm first: a replaced directory (symlink flip) needs
                // a fresh watch, and a change made while the build runs
                // must not be missed.
                let Some(w) = weak_watcher.upgrade() else {
                    break;
                };
                {
                    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                    for dir in watch_dirs(&dirs_cfg) {
                        let _ = w.unwatch(&dir);
                        if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                            tracing::warn!(dir = %dir.display(), "cannot watch: {e}");
                        }
                    }
                }
                let Some(stages) = stages.upgrade() else {
                    break;
                };
                if want.db {
                    stages.request_db("file change");
                }
                if want.files {
                    stages.request_files("file change");
                }
            }
        })
        .map_err(|e| notify::Error::generic(&format!("cannot start the file watcher: {e}")))?;
    Ok(Watch { _watcher: watcher })
}

/// The directories whose changes matter: the zones directory (and its
/// parent, to see the directory itself being replaced, e.g. a symlink
/// flip), the databases' directories and the DNSSEC keys directory.
fn watch_dirs(cfg: &ServerConfig) -> Vec<PathBuf> {
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![cfg.zones.clone(), dir_of(&cfg.zones)];
    dirs.extend(cfg.geodb.iter().chain(&cfg.geodb_asn).map(|db| dir_of(db)));
    if let Some(d) = &cfg.dnssec
        && d.keys.is_dir()
    {
        dirs.push(d.keys.clone());
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Which stage a change at `path` concerns, if any.
fn classify(cfg: &ServerConfig, path: &Path) -> Wanted {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let parent_is = |dir: &Path| path.parent().is_some_and(|p| canon(p) == dir);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let db = cfg.geodb.iter().chain(&cfg.geodb_asn).any(|db| {
        path.file_name() == db.file_name() && db.parent().is_some_and(|p| parent_is(&canon(p)))
    });
    // Anything in the zones dir except editor droppings; the zones dir
    // entry itself; the key files.
    let keys = cfg.dnssec.as_ref().map(|d| canon(&d.keys));
    let files = (keys.as_ref().is_some_and(|k| parent_is(k))
        && (name.ends_with(".key") || name.ends_with(".private")))
        || (parent_is(&canon(&cfg.zones))
            && !name.ends_with('~')
            && !name.ends_with(".swp")
            && !name.starts_with(".#"))
        || path.file_name() == cfg.zones.file_name()
            && cfg.zones.parent().is_some_and(|p| parent_is(&canon(p)));
    Wanted { files, db }
}
