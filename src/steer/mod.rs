//! Choosing edges: candidates (override nets, rules) → family and health
//! filter → order by great-circle distance → spread by weight.
//!
//! Like gdnsd, three jobs stay apart: *where is the client* ([`locate`]),
//! *which edges are up* ([`crate::health`]), and *failover* (walk the
//! ordered list, skip what can't serve). [`decide`] is pure CPU work and
//! allocates nothing unless a host has more than 16 candidates.
//!
//! One job per module: [`locate`] (override nets, the GeoIP database),
//! [`candidates`] (rules, the health filter), [`order`] (metric order and
//! the per-place cache), [`spread`] (sharing among near-equal edges),
//! [`scope`] (the ECS scope) and [`flat`] (the database's IPv4 networks and
//! the RTT prefixes in one table, so locating an RTT-steered client is one
//! lookup). This file holds the types and [`decide`].

mod candidates;
mod flat;
pub mod learned;
mod locate;
mod order;
pub mod rtt;
mod scope;
mod spread;
mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;

pub use candidates::Rule;
pub use learned::{Learned, LearnedHit, LearnedRow, Which};
pub use locate::{NetTarget, Nets, Place, locate};
pub use order::{Class, Ranked, forget_cached_orders};
pub use rtt::{RttKey, RttTable};
pub use table::OrderTable;

use crate::geo::{Coords, GeoDb, Location};
use crate::health::{EdgeHealth, Effective};
use rtt::Rows;
use scope::Located4;

/// Edges are referred to by their index in [`Steering::edges`].
pub type EdgeIdx = u16;

/// Address family asked for (A or AAAA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

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

/// What to answer when no candidate edge can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllDown {
    /// Answer as if all were up (fail open, as gdnsd does).
    #[default]
    Serve,
    /// Answer the host's `fallback` CNAME.
    Fallback,
    Servfail,
    /// NOERROR with no records (fail closed).
    Empty,
}

/// A steered name.
#[derive(Debug)]
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

/// One zone's steering data, from `<zone>.pools.yaml` and `<zone>.rtt.csv`.
#[derive(Debug)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
    /// Measured RTTs (empty without an RTT file). Shared, so a what-if copy
    /// of the steering (the status page) costs no copy of a 1M-row table.
    pub rtt: Arc<RttTable>,
    /// Every host's order per GeoIP record, made with the snapshot
    /// ([`Steering::precompute`]).
    orders: Option<Box<OrderTable>>,
    /// The database's IPv4 networks and the RTT prefixes in one table, made
    /// with the snapshot when there are IPv4 prefix rows ([`flat`]).
    flat: Option<Box<flat::Flat4>>,
    /// Learned RTT rows (RUM), published by the aggregator for this
    /// steering; live, beside the snapshot ([`learned`]).
    pub learned: learned::Slot,
    /// Unique per instance, so cached orders never outlive their steering.
    uid: u64,
}

impl Steering {
    pub fn new(edges: Vec<Edge>, hosts: Vec<Host>, nets: Nets) -> Steering {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Steering {
            edges,
            hosts,
            nets,
            rtt: Arc::default(),
            orders: None,
            flat: None,
            learned: learned::Slot::default(),
            uid: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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

    /// Computes every host's order for every record of `geo` (see
    /// [`OrderTable`]); decisions on another database compute theirs per
    /// query. Returns how many distinct orders it kept.
    ///
    /// With IPv4 RTT prefixes it also flattens them with the database's
    /// IPv4 networks, so an IPv4 client's record and RTT key are one lookup.
    pub fn precompute(&mut self, geo: Option<&GeoDb>) -> usize {
        self.orders = geo.and_then(|g| OrderTable::build(self, g)).map(Box::new);
        self.flat = geo
            .and_then(|g| flat::Flat4::build(&self.rtt, g))
            .map(Box::new);
        self.orders.as_ref().map_or(0, |t| t.orders())
    }

    /// How many ranges the flattened IPv4 table holds (0: none built).
    pub fn flat_ranges(&self) -> usize {
        self.flat.as_ref().map_or(0, |f| f.len())
    }

    fn flat(&self) -> Option<&flat::Flat4> {
        self.flat.as_deref()
    }

    /// The same steering with RTT data: a new instance, so no order cached
    /// without it is used.
    pub fn with_rtt(self, rtt: Arc<RttTable>) -> Steering {
        let mut st = Steering::new(self.edges, self.hosts, self.nets);
        st.rtt = rtt;
        st
    }
}

impl Default for Steering {
    fn default() -> Steering {
        Steering::new(Vec::new(), Vec::new(), Nets::default())
    }
}

/// The address being located and how we got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    /// The ECS source prefix when `addr` came from ECS; None for the
    /// packet's source address.
    pub ecs_source: Option<u8>,
}

/// What kind of answer steering wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Addresses of `Decision::edges`.
    Edges,
    /// CNAME to this partner CDN's target (`Edge::cname`); `edges` holds it
    /// alone.
    Partner(EdgeIdx),
    /// No candidate has an address of this family.
    NoData,
    /// CNAME to the host's fallback.
    Fallback,
    ServFail,
    Empty,
}

