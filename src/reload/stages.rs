//! When each stage is built, and on which thread.
//!
//! Two build threads, each with a queue of requests:
//! - the **database** thread opens the GeoIP DB (and ASN DB) when their
//!   files changed, then builds every zone against the new stage on the
//!   side and posts the lot to the files thread;
//! - the **files** thread rebuilds the zones whose files changed against
//!   the database stage it holds, adopts a posted one when there is one,
//!   and swaps the snapshot in.
//!
//! So a pools, zone or RTT edit never waits for a database being opened or
//! for the zones being rebuilt against it: it is built against the stage
//! in service. Requests coalesce, and a request made while a build runs
//! gets a build that starts after it, so no edit is lost.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::build::{Zones, assemble};
use super::geodb::DbStage;
use super::quiet;
use super::status::{ReloadStatus, ZoneFailure};
use super::zone::{FedLoad, Parsed, Serials};
use crate::clock::unix_now;
use crate::config::{ConfigError, ServerConfig};
use crate::snapshot::{Shared, Snapshot};
use crate::xfr::serial::SerialBook;

/// Requests to one build thread. Tickets count requests; a request is
/// answered by the first build that starts after it.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    cv: Condvar,
}

#[derive(Default)]
struct QueueState {
    requested: u64,
    started: u64,
    done: u64,
    /// What asked for the next build.
    trigger: String,
    /// Database queue only: the files build that the last database build
    /// asked for (0: none).
    followup: u64,
    stop: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a build; returns its ticket.
    fn request(&self, trigger: &str) -> u64 {
        let mut q = self.lock();
        q.requested += 1;
        q.trigger = trigger.to_string();
        self.cv.notify_all();
        q.requested
    }

    /// Waits for a request; returns (ticket, trigger) of the build to run,
    /// or `None` when stopping.
    fn next(&self) -> Option<(u64, String)> {
        let mut q = self.lock();
        while q.started == q.requested && !q.stop {
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        if q.stop {
            return None;
        }
        q.started = q.requested;
        Some((q.started, std::mem::take(&mut q.trigger)))
    }

    fn finish(&self, ticket: u64, followup: u64) {
        let mut q = self.lock();
        q.done = ticket;
        q.followup = followup;
        self.cv.notify_all();
    }

    /// Waits until the build answering `ticket` is done; returns its
    /// follow-up (0 when stopping).
    fn wait(&self, ticket: u64) -> u64 {
        let mut q = self.lock();
        while q.done < ticket && !q.stop {
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        q.followup
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }
}

/// Problems now, by where they come from.
#[derive(Default)]
struct Errors {
    /// Zones (in file order) and the zones directory.
    zones: Vec<ConfigError>,
    /// The GeoIP and ASN databases.
    db: Vec<ConfigError>,
    /// The rest of the config read at reload (the cookie secret).
    config: Vec<ConfigError>,
    /// Per zone file: whether a last good copy serves, and why not the new.
    failures: Vec<ZoneFailure>,
}

impl Errors {
    /// All of them, as `geosteer check` orders them.
    fn all(&self) -> Vec<ConfigError> {
        let mut v = self.zones.clone();
        v.extend(self.db.iter().cloned());
        v.extend(self.config.iter().cloned());
        v
    }
}

/// The files thread's state, as of its last build: the database thread
/// starts its full build from it.
#[derive(Clone, Default)]
struct Committed {
    db: DbStage,
    zones: Zones,
}

/// Everything the build threads share.
pub(super) struct Stages {
    pub(super) cfg: ServerConfig,
    pub(super) shared: Shared,
    pub(super) registry: Arc<crate::health::Registry>,
    checker: Option<crate::health::Checker>,
    files: Queue,
    db: Queue,
    committed: Mutex<Option<Committed>>,
    /// A database stage and every zone built against it, for the files
    /// thread to adopt.
    posted: Mutex<Option<Committed>>,
    /// What the builds keep of the files they parsed.
    parsed: Parsed,
    /// Each built zone's serial, when zones are transferred out.
    serials: Option<Serials>,
    errors: Mutex<Errors>,
    status: Mutex<ReloadStatus>,
    metrics: crate::metrics::ReloadMetrics,
    /// Snapshots swapped out and perhaps still read by a query, held here
    /// so that the last reference is this one: a query thread letting go
    /// of one never frees a big snapshot (50,000 hosts' worth) on the query
    /// path, and the build thread frees them only once its build is served
    /// and answered ([`Stages::free_retired`]); the timer frees those a
    /// query still read then.
    retired: Mutex<Vec<Arc<Snapshot>>>,
    /// Snapshots were freed since the timer last looked.
    freed: std::sync::atomic::AtomicBool,
    /// Called with each new snapshot before it serves: live layers (RUM's
    /// learned tables) attach to it, so it never serves without them.
    pub(super) attach: std::sync::RwLock<Option<Attach>>,
}

/// See [`super::Reloader::set_attach`].
pub type Attach = Arc<dyn Fn(&Snapshot) + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stages {
    /// Starts both build threads; nothing is built until asked.
    pub(super) fn start(
        cfg: ServerConfig,
        registry: Arc<crate::health::Registry>,
        checker: Option<crate::health::Checker>,
    ) -> std::io::Result<Arc<Stages>> {
        let serials = cfg
            .xfr
            .serves_transfers()
            .then(|| Mutex::new(SerialBook::open(&cfg.xfr.state_file)));
        let s = Arc::new(Stages {
            cfg,
            shared: Arc::new(arc_swap::ArcSwap::from_pointee(Snapshot::new(
                Vec::new(),
                None,
                0,
            ))),
            registry,
            checker,
            files: Queue::default(),
            db: Queue::default(),
            committed: Mutex::new(None),
            posted: Mutex::new(None),
            parsed: Parsed::default(),
            serials,
            errors: Mutex::default(),
            status: Mutex::new(ReloadStatus {
                ok: true,
                at: unix_now(),
                trigger: "start".into(),
                generation: 0,
                duration_ms: 0.0,
                errors: Vec::new(),
                zones: Vec::new(),
            }),
            metrics: crate::metrics::ReloadMetrics::new(),
            retired: Mutex::default(),
            freed: Default::default(),
            attach: std::sync::RwLock::new(None),
        });
        for (name, build, nice) in [
            (
                "geosteer-geodb",
                Stages::db_build as fn(&Stages) -> Option<bool>,
                quiet::DB_NICE,
            ),
            ("geosteer-build", Stages::files_build, quiet::FILES_NICE),
        ] {
            let me = s.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    // The first build (the one the server waits for at
                    // start) runs at normal priority; the rest as quiet
                    // neighbours of the query path.
                    let mut lowered = false;
                    while let Some(built) = build(&me) {
                        if built && !lowered {
                            quiet::lower_this_thread(nice);
                            lowered = true;
                        }
                    }
                })?;
        }
        Ok(s)
    }

