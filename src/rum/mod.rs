//! Steering from real users (RUM): a snippet in the operator's pages
//! times a few edges from each browser, and the resolver probe in it
//! tells which resolver asks for which users; geosteer learns an RTT table
//! keyed by client network from that, and steers with it.
//!
//! Beside the query path, never in it:
//!
//! - [`listener`]: the public listener (`rum.listen`): the snippet
//!   ([`snippet`]), configs with signed [`token`]s, beacons, each behind
//!   the guards (`guard`: a rate per client network, a token once);
//! - [`probe`]: the DNS workers push resolver probes into a lock-free
//!   queue;
//! - the listener has a runtime and thread of its own, and it and the
//!   aggregator run nicer than the query threads (`SCHED_BATCH`, nice 10);
//! - the aggregator thread (here; the [`Rum`] it shares with the
//!   listener and the API is in `engine`) drains beacons and probes into the
//!   [`cells`] and, when they change, builds each zone's
//!   [`crate::steer::Learned`] table and swaps it into the zone's slot,
//!   which `steer::decide` reads with one atomic load;
//! - [`persist`]: the state file, periodically and on shutdown;
//! - [`api`]: `/api/rum` and `geosteer rum export`;
//! - [`crate::fleet`]'s RUM link shares compact aggregates through etcd.

pub mod api;
pub mod cells;
pub mod config;
mod engine;
mod guard;
pub mod listener;
pub mod persist;
pub mod probe;
pub mod snippet;
pub mod token;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use api::LearnedDetail;
pub use cells::State;
pub use config::{RumConfig, RumRaw};
pub use engine::{Metrics, Published, Rum};
pub use probe::ProbeQueue;
pub use token::Secret;

use crate::priority::{SpawnError, spawn_beside};
use engine::lock;
use guard::{Limiter, Seen};

use crate::clock::unix_now;
use crate::snapshot::{Shared, Snapshot};

/// Beacons waiting for the aggregator before the listener drops them.
pub const BEACON_QUEUE: usize = 65_536;
/// How often the aggregator wakes to drain its queues: it sleeps between
/// ticks rather than waking per beacon (a wake-up per beacon cost more
/// than taking it).
const TICK: Duration = Duration::from_millis(50);
/// Tables are rebuilt at most this often (and at most a quarter of the
/// time goes to rebuilding, however big they get).
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// Client networks kept per zone for the status panel's "moved by
/// learning" list (it decides for each, so a few hundred).
const TOP_LISTED: usize = 200;
/// Expiry runs this often.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);
/// The state file is written this often while something changed.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// How much nicer than the query threads the listener and the aggregator
/// run: a beacon flood on a busy core yields to a waking DNS worker
/// instead of sharing the core with it evenly.
const NICE: libc::c_int = 10;