/// The result of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Chosen edges, best first; at most `answers` of them.
    pub edges: SmallVec<[EdgeIdx; 8]>,
    /// ECS scope prefix for the response.
    pub scope: u8,
}

/// Where the location came from, for `explain`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located {
    /// An override net from the pools file.
    Net(IpNet),
    /// The GeoIP database's matched network.
    Db(IpNet),
    /// Neither knows this address.
    Unknown,
}

/// Observes a decision; `()` observes nothing and costs nothing. `explain`
/// records everything through this, so it runs the server's code path.
pub trait Trace {
    /// Whether the trace wants the detail the query path doesn't need
    /// (kilometres per candidate, share weights): computing it costs.
    const DETAILED: bool = false;
    fn located(&mut self, _how: Located, _loc: Option<&Location>) {}
    fn rule(&mut self, _rule: Option<usize>) {}
    fn candidate(&mut self, _edge: EdgeIdx, _km: Option<f64>, _state: Effective) {}
    /// The RTT key that matched and its rows (fastest first), if any.
    fn rtt(&mut self, _key: Option<(&RttKey, &[(EdgeIdx, f32)])>) {}
    /// Learned rows (RUM) decided: `key` of `learned`'s `which` table.
    fn learned(&mut self, _learned: &Learned, _which: Which, _key: u32) {}
    /// Whether learned rows take part (the status page turns them off to
    /// see which clients they moved).
    const LEARNED: bool = true;
    /// The candidates in order, before health.
    fn ranked(&mut self, _order: &[Ranked]) {}
    /// `partner_share` decided: the subnet's draw in (0, 1] against it.
    fn partner_split(&mut self, _share: f64, _draw: f64, _to_partner: bool) {}
    /// A cost margin reordered these candidates (cheapest first).
    fn cost(&mut self, _margin: f64, _group: &[EdgeIdx]) {}
    /// Near-equal edges shared clients with these weights; `chosen` won.
    fn shares(&mut self, _weights: &[(EdgeIdx, f64)], _chosen: EdgeIdx) {}
}

impl Trace for () {}

/// Chooses the edges for one query. Pure: the same inputs give the same
/// decision, on every instance of a fleet.
pub fn decide<T: Trace>(
    st: &Steering,
    host: &Host,
    geo: Option<&GeoDb>,
    client: Client,
    family: Family,
    trace: &mut T,
) -> Decision {
    // A zone without an RTT file gets its own copy of the path, with every
    // RTT step compiled out: carried along as empty values, they cost each
    // steered query 20 to 40 instructions for nothing. Learned rows are RTT
    // rows too.
    let learned = if T::LEARNED { st.learned.load() } else { None };
    match learned.as_ref().and_then(|g| g.as_deref()) {
        None if st.rtt.is_empty() => {
            decide_in::<T, false>(st, host, geo, client, family, None, trace)
        }
        l => decide_in::<T, true>(st, host, geo, client, family, l, trace),
    }
}