    /// Stops both threads after their build in progress.
    pub(super) fn stop(&self) {
        self.files.stop();
        self.db.stop();
    }

    /// Asks for the zones to be brought up to date with their files.
    pub(super) fn request_files(&self, trigger: &str) -> u64 {
        self.files.request(trigger)
    }

    /// Asks for the databases to be opened again if their files changed.
    pub(super) fn request_db(&self, trigger: &str) -> u64 {
        self.db.request(trigger)
    }

    /// Rebuilds what changed, database included, and waits for the
    /// snapshot that has it all.
    pub(super) fn reload_and_wait(&self, trigger: &str) -> Result<u64, Vec<ConfigError>> {
        let files = self.files.request(trigger);
        let db = self.db.request(trigger);
        let followup = self.db.wait(db);
        self.files.wait(files.max(followup));
        let errs = lock(&self.errors).all();
        if errs.is_empty() {
            Ok(self.shared.load().generation)
        } else {
            Err(errs)
        }
    }

    /// Why the server cannot start on what the first builds made: no zone
    /// loaded at all, or a database or config error. (A broken zone among
    /// others that load does not stop them: it answers SERVFAIL.)
    pub(super) fn start_errors(&self) -> Option<Vec<ConfigError>> {
        let errors = lock(&self.errors);
        let snap = self.shared.load();
        let fatal = snap.generation == 0
            || (snap.zones.is_empty() && self.cfg.xfr.secondaries.is_empty())
            || !errors.db.is_empty()
            || !errors.config.is_empty();
        fatal.then(|| errors.all())
    }

