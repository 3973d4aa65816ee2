//! Prometheus metrics. Handles are created once (at start-up or snapshot
//! build), never per query: the query path only bumps atomics.
//!
//! Metrics observe answers without knowing how they are made: the query
//! counters read an [`Answered`], which the server fills from the answer
//! core's summary, and the reload gauges take the snapshot's numbers, so
//! this module imports neither `dns` nor `snapshot`.
//!
//! Two kinds of series. Counters and gauges with a fixed label set go
//! through the `metrics` recorder. Series whose set changes with the
//! state — each edge's state, its override, the busiest hosts — are
//! written at scrape time from that state ([`render_edges`],
//! [`render_hosts`]), so an edge or host that is gone leaves no stale
//! series, and a zone of 50,000 hosts exports only its top
//! [`MetricsConfig::top_hosts`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use metrics::{Counter, Gauge, counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

use crate::health::{AdminState, EdgeStatus, Effective};
use crate::net::Transport;
use crate::steer::{EdgeIdx, Steering};
use crate::wire::*;

/// Default [`MetricsConfig::top_hosts`].
pub const DEFAULT_TOP_HOSTS: usize = 50;

/// `metrics:` in `geosteer.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Per-host answer series for the busiest this many hosts of each
    /// zone (`0`: none, `all`: every host, one series each).
    #[serde(default = "default_top_hosts", deserialize_with = "top_hosts")]
    pub top_hosts: Option<usize>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            top_hosts: default_top_hosts(),
        }
    }
}

fn default_top_hosts() -> Option<usize> {
    Some(DEFAULT_TOP_HOSTS)
}

/// A number, or `all` (`None`: no limit).
fn top_hosts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of hosts, or `all`")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<usize>, E> {
            Ok(Some(usize::try_from(v).unwrap_or(usize::MAX)))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
            match v.trim() {
                "all" => Ok(None),
                n => n
                    .parse()
                    .map(Some)
                    .map_err(|_| E::custom(format!("{v:?} is not a number of hosts or `all`"))),
            }
        }
    }
    d.deserialize_any(V)
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process and returns its handle.
/// Metric handles made before this call go nowhere, so call it first.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness);
            // then ours only renders what it has.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// HELP text for every series the recorder renders; `promtool check