/// [`decide`], for a steering with RTT rows (`RTT`) or without.
#[inline(always)]
fn decide_in<T: Trace, const RTT: bool>(
    st: &Steering,
    host: &Host,
    geo: Option<&GeoDb>,
    client: Client,
    family: Family,
    learned: Option<&Learned>,
    trace: &mut T,
) -> Decision {
    // An IPv4 client inside an IPv6 address (v4-mapped, 6to4, Teredo) is
    // steered as that IPv4 address, as the GeoIP lookup already locates it:
    // override nets, spreading and the scope then work in its IPv4 bits, and
    // the scope is put back into IPv6 bits at the end. An override net
    // written for the IPv6 address itself still wins.
    let (mut addr, mut offset) = locate::embedded_v4(client.addr);
    if offset != 0 && st.nets.lookup(client.addr).is_some() {
        (addr, offset) = (client.addr, 0);
    }
    let source = client.ecs_source.map(|s| {
        if offset > 0 {
            s.saturating_sub(offset).min(32)
        } else {
            s
        }
    });
    // The place and the most specific RTT prefix (one lookup when the
    // snapshot flattened them); a key the location implies is found with
    // the order, once per place. explain's trace wants the decoded
    // location, the query path doesn't.
    let mut rtt = locate::RttSide::default();
    let flat = if T::DETAILED || !RTT || st.flat.is_none() {
        None
    } else {
        locate::locate_flat(st, geo, addr, &mut rtt)
    };
    let mut place = match flat {
        Some(place) => place,
        None if T::DETAILED => locate(st, geo, addr),
        None => locate::locate_lazy(st, geo, addr),
    };
    if RTT && rtt.at.is_none() {
        rtt.at = st.rtt.at(addr);
    }
    // Learned rows compete with the file's prefixes as one more prefix.
    let mut pick = learned::Pick {
        rows: None,
        scope_at: None,
    };
    if RTT && let Some(l) = learned {
        let file_len = rtt.at.and_then(|a| a.hit).and_then(|h| h.prefix);
        pick = l.pick(addr, client.ecs_source.is_some(), file_len);
        if let Some((table, key, _, _)) = pick.rows {
            rtt.rows = Some(Rows::of_key(table, key));
        }
    }
    if RTT
        && let Some(rows) = &rtt.rows
        && !host.plain
    {
        // It reads every row; fetch them while the order is found.
        rows.prefetch();
    }
    let rest = Rest {
        st,
        host,
        rows: rtt.rows,
        learned: pick
            .rows
            .zip(learned)
            .map(|((_, key, which, _), l)| (l, key, which)),
        at: Located4 {
            raw: client.addr,
            addr,
            offset,
            source,
            rtt: rtt.at,
            learned: pick.scope_at,
            learned_len: pick.rows.map_or(0, |r| r.3),
        },
    };
    if !T::DETAILED
        && let Some(o) = order::precomputed(st, host, family, &mut place, geo)
    {
        return rest.decide::<T, RTT>(&order::OrderRef::Cached(o), &place, trace);
    }
    order::with_order(
        st,
        host,
        family,
        place,
        geo,
        addr,
        T::DETAILED,
        |ord, place| rest.decide::<T, RTT>(ord, place, trace),
    )
}