    pub(super) fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// The database thread's build: waits for a request, opens the
    /// databases if their files changed, and builds every zone against the
    /// new stage for the files thread to adopt. `None` when stopping, else
    /// whether it built anything.
    fn db_build(&self) -> Option<bool> {
        let (ticket, trigger) = self.db.next()?;
        let started = Instant::now();
        // The newest state: one posted and not yet adopted, or in service.
        let current = lock(&self.posted)
            .clone()
            .or_else(|| lock(&self.committed).clone());
        let first = current.is_none();
        let current = current.unwrap_or_default();
        if !first && !current.db.stale(&self.cfg) {
            self.db.finish(ticket, 0);
            return Some(false);
        }
        let opened = guarded("opening the GeoIP database", || current.db.open(&self.cfg));
        let stage = match opened {
            Ok(stage) => stage,
            Err(errs) => {
                for e in &errs {
                    tracing::error!(
                        trigger,
                        "database not reloaded, still serving the last good one: {e}"
                    );
                }
                lock(&self.errors).db = errs;
                self.metrics.failed();
                self.set_status(&trigger, started, false);
                self.db.finish(ticket, 0);
                return Some(true);
            }
        };
        lock(&self.errors).db.clear();
        let db_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut zones = current.zones;
        let pass = guarded("building the zones", || {
            Ok(zones.build(
                &self.cfg,
                &*self.registry,
                &stage,
                &self.parsed,
                self.serials.as_ref(),
            ))
        });
        tracing::info!(
            trigger,
            db_ms,
            zones_ms = started.elapsed().as_secs_f64() * 1e3 - db_ms,
            rebuilt = pass.as_ref().map_or(0, |p| p.rebuilt),
            "database stage built"
        );
        *lock(&self.posted) = Some(Committed { db: stage, zones });
        let followup = self.files.request(&trigger);
        self.db.finish(ticket, followup);
        Some(true)
    }

    /// The files thread's build: brings the zones up to date against the
    /// stage in service (or one just posted) and swaps the snapshot in.
    fn files_build(&self) -> Option<bool> {
        let (ticket, trigger) = self.files.next()?;
        let started = Instant::now();
        let posted = lock(&self.posted).take();
        let committed = lock(&self.committed).clone();
        let mut state = match (committed, posted) {
            (Some(mut mine), Some(new)) => {
                mine.zones.adopt(new.zones);
                mine.db = new.db;
                mine
            }
            (None, Some(new)) => new,
            (Some(mine), None) => mine,
            // Nothing to build on before the first database stage: the
            // database thread asks again when it has one.
            (None, None) => {
                self.files.finish(ticket, 0);
                return Some(false);
            }
        };
        let pass = guarded("building the zones", || {
            Ok(state.zones.build(
                &self.cfg,
                &*self.registry,
                &state.db,
                &self.parsed,
                self.serials.as_ref(),
            ))
        });
        let old = self.shared.load_full();
        let protocol = match self.cfg.protocol() {
            Ok(p) => Ok(p),
            Err(e) => Err((e, old.protocol.clone())),
        };
        let (zones, mut unloaded, loads) = state.zones.served();
        super::build::add_awaiting_transfer(&self.cfg, &zones, &mut unloaded);
        let mut errors = lock(&self.errors);
        errors.zones = state.zones.errors();
        if let Err(e) = &pass {
            errors.zones.extend(e.iter().cloned());
        }
        errors.config = protocol
            .as_ref()
            .err()
            .map(|(e, _)| e.clone())
            .into_iter()
            .collect();
        errors.failures = state
            .zones
            .failures()
            .into_iter()
            .map(|(file, serving, errors)| ZoneFailure {
                zone_file: file,
                serving_last_good: serving,
                errors,
            })
            .collect();
        let ok = errors.all().is_empty();
        drop(errors);
        // A build with errors swaps only what it changed; a clean one
        // always swaps (a reload that finds nothing new still says so).
        let changed = ok
            || state.db.id() != old.geodb.as_ref().map_or(0, |d| d.id())
            || zones.len() != old.zones.len()
            || unloaded.len() != old.unloaded.len()
            || zones.iter().any(|z| {
                !old.zones
                    .get(&z.tree.apex_lower)
                    .is_some_and(|o| Arc::ptr_eq(o, z))
            });
        let secondary_only = ok && !self.cfg.xfr.secondaries.is_empty();
        if state.zones.is_empty() && old.generation == 0 && !secondary_only {
            // Nothing listed at all (the zones directory is unreadable):
            // no snapshot to start with.
        } else if changed {
            let generation = old.generation + 1;
            let protocol = match protocol {
                Ok(p) => p,
                Err((_, kept)) => kept,
            };
            let zones_ms = started.elapsed().as_secs_f64() * 1e3;
            let snap = assemble(zones, unloaded, &state.db, protocol, generation);
            drop(old);
            self.swap(snap, loads);
            tracing::info!(
                trigger,
                generation,
                rebuilt = pass.as_ref().map_or(0, |p| p.rebuilt),
                reused = pass.as_ref().map_or(0, |p| p.reused),
                zones_ms,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "reloaded"
            );
        }
        if !ok {
            self.metrics.failed();
        }
        if !self.cfg.watch && pass.as_ref().is_ok_and(|p| p.torn > 0) {
            // Written while read: read again. (A watcher has seen the
            // write and asks for that itself, after a quiet time.)
            self.files.request("file changed while read");
        }
        *lock(&self.committed) = Some(state);
        self.set_status(&trigger, started, ok);
        self.files.finish(ticket, 0);
        // The snapshot this one replaced, once served and answered: off
        // the path from the write to its answer.
        self.free_retired();
        Some(true)
    }