/// metrics` on a running server's output (tests/metrics.rs) finds any
/// without.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "geosteer_udp_received_total",
        "UDP packets read from the sockets"
    );
    describe_counter!(
        "geosteer_udp_batches_total",
        "recvmmsg batches read from the UDP sockets"
    );
    describe_counter!("geosteer_udp_answered_total", "UDP responses sent");
    describe_counter!(
        "geosteer_udp_dropped_total",
        "UDP packets not answered, by reason"
    );
    describe_counter!(
        "geosteer_udp_send_errors_total",
        "UDP responses the socket refused to send"
    );
    describe_counter!(
        "geosteer_udp_recv_errors_total",
        "Errors reading from the UDP sockets"
    );
    describe_counter!("geosteer_tcp_connections_total", "TCP connections accepted");
    describe_gauge!("geosteer_tcp_connections_open", "TCP connections open now");
    describe_counter!(
        "geosteer_tcp_evicted_total",
        "Idle TCP connections closed to make room for new ones"
    );
    describe_counter!(
        "geosteer_tcp_refused_total",
        "TCP connections refused at a limit, by reason"
    );
    describe_counter!(
        "geosteer_tcp_idle_timeouts_total",
        "TCP connections closed after tcp.idle_timeout without a query"
    );
    describe_counter!(
        "geosteer_tcp_dropped_total",
        "TCP queries not answered, by reason"
    );
    describe_counter!(
        "geosteer_probe_total",
        "Health probes by zone, edge and result (ok, fail, timeout)"
    );
    describe_histogram!(
        "geosteer_probe_duration_seconds",
        metrics::Unit::Seconds,
        "How long health probes took, by zone and edge"
    );
    describe_counter!(
        "geosteer_rrl_dropped_total",
        "UDP responses dropped by response rate limiting"
    );
    describe_counter!(
        "geosteer_rrl_slipped_total",
        "UDP responses sent truncated by response rate limiting (slip)"
    );
    describe_gauge!(
        "geosteer_dnssec_cached_signatures",
        "RRSIGs in the signature cache"
    );
    describe_counter!(
        "geosteer_queries_total",
        "DNS responses sent, by transport, qtype and rcode"
    );
    describe_counter!("geosteer_truncated_total", "Responses sent with TC set");
    describe_gauge!(
        "geosteer_fleet_connected",
        "1 while the fleet link to etcd is up and resynced, 0 otherwise"
    );
    describe_counter!(
        "geosteer_fleet_bad_values_total",
        "Values read from etcd and ignored, by reason"
    );
    describe_counter!(
        "geosteer_fleet_writes_total",
        "Overrides and load readings written to etcd, by result"
    );
    describe_counter!(
        "geosteer_dnssec_signatures_total",
        "RRSIGs made (signature cache misses that signed)"
    );
    describe_counter!(
        "geosteer_dnssec_cache_hits_total",
        "RRSIGs served from the signature cache"
    );
    describe_counter!(
        "geosteer_dnssec_cache_misses_total",
        "RRSIG lookups that had to sign"
    );
    describe_gauge!(
        "geosteer_dnssec_next_expiry_seconds",
        "Unix time the earliest cached signature expires"
    );
    describe_counter!(
        "geosteer_ecs_queries_total",
        "Queries carrying EDNS Client Subnet"
    );
    describe_counter!(
        "geosteer_dropped_total",
        "Packets that got no answer (unparseable)"
    );
    describe_counter!(
        "geosteer_steered_edge_answers_total",
        "Steered answers containing an edge, by zone and edge"
    );
    describe_counter!(
        "geosteer_reloads_total",
        "Snapshots swapped in after start-up"
    );
    describe_counter!(
        "geosteer_reload_failures_total",
        "Reloads rejected; the last good snapshot kept serving"
    );
    describe_gauge!(
        "geosteer_snapshot_generation",
        "Generation of the serving snapshot"
    );
    describe_gauge!(
        "geosteer_snapshot_timestamp_seconds",
        "Unix time the serving snapshot was built"
    );
    describe_gauge!(
        "geosteer_snapshot_age_seconds",
        "Seconds since the serving snapshot was built"
    );
    describe_gauge!(
        "geosteer_geodb_build_epoch_seconds",
        "Build time (Unix) of the serving GeoIP database"
    );
    describe_counter!(
        "geosteer_querylog_dropped_total",
        "Sampled query-log lines dropped because the writer fell behind"
    );
    describe_counter!(
        "geosteer_dnstap_messages_total",
        "dnstap messages written (flushed to the file or socket)"
    );
    describe_counter!(
        "geosteer_dnstap_dropped_total",
        "dnstap messages dropped: queue full, no socket reader, or a failed write"
    );
    describe_counter!(
        "geosteer_proxy_accepted_total",
        "Packets and connections whose PROXY v2 header named the client"
    );
    describe_counter!(
        "geosteer_proxy_dropped_total",
        "PROXY v2 headers dropped, by reason (untrusted sender, malformed)"
    );
    describe_counter!(
        "geosteer_xfr_messages_total",
        "Transfers, NOTIFYs and TSIG-signed queries handled, by kind and result"
    );
    describe_counter!(
        "geosteer_tsig_errors_total",
        "TSIG-signed requests refused, by TSIG error (BADSIG, BADKEY, BADTIME, ...)"
    );
    describe_counter!(
        "geosteer_notify_sent_total",
        "NOTIFY attempts to transfer.notify targets, by result (ok, error, retry)"
    );
    describe_gauge!(
        "geosteer_secondary_serial",
        "Serial of the copy a secondary zone serves (0: none)"
    );
    describe_gauge!(
        "geosteer_secondary_last_ok_timestamp_seconds",
        "Unix time a secondary zone's primary last confirmed its copy"
    );
    describe_gauge!(
        "geosteer_secondary_expires_timestamp_seconds",
        "Unix time a secondary zone's copy expires without a good refresh (0: no copy)"
    );
    describe_counter!(
        "geosteer_secondary_refresh_total",
        "Secondary zone refreshes, by result (unchanged, ixfr, axfr, refused, failed)"
    );
}

