//! Choosing edges: where is the client (override nets and RTT prefixes,
//! then the GeoIP database) → which candidates (override net, rule, host)
//! → in what order (ranked per point of the database, RTT rows first) →
//! which can serve (health, load) → spread by weight.
//!
//! Like gdnsd, three jobs stay apart: *where is the client* ([`locate`]),
//! *which edges are up* ([`crate::health`]), and *failover* (walk the
//! ordered list, skip what can't serve). State comes in three layers, each
//! rebuilt only when its own inputs change:
//!
//! - the database stage, [`crate::geo::GeoDb`]: the database's networks as
//!   address ranges of one location, and the locations' points;
//! - the files stage, [`Steering`] (the pools and RTT files, over one
//!   database stage): the override nets and RTT prefixes merged into one
//!   range table ([`overlay`]), the candidate groups, and the zone's edges
//!   ranked for every point of the database ([`ranks`]);
//! - the live layer ([`live`]): health, load and admin state per edge, and
//!   a slot for learned RTT rows, read per query and never rebuilt.
//!
//! One module per job: [`types`] (the shared vocabulary), [`overlay`],
//! [`rtt`] (the RTT file's rows), [`ranks`] (orders), [`candidates`]
//! (rules and the health filter), [`spread`] (sharing among near-equal
//! edges), [`scope`] (the ECS scope), [`live`], and [`decide`], the one
//! decision every caller (the query path, `explain`, the status page)
//! runs. This file holds the edges, hosts and the files stage.

mod candidates;
mod decide;
pub mod live;
mod overlay;
mod ranks;
pub mod rtt;
mod scope;
mod spread;
mod types;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use smallvec::SmallVec;

pub use candidates::Rule;
pub use decide::{decide, locate};
pub use live::{Learned, Live};
pub use overlay::{NetTarget, Nets};
pub use rtt::RttTable;
pub use types::{
    AllDown, Class, Client, Decision, EdgeIdx, Family, Located, Outcome, Place, Ranked, RttKey,
    Trace,
};

use crate::geo::{Coords, GeoDb};
use crate::health::EdgeHealth;
use overlay::Overlay;
use ranks::{Group, Ranks};

/// An edge server (or PoP) answers are made of, or a partner CDN answered
/// with a CNAME.
#[derive(Debug)]
pub struct Edge {
    pub name: String,
    pub v4: SmallVec<[Ipv4Addr; 2]>,
    pub v6: SmallVec<[Ipv6Addr; 2]>,
    /// None for a partner CDN, which has no place on the map.
    pub coords: Option<Coords>,
    /// Position on the unit sphere: ordering by straight-line (chord)
    /// distance equals ordering by great-circle distance, without trig.
    unit: Option<[f64; 3]>,
    pub weight: u32,
    /// Route 53's geoproximity bias, -99..99: the ordering metric (km or
    /// ms) is multiplied by `1 - bias/100`.
    pub bias: i8,
    /// What serving from here costs (default 1); see `cost_margin_*`.
    pub cost: f64,
    /// Relative capacity for shares among near-equal edges (None: `weight`).
    pub capacity: Option<f64>,
    /// A partner CDN's CNAME target (wire form); such an edge has no
    /// addresses of its own.
    pub cname: Option<Box<[u8]>>,
    /// Addresses a partner's health check probes (a CNAME has none).
    pub probe: Vec<IpAddr>,
    /// The health check, if any.
    pub check: Option<Arc<crate::health::CheckSpec>>,
    /// Shared with the health checker; carried over across reloads by name.
    pub health: Arc<EdgeHealth>,
}

impl Edge {
    /// The same edge with another health record and no check: what-if
    /// views decide with it without touching the real state.
    pub fn with_health(&self, health: Arc<EdgeHealth>) -> Edge {
        Edge {
            name: self.name.clone(),
            v4: self.v4.clone(),
            v6: self.v6.clone(),
            coords: self.coords,
            unit: self.unit,
            weight: self.weight,
            bias: self.bias,
            cost: self.cost,
            capacity: self.capacity,
            cname: self.cname.clone(),
            probe: self.probe.clone(),
            check: None,
            health,
        }
    }

    /// An edge of our own at `coords`, unbiased, cost 1, capacity by weight.
    pub fn new(
        name: String,
        v4: SmallVec<[Ipv4Addr; 2]>,
        v6: SmallVec<[Ipv6Addr; 2]>,
        coords: Coords,
        weight: u32,
        check: Option<Arc<crate::health::CheckSpec>>,
        health: Arc<EdgeHealth>,
    ) -> Edge {
        Edge {
            name,
            v4,
            v6,
            coords: Some(coords),
            unit: Some(coords.unit()),
            weight,
            bias: 0,
            cost: 1.0,
            capacity: None,
            cname: None,
            probe: Vec::new(),
            check,
            health,
        }
    }