/// Why RUM could not start.
#[derive(Debug, thiserror::Error)]
pub enum RumError {
    #[error("rum.secret_file: {0}")]
    Secret(#[from] token::SecretError),
    #[error("rum.cpus: {0}")]
    Cpus(#[source] std::io::Error),
    #[error("rum: its threads did not start: {0}")]
    Thread(#[source] std::io::Error),
    #[error("rum.listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Rum {
    /// Reads (or makes) the secret, loads the state file, publishes what it
    /// holds into the serving snapshot, binds the listener and starts the
    /// aggregator. Call on a tokio runtime.
    pub async fn start(cfg: RumConfig, shared: Shared) -> Result<Arc<Rum>, RumError> {
        let secret = Secret::load_or_create(&cfg.secret_file)?;
        let mut state = State::new(
            cfg.min_samples,
            cfg.half_life.as_secs_f64(),
            cfg.max_age.as_secs(),
        );
        match persist::load(&cfg.state_file, &mut state) {
            Ok(()) => {
                let (cells, _) = state.counts();
                if cells > 0 {
                    tracing::info!(file = %cfg.state_file.display(), cells, resolvers = state.links.len(), "rum: learned data restored");
                }
            }
            Err(e) => tracing::error!("rum: state file not used, starting empty: {e}"),
        }
        state.expire(unix_now());
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| RumError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| RumError::Bind {
            addr: cfg.listen,
            source,
        })?;
        // The listener runs on its own runtime (below), on a thread made
        // nicer than the query threads.
        let listener = listener.into_std().map_err(|source| RumError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let (tx, rx) = sync_channel(BEACON_QUEUE);
        let rum = Arc::new(Rum {
            beacons_allowed: Limiter::new(cfg.rate),
            configs_allowed: Limiter::new(cfg.rate),
            seen: Seen::default(),
            cfg,
            secret,
            shared,
            state: Mutex::new(state),
            beacons: tx,
            probes: Arc::new(ProbeQueue::default()),
            metrics: Metrics::new(),
            addr,
            stop: AtomicBool::new(false),
            poke: AtomicU64::new(0),
            published: Mutex::new(Published::default()),
            aggregator: Mutex::new(None),
            listener: Mutex::new(None),
        });
        rum.attach(&rum.shared.load());
        let cpus = rum.cfg.cpus.clone();
        let spawn_err = |e| match e {
            SpawnError::Pin(e) => RumError::Cpus(e),
            SpawnError::Spawn(e) => RumError::Thread(e),
        };
        let me = rum.clone();
        let thread = spawn_beside("geosteer-rum", NICE, &cpus, move || aggregate(me, rx))
            .map_err(spawn_err)?;
        *lock(&rum.aggregator) = Some(thread);
        let (stop, mut rx) = watch::channel(false);
        let me = rum.clone();
        let task = spawn_beside("geosteer-rum-http", NICE, &cpus, move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        listener::serve(listener, me, async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await
                    })
                });
            if let Err(e) = served {
                tracing::error!("rum: the listener stopped: {e}");
            }
        });
        let task = match task {
            Ok(t) => t,
            Err(e) => {
                rum.stop().await;
                return Err(spawn_err(e));
            }
        };
        *lock(&rum.listener) = Some((task, stop));
        tracing::info!(rum = %addr, "RUM listener up");
        Ok(rum)
    }

    /// Stops the listener and the aggregator, which writes the state file.
    pub async fn stop(&self) {
        let listener = lock(&self.listener).take();
        if let Some((task, stop)) = listener {
            let _ = stop.send(true);
            let _ = tokio::task::spawn_blocking(move || task.join()).await;
        }
        self.stop.store(true, Ordering::Release);
        let thread = lock(&self.aggregator).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// The learned state, locked (briefly: the aggregator waits meanwhile).
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// What the last table build made.
    pub fn published(&self) -> Published {
        lock(&self.published).clone()
    }

    /// Asks the aggregator to rebuild the tables now.
    pub fn poke(&self) {
        self.poke.fetch_add(1, Ordering::Release);
    }

    /// Builds every zone's learned table for `snap` and swaps it into the
    /// zone's slot: with the first snapshot, and (through the reloader)
    /// with each new one before it serves, so a reload never serves without
    /// what was learned.
    pub fn attach(&self, snap: &Snapshot) {
        let started = Instant::now();
        let now = unix_now();
        let rows: Vec<_> = {
            let mut st = self.state();
            st.dirty = false;
            snap.zones
                .values()
                .filter(|z| !z.steering.edges.is_empty())
                .map(|z| (z.clone(), st.rows(&z.name, &z.steering)))
                .collect()
        };
        self.publish(rows, now, started);
    }

    /// The reloader's hook, before a new snapshot serves: a zone's slot is
    /// kept across reloads, and its table stays good while the zone's edge
    /// list is the same, so only zones whose list changed wait for a build
    /// here; the aggregator rebuilds the rest (bias changes) a tick later.
    pub fn attach_changed(&self, snap: &Snapshot) {
        let stale = |z: &crate::snapshot::Zone| {
            let id = z.steering.live().learned().map(|l| l.edges_id());
            id.is_some_and(|id| id != z.steering.edges_id())
        };
        let mut st = self.state();
        for z in snap.zones.values().filter(|z| stale(z)) {
            let table = st.rows(&z.name, &z.steering).table(&z.steering);
            z.steering.live().move_to(table);
        }
        st.dirty = true;
    }

    /// Swaps each zone's table into its slot and notes what was published.
    fn publish(
        &self,
        rows: Vec<(Arc<crate::snapshot::Zone>, cells::Rows)>,
        now: u64,
        started: Instant,
    ) {
        let mut zones = Vec::new();
        let mut top = std::collections::HashMap::new();
        let mut steering = 0;
        for (z, r) in rows {
            let table = r.table(&z.steering);
            let (nets, best) = best_sampled(&r.clients);
            zones.push((z.name.clone(), nets, r.users.len()));
            steering += r.clients.len();
            top.insert(z.name.clone(), best);
            // A reload may have moved the slot to a new edge list since the
            // rows were gathered: then the next tick builds for it.
            z.steering.live().set_learned_for(
                z.steering.edges_id(),
                (table.cells() > 0).then(|| Arc::new(table)),
            );
        }
        self.metrics.steering_cells.set(steering as f64);
        *lock(&self.published) = Published {
            at: now,
            zones,
            top,
            build_ms: started.elapsed().as_secs_f64() * 1e3,
        };
    }

    /// Checks a drained probe's label and hands it to the state.
    fn take_probes(&self, st: &mut State, raw: &[probe::RawProbe], now: u64) {
        for p in raw {
            let Some(id) = self.secret.probe_id(&p.label) else {
                self.metrics.probes_bad.increment(1);
                continue;
            };
            let ecs = p
                .ecs
                .and_then(|(a, len)| ipnet::IpNet::new(a, len).ok().map(|n| n.trunc()));
            let linked = st.add_probe(&cells::Probe {
                id,
                resolver: p.resolver,
                ecs,
                at: now,
            });
            if linked {
                self.metrics.probes_linked.increment(1);
            } else {
                self.metrics.probes_waiting.increment(1);
            }
        }
    }

    fn save(&self) {
        let bytes = {
            let mut st = self.state();
            st.unsaved = false;
            persist::encode(&st, unix_now())
        };
        if let Err(e) = persist::write(&self.cfg.state_file, &bytes) {
            tracing::error!("rum: learned data not saved: {e}");
            self.state().unsaved = true;
        }
    }
}

