//! The background prober: one task per (zone, edge) target, spread over the
//! interval, with a global cap on sockets in flight.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::config::{CheckSpec, Require};
use super::probe::{AddrProbe, AddrResult, TlsMode, ensure_crypto_provider, tls_config};
use super::registry::Registry;
use super::state::{EdgeHealth, Verdict};

/// How often load expiry is re-evaluated.
pub const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// A probe reading of load stays in force for this many intervals, so one
/// missed reading does not flip the state, but a stale one does not last.
const PROBE_LOAD_INTERVALS: u32 = 3;

/// One edge to probe, as built by the config loader after each reload.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub zone: String,
    pub edge: String,
    pub addresses: Vec<IpAddr>,
    pub check: Arc<CheckSpec>,
    pub health: Arc<EdgeHealth>,
}

type Key = (String, String);

struct Running {
    addresses: Vec<IpAddr>,
    check: Arc<CheckSpec>,
    health: Arc<EdgeHealth>,
    task: JoinHandle<()>,
}

impl Running {
    fn same_as(&self, t: &ProbeTarget) -> bool {
        self.addresses == t.addresses
            && *self.check == *t.check
            && Arc::ptr_eq(&self.health, &t.health)
    }
}

/// Probes the targets given to [`Checker::reconcile`] until shut down.
pub struct Checker {
    registry: Arc<Registry>,
    semaphore: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
    running: Mutex<HashMap<Key, Running>>,
    ticker: JoinHandle<()>,
    /// The instance's `probe_source`, for checks without their own.
    source: Option<IpAddr>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("targets", &self.lock().len())
            .field("free_permits", &self.semaphore.available_permits())
            .finish()
    }
}

/// Per-target metric handles, created once when the target starts.
struct ProbeMetrics {
    ok: metrics::Counter,
    fail: metrics::Counter,
    timeout: metrics::Counter,
    duration: metrics::Histogram,
}

impl ProbeMetrics {
    fn new(zone: &str, edge: &str) -> Self {
        let labels = |result: &'static str| {
            [
                ("zone", zone.to_owned()),
                ("edge", edge.to_owned()),
                ("result", result.to_owned()),
            ]
        };
        ProbeMetrics {
            ok: metrics::counter!("geosteer_probe_total", &labels("ok")),
            fail: metrics::counter!("geosteer_probe_total", &labels("fail")),
            timeout: metrics::counter!("geosteer_probe_total", &labels("timeout")),
            duration: metrics::histogram!(
                "geosteer_probe_duration_seconds",
                &[("zone", zone.to_owned()), ("edge", edge.to_owned())]
            ),
        }
    }
}

/// What a target's task owns.
struct Job {
    check: Arc<CheckSpec>,
    health: Arc<EdgeHealth>,
    probes: Vec<Arc<AddrProbe>>,
    metrics: Arc<ProbeMetrics>,
    semaphore: Arc<Semaphore>,
}

impl Checker {
    /// Starts the checker (and its load-expiry ticker) on the current tokio
    /// runtime; panics outside one, like `tokio::spawn`. `max_in_flight`
    /// bounds the probe sockets open at once across all targets.
    pub fn start(registry: Arc<Registry>, max_in_flight: usize) -> Checker {
        Checker::start_from(registry, max_in_flight, None)
    }

    /// Like [`Checker::start`], with probes leaving from `source` unless
    /// their check names its own `probe_source`.
    pub fn start_from(
        registry: Arc<Registry>,
        max_in_flight: usize,
        source: Option<IpAddr>,
    ) -> Checker {
        ensure_crypto_provider();
        let runtime = tokio::runtime::Handle::current();
        let reg = registry.clone();
        let ticker = runtime.spawn(async move {
            let mut t = tokio::time::interval(REFRESH_EVERY);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                reg.refresh();
            }
        });
        Checker {
            registry,
            semaphore: Arc::new(Semaphore::new(max_in_flight.max(1))),
            runtime,
            running: Mutex::new(HashMap::new()),
            ticker,
            source,
        }
    }

    /// The registry this checker reports to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the running set match `targets`: unchanged ones (same addresses,
    /// equal check, same health) keep running and keep their counters;
    /// changed and new ones (re)start; missing ones stop and their edges
    /// count as up again (an edge without a check is up). Callable from any
    /// thread.
    pub fn reconcile(&self, targets: Vec<ProbeTarget>) {
        let mut running = self.lock();
        let mut live = HashSet::with_capacity(targets.len());
        // Built rustls configs are shared among targets of this reconcile.
        let mut tls_cache: HashMap<TlsMode, Result<Arc<rustls::ClientConfig>, String>> =
            HashMap::new();
        let (mut started, mut kept) = (0usize, 0usize);
        for t in targets {
            let key = (t.zone.clone(), t.edge.clone());
            live.insert(key.clone());
            if running.get(&key).is_some_and(|r| r.same_as(&t)) {
                kept += 1;
                continue;
            }
            if let Some(old) = running.remove(&key) {
                old.task.abort();
                if !Arc::ptr_eq(&old.health, &t.health) {
                    old.health.detach_check();
                }
            }
            let mode = TlsMode::of(&t.check);
            let tls = tls_cache.entry(mode).or_insert_with_key(tls_config).clone();
            let probes = t
                .addresses
                .iter()
                .map(|ip| {
                    let source = t.check.source.or(self.source);
                    Arc::new(AddrProbe::new(&t.check, *ip, source, tls.clone()))
                })
                .collect();
            t.health.attach_check(&t.check.name, t.check.thresholds);
            let job = Job {
                check: t.check.clone(),
                health: t.health.clone(),
                probes,
                metrics: Arc::new(ProbeMetrics::new(&t.zone, &t.edge)),
                semaphore: self.semaphore.clone(),
            };
            let task = self.runtime.spawn(run(job));
            running.insert(
                key,
                Running {
                    addresses: t.addresses,
                    check: t.check,
                    health: t.health,
                    task,
                },
            );
            started += 1;
        }
        let before = running.len();
        running.retain(|k, r| {
            let keep = live.contains(k);
            if !keep {
                r.task.abort();
                r.health.detach_check();
            }
            keep
        });
        tracing::debug!(
            started,
            kept,
            stopped = before - running.len(),
            "health checks reconciled"
        );
    }

    /// How many targets are being probed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no target is being probed.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Stops every probe and the ticker.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.ticker.abort();
        for (_, r) in self.lock().drain() {
            r.task.abort();
        }
    }
}