/// A and AAAA first, as [`qtype_index`] assumes.
const QTYPES: [(u16, &str); 14] = [
    (TYPE_A, "A"),
    (TYPE_AAAA, "AAAA"),
    (TYPE_CNAME, "CNAME"),
    (TYPE_NS, "NS"),
    (TYPE_SOA, "SOA"),
    (TYPE_MX, "MX"),
    (TYPE_TXT, "TXT"),
    (TYPE_SRV, "SRV"),
    (TYPE_PTR, "PTR"),
    (TYPE_CAA, "CAA"),
    (TYPE_ANY, "ANY"),
    (TYPE_HTTPS, "HTTPS"),
    (TYPE_SVCB, "SVCB"),
    (TYPE_DS, "DS"),
];
/// In [`rcode_index`] order.
const RCODES: [Rcode; 8] = [
    Rcode::NoError,
    Rcode::FormErr,
    Rcode::ServFail,
    Rcode::NxDomain,
    Rcode::NotImp,
    Rcode::Refused,
    Rcode::BadVers,
    Rcode::YxDomain,
];

/// Position in [`RCODES`]: a match, which compiles to a table lookup.
fn rcode_index(r: Rcode) -> usize {
    match r {
        Rcode::NoError => 0,
        Rcode::FormErr => 1,
        Rcode::ServFail => 2,
        Rcode::NxDomain => 3,
        Rcode::NotImp => 4,
        Rcode::Refused => 5,
        Rcode::BadVers => 6,
        Rcode::YxDomain => 7,
    }
}

/// Position in [`QTYPES`] (its length for any other type). A and AAAA,
/// most queries, are decided first.
fn qtype_index(t: u16) -> usize {
    match t {
        TYPE_A => 0,
        TYPE_AAAA => 1,
        _ => QTYPES
            .iter()
            .position(|(q, _)| *q == t)
            .unwrap_or(QTYPES.len()),
    }
}

/// What the query counters read of one response.
#[derive(Clone, Copy, Debug)]
pub struct Answered<'a> {
    pub qtype: u16,
    pub rcode: Rcode,
    pub truncated: bool,
    /// The query carried EDNS Client Subnet.
    pub ecs: bool,
    /// A steered answer: its zone's counters, the host, and the edges the
    /// answer named.
    pub steered: Option<(&'a SteerCounters, u32, &'a [EdgeIdx])>,
}

/// `geosteer_queries_total` series: transport × qtype (last: other) × rcode.
const QUERY_SERIES: usize = 2 * (QTYPES.len() + 1) * RCODES.len();
/// Then `geosteer_truncated_total`, `geosteer_ecs_queries_total` and
/// `geosteer_dropped_total`, one per transport each.
const TRUNCATED: usize = QUERY_SERIES;
const ECS: usize = TRUNCATED + 2;
const DROPPED: usize = ECS + 2;
const SERIES: usize = DROPPED + 2;
/// Shards of the counts: more than the answering threads a server runs.
const SHARDS: usize = 16;

/// One thread's share of the counts, a cache line apart from the others.
#[repr(align(64))]
struct Shard([AtomicU64; SERIES]);

/// Per-query counters, by transport × qtype × rcode, plus truncated, ECS
/// and dropped. The answering threads count into shards of their own and
/// [`publish_query_counts`] adds what they counted to the recorder's
/// counters, when `/metrics` is scraped: a recorder counter costs a dynamic
/// call and two atomic adds (value and generation) a bump, and these are
/// bumped two or three times every query (~66 instructions a query,
/// `bench/profile.sh ecs`).
pub struct QueryMetrics {
    tally: Arc<Tally>,
}

struct Tally {
    shards: Box<[Shard]>,
    /// The recorder's handles, by series, and how much of each shard sum
    /// they already have.
    published: Mutex<(Vec<Counter>, Vec<u64>)>,
}

/// Every live server's counts, for [`publish_query_counts`].
static TALLIES: Mutex<Vec<std::sync::Weak<Tally>>> = Mutex::new(Vec::new());

fn tallies() -> std::sync::MutexGuard<'static, Vec<std::sync::Weak<Tally>>> {
    let mut all = TALLIES.lock().unwrap_or_else(|e| e.into_inner());
    // Servers stop (tests start hundreds): forget those gone.
    all.retain(|t| t.strong_count() > 0);
    all
}

/// Adds what the answering threads counted since the last call to the
/// recorder's query counters (`geosteer_queries_total`, `_truncated_`,
/// `_ecs_queries_`, `_dropped_`). `/metrics` calls it before rendering; an
/// embedder reading its own recorder calls it first.
pub fn publish_query_counts() {
    let live: Vec<Arc<Tally>> = tallies()
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .collect();
    for t in live {
        t.publish();
    }
}