/// What [`decide_in`] knows of the client once it is located: the rest of
/// the decision needs only the order of its candidates on top.
struct Rest<'a, 's> {
    st: &'s Steering,
    host: &'a Host,
    /// The rows of the most specific RTT prefix the client is in, as far
    /// as the flattened table keeps them (or the learned rows that won).
    rows: Option<Rows<'a>>,
    /// The learned key whose rows decide, if learned rows won.
    learned: Option<(&'a Learned, u32, Which)>,
    at: Located4<'a>,
}

impl Rest<'_, '_> {
    /// The decision on the candidates in `ord`, for the client at `place`.
    #[inline(always)]
    fn decide<T: Trace, const RTT: bool>(
        &self,
        ord: &order::OrderRef<'_>,
        place: &Place<'_>,
        trace: &mut T,
    ) -> Decision {
        let st = self.st;
        trace.located(place.how, place.location.as_ref());
        trace.rule(ord.rule().map(|r| r as usize));
        // The winning RTT key: a prefix, else what the location implies.
        let key = if RTT {
            let prefix = self.at.rtt.and_then(|a| a.hit);
            prefix.map(|h| h.key).or(ord.rtt())
        } else {
            None
        };
        let rows = match (self.rows, key) {
            (Some(rows), _) => rows,
            (None, Some(k)) => Rows::of_key(&st.rtt, k),
            _ => Rows::none(&st.rtt),
        };
        if T::DETAILED {
            // Every candidate with its distance and state, for explain.
            let here = place.unit();
            for &idx in candidates::candidates(self.host, place, ord.rule()) {
                let edge = &st.edges[idx as usize];
                let km = here
                    .zip(edge.unit)
                    .map(|(h, e)| order::km_of(order::chord2(&e, &h)));
                trace.candidate(idx, km, edge.health.effective());
            }
            match self.learned {
                Some((l, k, which)) => {
                    let table = match which {
                        Which::Client => &l.clients,
                        Which::Resolver => &l.resolvers,
                    };
                    trace.rtt(Some((table.key(k), rows.all())));
                    trace.learned(l, which, k);
                }
                None => trace.rtt(key.map(|k| (st.rtt.key(k), rows.all()))),
            }
            trace.ranked(&order::merge_rtt(st, ord.base(), &rows));
        }
        choose::<T, RTT>(
            st,
            self.host,
            ord.base(),
            &rows,
            ord.any_family(),
            &self.at,
            place.how,
            trace,
        )
    }
}

/// Picks from the candidates in metric order: health first, then the
/// partner split, the cost margin and the capacity shares, then `answers`
/// of them (a partner answers alone, with its CNAME).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn choose<T: Trace, const RTT: bool>(
    st: &Steering,
    host: &Host,
    base: order::Base<'_>,
    rows: &Rows<'_>,
    any_family: bool,
    at: &Located4<'_>,
    how: Located,
    trace: &mut T,
) -> Decision {
    let (addr, source) = (at.addr, at.source);
    let mut decision = Decision {
        outcome: Outcome::Edges,
        edges: SmallVec::new(),
        scope: 0,
    };
    if !any_family {
        decision.outcome = Outcome::NoData;
        // NODATA depends on where the client is when a net or a rule chose
        // the candidates: elsewhere the same name may have addresses.
        if !st.nets.is_empty() || !host.rules.is_empty() {
            decision.scope = at.scope(st, how, None);
        }
        return decision;
    }
    let wanted = usize::from(host.answers.max(1));
    // Candidates with an RTT row first; the plain host's common case reads
    // only the first few of them. Without RTT rows in the zone, `rows` is
    // known empty at compile time.
    let no_rows = !RTT || rows.is_empty();
    let plain = host.plain
        && if no_rows {
            candidates::all_up_prefix(st, base.list.iter().copied(), wanted, &mut decision.edges)
        } else {
            let order = order::RttFirst::new(st, base, rows);
            candidates::all_up_prefix(st, order, wanted, &mut decision.edges)
        };
    if plain {
        decision.scope = at.scope(st, how, None);
        return decision;
    }
    // The health filter reads the merge as it goes: no merged list is
    // built (nor copied) for it.
    let mut list = if no_rows {
        candidates::by_health(st, base.list.iter().copied())
    } else {
        candidates::by_health(st, order::RttFirst::new(st, base, rows))
    };
    if list.is_empty() {
        match host.all_down {
            AllDown::Serve => list
                .extend(order::RttFirst::new(st, base, rows).map(|r| candidates::Cand::new(&r, 0))),
            AllDown::Fallback => decision.outcome = Outcome::Fallback,
            AllDown::Servfail => decision.outcome = Outcome::ServFail,
            AllDown::Empty => decision.outcome = Outcome::Empty,
        }
    }
    let split_bits = spread::partner_split(st, host, &mut list, addr, source, trace);
    spread::cost_first(st, host, &mut list, trace);
    let spread_bits = spread::spread(st, host, &mut list, addr, source, trace);
    match list.first() {
        Some(c) if st.edges[c.idx as usize].is_partner() => {
            decision.outcome = Outcome::Partner(c.idx);
            decision.edges.push(c.idx);
        }
        _ => decision.edges.extend(
            list.iter()
                .filter(|c| !st.edges[c.idx as usize].is_partner())
                .take(wanted)
                .map(|c| c.idx),
        ),
    }
    // ECS scope: how much of the client's address decided this answer.
    // With one possible edge and nothing keyed on location, none of it.
    if !st.nets.is_empty() || !host.rules.is_empty() || list.len() > 1 {
        decision.scope = at.scope(st, how, split_bits.max(spread_bits));
    }
    decision
}
