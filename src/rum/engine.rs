//! The running engine's parts that the listener, the aggregator and the
//! API share: [`Rum`] and its metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};

use metrics::{Counter, Gauge};
use tokio::sync::watch;

use super::cells::{self, State};
use super::config::RumConfig;
use super::guard::{Limiter, Seen};
use super::probe::ProbeQueue;
use super::token::Secret;
use crate::snapshot::Shared;

/// The RUM metrics' handles, made once.
pub struct Metrics {
    pub beacons_accepted: Counter,
    pub beacons_bad: Counter,
    pub beacons_forbidden: Counter,
    pub beacons_limited: Counter,
    pub configs_ok: Counter,
    pub configs_unknown: Counter,
    pub configs_limited: Counter,
    pub samples_accepted: Counter,
    pub samples_out_of_range: Counter,
    pub samples_unknown_edge: Counter,
    pub dropped_beacons: Counter,
    pub(super) dropped_probes: Counter,
    pub(super) probes_linked: Counter,
    pub(super) probes_waiting: Counter,
    pub(super) probes_bad: Counter,
    pub(super) cells: Gauge,
    pub(super) steering_cells: Gauge,
    pub(super) linked_resolvers: Gauge,
    pub(super) table_age: Gauge,
    pub(super) pending: Gauge,
}

impl Metrics {
    pub(super) fn new() -> Metrics {
        use metrics::{counter, describe_counter, describe_gauge, gauge};
        describe_counter!(
            "geosteer_rum_beacons_total",
            "RUM beacons received, by result (accepted, bad_request, forbidden, rate_limited)"
        );
        describe_counter!(
            "geosteer_rum_configs_total",
            "RUM configs asked for, by result"
        );
        describe_counter!(
            "geosteer_rum_samples_total",
            "RTT samples in accepted beacons, by result (accepted, out_of_range, unknown_edge)"
        );
        describe_counter!(
            "geosteer_rum_dropped_total",
            "Beacons or resolver probes dropped because the aggregator's queue was full"
        );
        describe_counter!(
            "geosteer_rum_probes_total",
            "Resolver probe queries, by result (linked, waiting, bad_label)"
        );
        describe_gauge!(
            "geosteer_rum_cells",
            "Learned (client network, edge) cells this instance keeps"
        );
        describe_gauge!(
            "geosteer_rum_steering_cells",
            "Learned cells with min_samples in the serving tables (this instance's and the fleet's)"
        );
        describe_gauge!(
            "geosteer_rum_linked_resolvers",
            "Resolver networks with linked user networks"
        );
        describe_gauge!(
            "geosteer_rum_table_age_seconds",
            "Seconds since the learned tables were last rebuilt"
        );
        describe_gauge!(
            "geosteer_rum_pending_views",
            "Page views waiting for their resolver probe or beacon"
        );
        let b = |r: &'static str| counter!("geosteer_rum_beacons_total", "result" => r);
        let c = |r: &'static str| counter!("geosteer_rum_configs_total", "result" => r);
        let s = |r: &'static str| counter!("geosteer_rum_samples_total", "result" => r);
        let p = |r: &'static str| counter!("geosteer_rum_probes_total", "result" => r);
        Metrics {
            beacons_accepted: b("accepted"),
            beacons_bad: b("bad_request"),
            beacons_forbidden: b("forbidden"),
            beacons_limited: b("rate_limited"),
            configs_ok: c("ok"),
            configs_unknown: c("not_found"),
            configs_limited: c("rate_limited"),
            samples_accepted: s("accepted"),
            samples_out_of_range: s("out_of_range"),
            samples_unknown_edge: s("unknown_edge"),
            dropped_beacons: counter!("geosteer_rum_dropped_total", "queue" => "beacons"),
            dropped_probes: counter!("geosteer_rum_dropped_total", "queue" => "probes"),
            probes_linked: p("linked"),
            probes_waiting: p("waiting"),
            probes_bad: p("bad_label"),
            cells: gauge!("geosteer_rum_cells"),
            steering_cells: gauge!("geosteer_rum_steering_cells"),
            linked_resolvers: gauge!("geosteer_rum_linked_resolvers"),
            table_age: gauge!("geosteer_rum_table_age_seconds"),
            pending: gauge!("geosteer_rum_pending_views"),
        }
    }
}

/// What the last table build made, for the API and the status page.
#[derive(Debug, Default, Clone)]
pub struct Published {
    /// Unix seconds of the last build.
    pub at: u64,
    /// Steering cells (client rows) and resolver networks per zone.
    pub zones: Vec<(String, usize, usize)>,
    /// Per zone, the best-sampled client networks and their samples.
    pub top: std::collections::HashMap<String, Vec<(ipnet::IpNet, u32)>>,
    pub build_ms: f64,
}

/// A running RUM engine.
pub struct Rum {
    pub cfg: RumConfig,
    pub(crate) secret: Secret,
    pub(crate) shared: Shared,
    pub(super) state: Mutex<State>,
    pub(crate) beacons: SyncSender<cells::Beacon>,
    /// Resolver probes from the DNS workers.
    pub probes: Arc<ProbeQueue>,
    pub(crate) beacons_allowed: Limiter,
    pub(crate) configs_allowed: Limiter,
    pub(crate) seen: Seen,
    pub metrics: Metrics,
    /// The listener's bound address.
    pub addr: SocketAddr,
    pub(super) stop: AtomicBool,
    /// Bumped to make the aggregator rebuild now (fleet data arrived).
    pub(super) poke: AtomicU64,
    pub(super) published: Mutex<Published>,
    pub(super) aggregator: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(super) listener: Mutex<Option<Serving>>,
}

/// The listener's thread and the switch that stops it.
type Serving = (std::thread::JoinHandle<()>, watch::Sender<bool>);

impl std::fmt::Debug for Rum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rum").field("addr", &self.addr).finish()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