    /// A partner CDN answered with a CNAME to `target` (wire form).
    pub fn partner(
        name: String,
        target: Box<[u8]>,
        weight: u32,
        check: Option<Arc<crate::health::CheckSpec>>,
        health: Arc<EdgeHealth>,
    ) -> Edge {
        Edge {
            coords: None,
            unit: None,
            cname: Some(target),
            ..Edge::new(
                name,
                SmallVec::new(),
                SmallVec::new(),
                Coords::default(),
                weight,
                check,
                health,
            )
        }
    }

    pub fn is_partner(&self) -> bool {
        self.cname.is_some()
    }

    /// Whether the edge can answer a family: an address of it, or a CNAME.
    pub fn serves(&self, family: Family) -> bool {
        self.is_partner()
            || match family {
                Family::V4 => !self.v4.is_empty(),
                Family::V6 => !self.v6.is_empty(),
            }
    }

    /// The addresses its health check probes.
    pub fn probe_addresses(&self) -> Vec<IpAddr> {
        if self.is_partner() {
            return self.probe.clone();
        }
        self.v4
            .iter()
            .map(|a| IpAddr::from(*a))
            .chain(self.v6.iter().map(|a| IpAddr::from(*a)))
            .collect()
    }

    /// Its point on the unit sphere (None for a partner).
    pub(crate) fn unit(&self) -> Option<[f64; 3]> {
        self.unit
    }

    /// The factor bias puts on the ordering metric.
    pub(crate) fn scale(&self) -> f64 {
        // A product, not `/ 100`: this is read per RTT row on the query path.
        1.0 - f64::from(self.bias) * 0.01
    }

    /// The weight of a share among near-equal edges: capacity (or weight)
    /// times the idle fraction when the load is known, so an idle edge
    /// takes clients from a busy one before it overloads.
    pub fn share_weight(&self) -> f64 {
        let base = self.capacity.unwrap_or(f64::from(self.weight.max(1)));
        match self.health.load() {
            Some(load) => base * (1.0 - load).max(0.001),
            None => base,
        }
    }
}

/// A steered name.
#[derive(Debug, Clone)]
pub struct Host {
    /// Relative name as configured (`www`), for logs, metrics and explain.
    pub name: String,
    pub candidates: Vec<EdgeIdx>,
    pub rules: Vec<Rule>,
    pub answers: u8,
    pub ttl: u32,
    pub spread_km: f64,
    /// Edges within this many ms of the best by RTT share clients.
    pub spread_ms: f64,
    /// Among candidates within this margin of the best, the cheapest wins
    /// (0: off); km for distance order, ms for RTT order.
    pub cost_margin_km: f64,
    pub cost_margin_ms: f64,
    /// Fraction of clients (by subnet hash) sent to healthy partners even
    /// when own edges are up; None: partners only rank by RTT or last.
    pub partner_share: Option<f64>,
    /// Wire-form CNAME target.
    pub fallback: Option<Box<[u8]>>,
    pub all_down: AllDown,
    /// No spreading, cost margin or partner split: the first live
    /// candidates in order are the answer. Set by [`Host::finish`], once
    /// with the host, as every steered query asks.
    pub(crate) plain: bool,
    /// Choosing reads the candidates' kilometres (spreading or weighing
    /// cost by distance), which a bare order leaves out. Set by
    /// [`Host::finish`].
    pub(crate) reads_km: bool,
    /// Its candidates' group in [`Steering`], set by [`Steering::new`].
    pub(crate) group: u32,
}

impl Host {
    /// The host with what its queries ask of its shape worked out.
    pub(crate) fn finish(mut self) -> Host {
        self.plain = self.spread_km <= 0.0
            && self.spread_ms <= 0.0
            && self.cost_margin_km <= 0.0
            && self.cost_margin_ms <= 0.0
            && self.partner_share.is_none();
        self.reads_km = self.spread_km > 0.0 || self.cost_margin_km > 0.0;
        self
    }
}

/// One zone's steering data, from `<zone>.pools.yaml` and `<zone>.rtt.csv`:
/// the files stage, built against one database stage.
#[derive(Debug)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
    /// Measured RTTs (empty without an RTT file). Shared: the reloader
    /// keeps a table while its file is unchanged, and a what-if copy of
    /// the steering (the status page) costs no copy of a 1M-row table.
    pub rtt: Arc<RttTable>,
    /// Every distinct candidate list (hosts', rules', pinning nets').
    groups: Vec<Group>,
    /// Per net of [`Nets::list`]: the group it pins, or [`NO_GROUP`].
    net_groups: Box<[u32]>,
    /// The nets and the RTT prefixes in one range table per family.
    overlay: Overlay,
    /// The edges ranked for every point of the database the steering was
    /// made for ([`Steering::precompute`]).
    ranks: Option<Arc<Ranks>>,
    /// Live state beyond each edge's own health: learned RTT rows.
    live: Arc<Live>,
    /// [`Steering::edges_id`].
    edges_id: u64,
}