    /// Frees the snapshots swapped out that no query reads any more.
    fn free_retired(&self) {
        let gone: Vec<Arc<Snapshot>> = {
            let mut retired = lock(&self.retired);
            let (gone, kept) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|s| Arc::strong_count(s) == 1);
            *retired = kept;
            gone
        };
        // Freed unlocked: a swap need not wait for it.
        if !gone.is_empty() {
            drop(gone);
            self.freed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Frees the snapshots swapped out that no query reads any more; were
    /// any freed since this was last asked? (Then their memory can be
    /// handed back to the system.)
    pub(super) fn retired_freed(&self) -> bool {
        self.free_retired();
        self.freed.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Swaps `snap` in, then does the health bookkeeping for it.
    fn swap(&self, snap: Snapshot, loads: Vec<FedLoad>) {
        if let Some(f) = &*self.attach.read().unwrap_or_else(|e| e.into_inner()) {
            f(&snap);
        }
        let db_epoch = snap.geodb.as_ref().map(|db| db.info().build_epoch);
        self.metrics
            .observe(snap.generation, snap.built_at, db_epoch);
        let old = self.shared.swap(Arc::new(snap));
        lock(&self.retired).push(old);
        self.metrics.reloaded();
        self.after_swap(loads);
    }

    /// Health bookkeeping for the snapshot just swapped in: feed file loads,
    /// forget removed edges, probe the current set.
    fn after_swap(&self, loads: Vec<FedLoad>) {
        let snap = self.shared.load();
        for (zone, edge, load, ttl) in loads {
            let _ = self.registry.feed_load(Some(&zone), &edge, load, ttl);
        }
        let mut live = std::collections::HashSet::new();
        let mut targets = Vec::new();
        for zone in snap.zones.values() {
            for e in &zone.steering.edges {
                live.insert((zone.name.clone(), e.name.clone()));
                if let Some(check) = &e.check {
                    targets.push(crate::health::ProbeTarget {
                        zone: zone.name.clone(),
                        edge: e.name.clone(),
                        addresses: e.probe_addresses(),
                        check: check.clone(),
                        health: e.health.clone(),
                    });
                }
            }
        }
        self.registry.retain(&live);
        if let Some(c) = &self.checker {
            c.reconcile(targets);
        }
    }

    fn set_status(&self, trigger: &str, started: Instant, ok: bool) {
        let errors = lock(&self.errors);
        let all = errors.all();
        *lock(&self.status) = ReloadStatus {
            ok: ok && all.is_empty(),
            at: unix_now(),
            trigger: trigger.to_string(),
            generation: self.shared.load().generation,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            errors: all.iter().map(|e| e.to_string()).collect(),
            zones: errors.failures.clone(),
        };
    }
}

/// Runs a build step, turning a panic into an error: the build threads
/// must outlive a bug in one build (the old state keeps serving).
fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<ConfigError>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("internal error while {what}: {msg}");
            Err(vec![ConfigError::new(
                std::path::Path::new(""),
                0,
                format!("internal error while {what}: {msg}"),
            )])
        }
    }
}