/// How many client networks `rows` has, and those with the most samples
/// (their best-sampled edge's), most first: the ones the status panel
/// looks at.
fn best_sampled(rows: &[cells::LearnedRow]) -> (usize, Vec<(ipnet::IpNet, u32)>) {
    let mut by_net: std::collections::HashMap<ipnet::IpNet, u32> = Default::default();
    for r in rows {
        let n = by_net.entry(r.net).or_default();
        *n = (*n).max(r.samples);
    }
    let count = by_net.len();
    let mut v: Vec<_> = by_net.into_iter().collect();
    let by_samples = |a: &(ipnet::IpNet, u32)| (std::cmp::Reverse(a.1), a.0);
    if v.len() > TOP_LISTED {
        v.select_nth_unstable_by_key(TOP_LISTED, by_samples);
        v.truncate(TOP_LISTED);
    }
    v.sort_by_key(by_samples);
    (count, v)
}

/// The aggregator thread: drains the queues into the state, rebuilds and
/// publishes the tables when something changed, expires, saves.
fn aggregate(rum: Arc<Rum>, rx: Receiver<cells::Beacon>) {
    let mut batch = Vec::with_capacity(1024);
    let mut probes = Vec::with_capacity(1024);
    let mut last_publish = Instant::now();
    let mut last_gen = rum.shared.load().generation;
    let mut last_poke = rum.poke.load(Ordering::Acquire);
    let mut last_expire = Instant::now();
    let mut last_save = Instant::now();
    let mut dropped_probes = 0u64;
    let mut build_time = Duration::ZERO;
    loop {
        let stopping = rum.stop.load(Ordering::Acquire);
        std::thread::sleep(TICK);
        // Everything queued now (the queues are bounded).
        while let Ok(b) = rx.try_recv() {
            batch.push(b);
        }
        while let Some(p) = rum.probes.pop() {
            probes.push(p);
        }
        let now = unix_now();
        if !batch.is_empty() || !probes.is_empty() {
            let mut st = rum.state();
            for b in batch.drain(..) {
                st.add_beacon(&b);
            }
            rum.take_probes(&mut st, &probes, now);
            probes.clear();
        }
        let full = rum.probes.full.load(Ordering::Relaxed);
        if full > dropped_probes {
            rum.metrics.dropped_probes.increment(full - dropped_probes);
            dropped_probes = full;
        }
        let snap = rum.shared.load();
        let poke = rum.poke.load(Ordering::Acquire);
        let due = last_publish.elapsed() >= PUBLISH_EVERY.max(build_time * 4);
        if snap.generation != last_gen || (due && (rum.state().dirty || poke != last_poke)) {
            let t = Instant::now();
            rum.attach(&snap);
            build_time = t.elapsed();
            last_publish = Instant::now();
            last_gen = snap.generation;
            last_poke = poke;
        }
        drop(snap);
        if last_expire.elapsed() >= EXPIRE_EVERY {
            rum.state().expire(now);
            last_expire = Instant::now();
        }
        {
            let st = rum.state();
            let (cells, pending) = st.counts();
            rum.metrics.cells.set(cells as f64);
            rum.metrics.pending.set(pending as f64);
            rum.metrics.linked_resolvers.set(st.links.len() as f64);
        }
        rum.metrics
            .table_age
            .set(now.saturating_sub(lock(&rum.published).at) as f64);
        if stopping {
            rum.save();
            break;
        }
        if last_save.elapsed() >= SAVE_EVERY && rum.state().unsaved {
            rum.save();
            last_save = Instant::now();
        }
    }
}