/// [`Steering::net_groups`] of a net that places clients rather than
/// pinning edges.
const NO_GROUP: u32 = u32::MAX;

impl Steering {
    pub fn new(edges: Vec<Edge>, mut hosts: Vec<Host>, nets: Nets) -> Steering {
        let mut groups: Vec<Group> = Vec::new();
        let mut ids: std::collections::HashMap<Vec<EdgeIdx>, u32> = Default::default();
        let mut group = |list: &[EdgeIdx]| -> u32 {
            *ids.entry(list.to_vec()).or_insert_with(|| {
                groups.push(Group::new(list, &edges));
                groups.len() as u32 - 1
            })
        };
        for h in &mut hosts {
            h.group = group(&h.candidates);
            for r in &mut h.rules {
                r.group = group(&r.edges);
            }
        }
        let net_groups = nets
            .list()
            .iter()
            .map(|(_, t)| match t {
                NetTarget::Edges(e) => group(e),
                NetTarget::Location(_) => NO_GROUP,
            })
            .collect();
        let rtt = Arc::<RttTable>::default();
        Steering {
            overlay: Overlay::build(&nets, &rtt),
            edges_id: edges_id(&edges),
            edges,
            hosts,
            nets,
            rtt,
            groups,
            net_groups,
            ranks: None,
            live: Arc::default(),
        }
    }

    /// The CNAME a steered answer with `outcome` is made of: the host's
    /// fallback, or a partner CDN's target; `None` for other outcomes.
    pub fn cname_for<'s>(&'s self, host: &'s Host, outcome: Outcome) -> Option<&'s [u8]> {
        match outcome {
            Outcome::Fallback => host.fallback.as_deref(),
            Outcome::Partner(e) => self.edges[e as usize].cname.as_deref(),
            _ => None,
        }
    }

    /// The addresses of `v4` and `v6` edges, in order: an HTTPS/SVCB
    /// record's `ipv4hint` and `ipv6hint`.
    pub fn hint_addresses(
        &self,
        v4: &[EdgeIdx],
        v6: &[EdgeIdx],
    ) -> (SmallVec<[Ipv4Addr; 8]>, SmallVec<[Ipv6Addr; 8]>) {
        let a4 = v4
            .iter()
            .flat_map(|&e| self.edges[e as usize].v4.iter().copied())
            .collect();
        let a6 = v6
            .iter()
            .flat_map(|&e| self.edges[e as usize].v6.iter().copied())
            .collect();
        (a4, a6)
    }

    /// Ranks the edges for every point of `geo` (see [`ranks`]): the part
    /// of the files stage that depends on the database stage and the
    /// edges' places, shared with any steering in use ranked from the same
    /// (a pools edit that moves no edge ranks nothing). Decisions
    /// with another database compute their orders per query. Returns the
    /// bytes the ranks hold.
    pub fn precompute(&mut self, geo: Option<&GeoDb>) -> usize {
        self.ranks = geo.and_then(|g| Ranks::shared(g, &self.edges));
        self.ranks.as_ref().map_or(0, |r| r.bytes())
    }

    /// Whether both steerings read the same ranks (one was lent the
    /// other's: no edge moved between them).
    pub fn shares_ranks(&self, other: &Steering) -> bool {
        match (&self.ranks, &other.ranks) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The same steering with RTT data: its prefixes merged with the nets.
    pub fn with_rtt(mut self, rtt: Arc<RttTable>) -> Steering {
        self.overlay = Overlay::build(&self.nets, &rtt);
        self.rtt = rtt;
        self
    }

    /// The same steering reading `live` (a zone's live layer, kept across
    /// reloads by whoever builds the steering).
    pub fn with_live(mut self, live: Arc<Live>) -> Steering {
        self.live = live;
        self
    }

    /// The live layer decisions read: where learned RTT rows are plugged in.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// An identity of the edge list (names, in order): learned rows refer
    /// to edges by index, valid only for the list they were learned with.
    pub fn edges_id(&self) -> u64 {
        self.edges_id
    }

    /// Candidate group `g`.
    fn group(&self, g: u32) -> &Group {
        &self.groups[g as usize]
    }
}

/// [`Steering::edges_id`] of `edges`.
fn edges_id(edges: &[Edge]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in edges {
        e.name.hash(&mut h);
    }
    h.finish()
}

impl Default for Steering {
    fn default() -> Steering {
        Steering::new(Vec::new(), Vec::new(), Nets::default())
    }
}