impl Tally {
    fn publish(&self) {
        let mut guard = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let (counters, done) = &mut *guard;
        for (i, (c, done)) in counters.iter().zip(done.iter_mut()).enumerate() {
            let sum: u64 = self
                .shards
                .iter()
                .map(|s| s.0[i].load(Ordering::Relaxed))
                .sum();
            if sum > *done {
                c.increment(sum - *done);
                *done = sum;
            }
        }
    }
}

/// The shard of the calling thread: threads take them in turn.
#[inline]
fn shard_of_thread() -> usize {
    use std::cell::Cell;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| match s.get() {
        usize::MAX => {
            let i = (NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS as u64) as usize;
            s.set(i);
            i
        }
        i => i,
    })
}

impl QueryMetrics {
    pub fn new() -> QueryMetrics {
        let mut counters = Vec::with_capacity(SERIES);
        for t in [Transport::Udp, Transport::Tcp] {
            for q in QTYPES.iter().map(|q| q.1).chain(["other"]) {
                for r in RCODES {
                    counters.push(counter!("geosteer_queries_total", "transport" => t.as_str(), "qtype" => q, "rcode" => r.as_str()));
                }
            }
        }
        for name in [
            "geosteer_truncated_total",
            "geosteer_ecs_queries_total",
            "geosteer_dropped_total",
        ] {
            for t in [Transport::Udp, Transport::Tcp] {
                counters.push(counter!(name, "transport" => t.as_str()));
            }
        }
        debug_assert_eq!(counters.len(), SERIES);
        let tally = Arc::new(Tally {
            shards: (0..SHARDS)
                .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            published: Mutex::new((counters, vec![0; SERIES])),
        });
        tallies().push(Arc::downgrade(&tally));
        QueryMetrics { tally }
    }

    /// Counts one handled packet.
    #[inline]
    pub fn record(&self, transport: Transport, answered: Option<Answered<'_>>) {
        let t = transport as usize;
        let counts = &self.tally.shards[shard_of_thread()].0;
        let bump = |i: usize| counts[i].fetch_add(1, Ordering::Relaxed);
        let Some(s) = answered else {
            bump(DROPPED + t);
            return;
        };
        bump((t * (QTYPES.len() + 1) + qtype_index(s.qtype)) * RCODES.len() + rcode_index(s.rcode));
        if s.truncated {
            bump(TRUNCATED + t);
        }
        if s.ecs {
            bump(ECS + t);
        }
        if let Some((counters, host, edges)) = s.steered {
            counters.record(host, edges);
        }
    }
}

impl Drop for QueryMetrics {
    /// A server that stops hands over what it counted last.
    fn drop(&mut self) {
        self.tally.publish();
    }
}

/// Per-host answer counts by zone and host, shared across reloads so counts
/// carry over; entries no zone uses any more are dropped when a zone is
/// built. By zone, then by host name: a zone of 50,000 hosts built again
/// looks each one up without making a key.
type HostCounts = Mutex<HashMap<String, ZoneHostCounts>>;

/// One zone's host counts, by host name (the hasher of zone names: a build
/// looks up every host of the zone).
type ZoneHostCounts =
    HashMap<Arc<str>, Arc<AtomicU64>, std::hash::BuildHasherDefault<crate::zone::tree::NameHasher>>;

fn host_counts() -> &'static HostCounts {
    static C: OnceLock<HostCounts> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Steered-answer counters of one zone, made when the zone is built, so
/// the query path indexes a `Vec` instead of formatting labels. Edge series
/// with the same labels share one atomic across reloads (the recorder keys
/// them by name and labels); host counts are plain atomics kept by (zone,
/// host) the same way, and exported at scrape time for the busiest hosts
/// only ([`render_hosts`]).
#[derive(Default)]
pub struct SteerCounters {
    zone: String,
    hosts: Vec<(Arc<str>, Arc<AtomicU64>)>,
    edges: Vec<Counter>,
}

impl SteerCounters {
    pub fn new(zone: &str, steering: &Steering) -> SteerCounters {
        SteerCounters::with_names(
            zone,
            steering.hosts.iter().map(|h| h.name.as_str()),
            steering.edges.iter().map(|e| e.name.as_str()),
        )
    }