/// A target's life: a random phase within the first interval so targets
/// started together do not fire in lockstep, then one round per interval.
async fn run(job: Job) {
    // Validation rejects a zero interval; a hand-built spec must not spin.
    let interval = job.check.interval.max(Duration::from_millis(1));
    let phase = Duration::from_nanos(
        rand::rng().random_range(0..interval.as_nanos().min(u64::MAX as u128) as u64),
    );
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    // A round that overran (waiting for a permit) pushes the schedule back
    // instead of firing a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let load_ttl = interval.saturating_mul(PROBE_LOAD_INTERVALS);
    loop {
        ticks.tick().await;
        let verdict = round(&job).await;
        job.health
            .observe(verdict, job.check.rise, job.check.fall, load_ttl);
    }
}

/// Probes one address under a permit, recording metrics.
async fn probe_addr(
    probe: Arc<AddrProbe>,
    semaphore: Arc<Semaphore>,
    metrics: Arc<ProbeMetrics>,
    timeout: Duration,
) -> AddrResult {
    // The permit covers the socket's whole life: taken before connecting,
    // released after the probe (and its socket) is dropped.
    let Ok(_permit) = semaphore.acquire_owned().await else {
        return AddrResult::Failed("checker shut down".into());
    };
    let started = Instant::now();
    let result = probe.run(timeout).await;
    metrics.duration.record(started.elapsed().as_secs_f64());
    match &result {
        AddrResult::Ok { .. } => metrics.ok.increment(1),
        AddrResult::Failed(_) => metrics.fail.increment(1),
        AddrResult::TimedOut => metrics.timeout.increment(1),
    }
    result
}

/// One round over all of a target's addresses, combined by `require`.
async fn round(job: &Job) -> Verdict {
    let timeout = job.check.timeout;
    let results: Vec<(std::net::SocketAddr, AddrResult)> = if job.probes.len() == 1 {
        let p = job.probes[0].clone();
        let addr = p.addr;
        vec![(
            addr,
            probe_addr(p, job.semaphore.clone(), job.metrics.clone(), timeout).await,
        )]
    } else {
        let mut set = tokio::task::JoinSet::new();
        for p in &job.probes {
            let addr = p.addr;
            let fut = probe_addr(
                p.clone(),
                job.semaphore.clone(),
                job.metrics.clone(),
                timeout,
            );
            set.spawn(async move { (addr, fut.await) });
        }
        let mut v = Vec::with_capacity(job.probes.len());
        while let Some(r) = set.join_next().await {
            match r {
                Ok(x) => v.push(x),
                Err(e) => tracing::warn!(error = %e, "probe task failed"),
            }
        }
        v.sort_by_key(|(a, _)| *a);
        v
    };
    combine(&results, job.check.require, job.probes.len(), timeout)
}

fn combine(
    results: &[(std::net::SocketAddr, AddrResult)],
    require: Require,
    expected: usize,
    timeout: Duration,
) -> Verdict {
    let mut oks = 0usize;
    let mut load: Option<f64> = None;
    let mut errors = Vec::new();
    for (addr, r) in results {
        match r {
            AddrResult::Ok {
                load: l,
                load_error,
            } => {
                oks += 1;
                if let Some(l) = l {
                    load = Some(load.map_or(*l, |m: f64| m.max(*l)));
                }
                if let Some(e) = load_error {
                    errors.push(format!("{addr}: load ignored: {e}"));
                }
            }
            AddrResult::Failed(e) => errors.push(format!("{addr}: {e}")),
            AddrResult::TimedOut => errors.push(format!(
                "{addr}: timed out after {}",
                humantime::format_duration(timeout)
            )),
        }
    }
    if expected == 0 {
        errors.push("no addresses to probe".into());
    }
    let success = expected > 0
        && match require {
            Require::All => oks == expected,
            Require::Any => oks >= 1,
        };
    Verdict {
        success,
        load,
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}
