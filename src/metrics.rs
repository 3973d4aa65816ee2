//! Prometheus metrics. Handles are created once (at start-up or snapshot
//! build), never per query: the query path only bumps atomics.
//!
//! Metrics observe answers without knowing how they are made: the query
//! counters read an [`Answered`], which the server fills from the answer
//! core's summary, and the reload gauges take the snapshot's numbers, so
//! this module imports neither `dns` nor `snapshot`.

use std::sync::OnceLock;
use std::time::SystemTime;

use metrics::{Counter, Gauge, counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::net::Transport;
use crate::steer::{EdgeIdx, Steering};
use crate::wire::*;

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

/// HELP text for the series the query path and reloads own; the net and
/// health modules' series render without HELP (still valid text format).
fn describe() {
    use metrics::{describe_counter, describe_gauge};
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
        "geosteer_steered_answers_total",
        "Steered answers by zone and host"
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

/// Per-query counters, by transport × qtype × rcode.
pub struct QueryMetrics {
    /// [transport][qtype (last = other)][rcode]
    queries: Vec<Counter>,
    truncated: [Counter; 2],
    ecs: [Counter; 2],
    dropped: [Counter; 2],
}

impl QueryMetrics {
    pub fn new() -> QueryMetrics {
        let mut queries = Vec::new();
        for t in [Transport::Udp, Transport::Tcp] {
            for q in QTYPES.iter().map(|q| q.1).chain(["other"]) {
                for r in RCODES {
                    queries.push(counter!("geosteer_queries_total", "transport" => t.as_str(), "qtype" => q, "rcode" => r.as_str()));
                }
            }
        }
        let per = |name: &'static str| {
            [Transport::Udp, Transport::Tcp].map(|t| counter!(name, "transport" => t.as_str()))
        };
        QueryMetrics {
            queries,
            truncated: per("geosteer_truncated_total"),
            ecs: per("geosteer_ecs_queries_total"),
            dropped: per("geosteer_dropped_total"),
        }
    }

    /// Counts one handled packet.
    #[inline]
    pub fn record(&self, transport: Transport, answered: Option<Answered<'_>>) {
        let t = transport as usize;
        let Some(s) = answered else {
            self.dropped[t].increment(1);
            return;
        };
        let idx =
            (t * (QTYPES.len() + 1) + qtype_index(s.qtype)) * RCODES.len() + rcode_index(s.rcode);
        self.queries[idx].increment(1);
        if s.truncated {
            self.truncated[t].increment(1);
        }
        if s.ecs {
            self.ecs[t].increment(1);
        }
        if let Some((counters, host, edges)) = s.steered {
            counters.record(host, edges);
        }
    }
}

/// Steered-answer counters of one zone, made when the zone is built, so
/// the query path indexes a `Vec` instead of formatting labels. Series with
/// the same labels share one atomic across reloads (the recorder keys them
/// by name and labels), so counts carry over.
#[derive(Default)]
pub struct SteerCounters {
    hosts: Vec<Counter>,
    edges: Vec<Counter>,
}

impl SteerCounters {
    pub fn new(zone: &str, steering: &Steering) -> SteerCounters {
        let zone = zone.to_string();
        SteerCounters {
            hosts: steering
                .hosts
                .iter()
                .map(|h| counter!("geosteer_steered_answers_total", "zone" => zone.clone(), "host" => h.name.clone()))
                .collect(),
            edges: steering
                .edges
                .iter()
                .map(|e| counter!("geosteer_steered_edge_answers_total", "zone" => zone.clone(), "edge" => e.name.clone()))
                .collect(),
        }
    }

    /// Counts one steered answer for `host` made of `edges`.
    #[inline]
    pub fn record(&self, host: u32, edges: &[EdgeIdx]) {
        if let Some(c) = self.hosts.get(host as usize) {
            c.increment(1);
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