    /// Counters for hosts and edges by name, in index order.
    pub fn with_names<'a>(
        zone: &str,
        hosts: impl IntoIterator<Item = &'a str>,
        edges: impl IntoIterator<Item = &'a str>,
    ) -> SteerCounters {
        let hosts = {
            let mut all = host_counts().lock().unwrap_or_else(|e| e.into_inner());
            for z in all.values_mut() {
                z.retain(|_, c| Arc::strong_count(c) > 1);
            }
            all.retain(|_, z| !z.is_empty());
            let mine = match all.get_mut(zone) {
                Some(m) => m,
                None => all.entry(zone.to_owned()).or_default(),
            };
            hosts
                .into_iter()
                .map(|h| match mine.get_key_value(h) {
                    Some((k, c)) => (k.clone(), c.clone()),
                    None => {
                        let k: Arc<str> = Arc::from(h);
                        let c = Arc::<AtomicU64>::default();
                        mine.insert(k.clone(), c.clone());
                        (k, c)
                    }
                })
                .collect()
        };
        let zone = zone.to_string();
        SteerCounters {
            zone: zone.clone(),
            hosts,
            edges: edges
                .into_iter()
                .map(|e| counter!("geosteer_steered_edge_answers_total", "zone" => zone.clone(), "edge" => e.to_owned()))
                .collect(),
        }
    }

    /// Counts one steered answer for `host` made of `edges`.
    #[inline]
    pub fn record(&self, host: u32, edges: &[EdgeIdx]) {
        if let Some((_, c)) = self.hosts.get(host as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        for &e in edges {
            if let Some(c) = self.edges.get(e as usize) {
                c.increment(1);
            }
        }
    }
}

impl std::fmt::Debug for SteerCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerCounters")
            .field("hosts", &self.hosts.len())
            .field("edges", &self.edges.len())
            .finish()
    }
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Response rate limiting: UDP responses dropped, and sent as truncated
/// stubs instead of the answer (`slip`).
pub struct RrlMetrics {
    pub dropped: Counter,
    pub slipped: Counter,
}

impl RrlMetrics {
    pub fn new() -> RrlMetrics {
        RrlMetrics {
            dropped: counter!("geosteer_rrl_dropped_total"),
            slipped: counter!("geosteer_rrl_slipped_total"),
        }
    }
}

impl Default for RrlMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Reload and snapshot gauges.
pub struct ReloadMetrics {
    reloads: Counter,
    failures: Counter,
    generation: Gauge,
    built: Gauge,
    db_epoch: Gauge,
}

impl ReloadMetrics {
    pub fn new() -> ReloadMetrics {
        ReloadMetrics {
            reloads: counter!("geosteer_reloads_total"),
            failures: counter!("geosteer_reload_failures_total"),
            generation: gauge!("geosteer_snapshot_generation"),
            built: gauge!("geosteer_snapshot_timestamp_seconds"),
            db_epoch: gauge!("geosteer_geodb_build_epoch_seconds"),
        }
    }
    pub fn reloaded(&self) {
        self.reloads.increment(1);
    }
    pub fn failed(&self) {
        self.failures.increment(1);
    }
    /// Records a snapshot about to go live: its generation, when it was
    /// built, and its GeoIP database's build time (if it has one).
    pub fn observe(&self, generation: u64, built_at: SystemTime, db_build_epoch: Option<u64>) {
        self.generation.set(generation as f64);
        let built = built_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.built.set(built);
        if let Some(epoch) = db_build_epoch {
            self.db_epoch.set(epoch as f64);
        }
    }
}

impl Default for ReloadMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The states `geosteer_edge_state` has a series for, as labelled.
const STATES: [(Effective, &str); 4] = [
    (Effective::Up, "up"),
    (Effective::Overloaded, "overloaded"),
    (Effective::Drain, "drain"),
    (Effective::Down, "down"),
];

/// Each edge's state, load and override, from the health registry:
///
/// - `geosteer_edge_state{zone,edge,state}`: 1 for the state the edge is
///   in (`up`, `overloaded`, `drain`, `down`), 0 for the other three;
/// - `geosteer_edge_load{zone,edge}`: the load in force (0 when none);
/// - `geosteer_edge_admin_override{zone,edge,state,reason}`: 1 per
///   override in force (`up`, `down`, `drain`);
/// - `geosteer_edge_admin_override_expiry_timestamp_seconds{zone,edge}`:
///   when an override with `--for` lifts itself.
pub fn render_edges(out: &mut String, edges: &[EdgeStatus]) {
    family(
        out,
        "geosteer_edge_state",
        "gauge",
        "Edge state: 1 on the series whose state label (up, overloaded, drain, down) is the edge's, 0 on the others",
    );
    for e in edges {
        let (z, n) = (label(&e.zone), label(&e.name));
        for (st, name) in STATES {
            let v = u8::from(e.effective == st);
            let _ = writeln!(
                out,
                "geosteer_edge_state{{zone=\"{z}\",edge=\"{n}\",state=\"{name}\"}} {v}"
            );
        }
    }
    family(
        out,
        "geosteer_edge_load",
        "gauge",
        "Load in force on the edge, 0 to 1 (probe or pushed; 0 when none is known)",
    );
    for e in edges {
        let _ = writeln!(
            out,
            "geosteer_edge_load{{zone=\"{}\",edge=\"{}\"}} {}",
            label(&e.zone),
            label(&e.name),
            e.last_load.unwrap_or(0.0)
        );
    }
    family(
        out,
        "geosteer_edge_admin_override",
        "gauge",
        "1 for each admin override in force, with its state and reason",
    );
    for e in edges.iter().filter(|e| e.admin != AdminState::Auto) {
        let state = match e.admin {
            AdminState::Up => "up",
            AdminState::Down => "down",
            AdminState::Drain => "drain",
            AdminState::Auto => "auto",
        };
        let _ = writeln!(
            out,
            "geosteer_edge_admin_override{{zone=\"{}\",edge=\"{}\",state=\"{state}\",reason=\"{}\"}} 1",
            label(&e.zone),
            label(&e.name),
            label(e.admin_reason.as_deref().unwrap_or(""))
        );
    }
    family(
        out,
        "geosteer_edge_admin_override_expiry_timestamp_seconds",
        "gauge",
        "Unix time an admin override set with a duration lifts itself",
    );
    let now = crate::health::unix_ms() as f64 / 1000.0;
    for e in edges.iter().filter(|e| e.admin != AdminState::Auto) {
        if let Some(left) = e.admin_expires_in_secs {
            let _ = writeln!(
                out,
                "geosteer_edge_admin_override_expiry_timestamp_seconds{{zone=\"{}\",edge=\"{}\"}} {}",
                label(&e.zone),
                label(&e.name),
                (now + left).round()
            );
        }
    }
}

/// Steered answers per zone, and per host for each zone's busiest `top`
/// hosts (`None`: all):
///
/// - `geosteer_steered_zone_answers_total{zone}`: every steered answer;
/// - `geosteer_steered_answers_total{zone,host}`: the top hosts by answers
///   since start. A host that drops out of the top loses its series until
///   it is back (its count kept counting meanwhile).
pub fn render_hosts<'a>(
    out: &mut String,
    zones: impl IntoIterator<Item = &'a SteerCounters>,
    top: Option<usize>,
) {
    let zones: Vec<&SteerCounters> = zones.into_iter().collect();
    family(
        out,
        "geosteer_steered_zone_answers_total",
        "counter",
        "Steered answers by zone",
    );
    let mut per_zone = Vec::with_capacity(zones.len());
    for z in &zones {
        let counts: Vec<(&str, u64)> = z
            .hosts
            .iter()
            .map(|(h, c)| (&**h, c.load(Ordering::Relaxed)))
            .collect();
        let total: u64 = counts.iter().map(|c| c.1).sum();
        let _ = writeln!(
            out,
            "geosteer_steered_zone_answers_total{{zone=\"{}\"}} {total}",
            label(&z.zone)
        );
        per_zone.push(counts);
    }
    family(
        out,
        "geosteer_steered_answers_total",
        "counter",
        "Steered answers by zone and host, for each zone's busiest hosts (metrics.top_hosts)",
    );
    for (z, mut counts) in zones.iter().zip(per_zone) {
        let keep = top.unwrap_or(counts.len()).min(counts.len());
        if keep < counts.len() {
            // The busiest `keep`, ties by name so the set is stable.
            counts.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            counts.truncate(keep);
        }
        counts.sort_by(|a, b| a.0.cmp(b.0));
        for (h, n) in counts {
            let _ = writeln!(
                out,
                "geosteer_steered_answers_total{{zone=\"{}\",host=\"{}\"}} {n}",
                label(&z.zone),
                label(h)
            );
        }
    }
}

/// Copies the signer's counters and the signature cache's state into the
/// exporter (called when `/metrics` is scraped; the query path only bumps
/// atomics).
pub fn publish_dnssec() {
    use std::sync::atomic::Ordering::Relaxed;
    let st = crate::dnssec::sign::stats();
    counter!("geosteer_dnssec_signatures_total").absolute(st.signatures.load(Relaxed));
    counter!("geosteer_dnssec_cache_hits_total").absolute(st.hits.load(Relaxed));
    counter!("geosteer_dnssec_cache_misses_total").absolute(st.misses.load(Relaxed));
    let (entries, next) = crate::dnssec::sign::SigCache::global().summary();
    gauge!("geosteer_dnssec_cached_signatures").set(entries as f64);
    gauge!("geosteer_dnssec_next_expiry_seconds").set(next.map_or(0.0, |t| t as f64));
}

/// The same numbers for `/api/status`.
pub fn dnssec_summary() -> serde_json::Value {
    use std::sync::atomic::Ordering::Relaxed;
    let st = crate::dnssec::sign::stats();
    let (entries, next) = crate::dnssec::sign::SigCache::global().summary();
    serde_json::json!({
        "signatures": st.signatures.load(Relaxed),
        "cache_hits": st.hits.load(Relaxed),
        "cache_misses": st.misses.load(Relaxed),
        "cached_signatures": entries,
        "next_expiry": next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counts_from_many_threads_publish_once_each() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let m = Arc::new(metrics::with_local_recorder(&recorder, QueryMetrics::new));
        let a = Answered {
            qtype: TYPE_A,
            rcode: Rcode::NoError,
            truncated: false,
            ecs: true,
            steered: None,
        };
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        m.record(Transport::Udp, Some(a));
                    }
                    m.record(Transport::Tcp, None);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let value = |series: &str| {
            handle
                .render()
                .lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse::<u64>().ok())
        };
        let a_udp = "geosteer_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"} ";
        // Nothing reaches the recorder until published; then all of it,
        // once, however often it is published.
        assert_eq!(value(a_udp).unwrap_or(0), 0);
        publish_query_counts();
        publish_query_counts();
        assert_eq!(value(a_udp), Some(2000));
        assert_eq!(
            value("geosteer_ecs_queries_total{transport=\"udp\"} "),
            Some(2000)
        );
        assert_eq!(
            value("geosteer_dropped_total{transport=\"tcp\"} "),
            Some(20)
        );
        m.record(Transport::Udp, Some(a));
        // A server that stops hands over the rest.
        drop(Arc::into_inner(m));
        assert_eq!(value(a_udp), Some(2001));
    }

    #[test]
    fn top_hosts_only() {
        let names: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
        let c = SteerCounters::with_names("top.test.", names.iter().map(String::as_str), []);
        for (i, n) in [(3u32, 5), (7, 9), (1, 2), (0, 1)] {
            for _ in 0..n {
                c.record(i, &[]);
            }
        }
        let mut out = String::new();
        render_hosts(&mut out, [&c], Some(2));
        let hosts: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("geosteer_steered_answers_total{"))
            .collect();
        assert_eq!(
            hosts,
            [
                "geosteer_steered_answers_total{zone=\"top.test.\",host=\"h3\"} 5",
                "geosteer_steered_answers_total{zone=\"top.test.\",host=\"h7\"} 9",
            ]
        );
        assert!(out.contains("geosteer_steered_zone_answers_total{zone=\"top.test.\"} 17"));
        // Counts carry over to the next build of the zone.
        let again = SteerCounters::with_names("top.test.", names.iter().map(String::as_str), []);
        let mut out = String::new();
        render_hosts(&mut out, [&again], None);
        assert_eq!(out.matches("geosteer_steered_answers_total{").count(), 10);
        assert!(out.contains("host=\"h7\"} 9"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }

    #[test]
    fn indexes_match_the_label_tables() {
        for (i, r) in RCODES.iter().enumerate() {
            assert_eq!(rcode_index(*r), i);
        }
        for (i, (t, _)) in QTYPES.iter().enumerate() {
            assert_eq!(qtype_index(*t), i);
        }
        assert_eq!(qtype_index(999), QTYPES.len());
    }
}
