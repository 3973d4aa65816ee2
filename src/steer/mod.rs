//! Choosing edges: candidates (override nets, rules) → family and health
//! filter → order by great-circle distance → spread by weight.
//!
//! Like gdnsd, three jobs stay apart: *where is the client* ([`locate`]),
//! *which edges are up* ([`crate::health`]), and *failover* (walk the
//! ordered list, skip what can't serve). [`decide`] is pure CPU work and
//! allocates nothing unless a host has more than 16 candidates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;

use crate::geo::{Code, Coords, GeoDb, Location};
use crate::health::{EdgeHealth, Effective};

/// Edges are referred to by their index in [`Steering::edges`].
pub type EdgeIdx = u16;

/// Address family asked for (A or AAAA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// An edge server (or PoP) answers are made of.
#[derive(Debug)]
pub struct Edge {
    pub name: String,
    pub v4: SmallVec<[Ipv4Addr; 2]>,
    pub v6: SmallVec<[Ipv6Addr; 2]>,
    pub coords: Coords,
    /// Precomputed for haversine: latitude and longitude in radians, cos(lat).
    rad: (f64, f64, f64),
    pub weight: u32,
    /// The health check, if any.
    pub check: Option<Arc<crate::health::CheckSpec>>,
    /// Shared with the health checker; carried over across reloads by name.
    pub health: Arc<EdgeHealth>,
}

impl Edge {
    pub fn new(
        name: String,
        v4: SmallVec<[Ipv4Addr; 2]>,
        v6: SmallVec<[Ipv6Addr; 2]>,
        coords: Coords,
        weight: u32,
        check: Option<Arc<crate::health::CheckSpec>>,
        health: Arc<EdgeHealth>,
    ) -> Edge {
        let lat = coords.lat.to_radians();
        Edge {
            name,
            v4,
            v6,
            coords,
            rad: (lat, coords.lon.to_radians(), lat.cos()),
            weight,
            check,
            health,
        }
    }

    pub fn serves(&self, family: Family) -> bool {
        match family {
            Family::V4 => !self.v4.is_empty(),
            Family::V6 => !self.v6.is_empty(),
        }
    }
}

/// A rule matches when every criterion it names matches (empty = any).
#[derive(Debug, Default)]
pub struct Rule {
    pub continent: Vec<Code>,
    pub country: Vec<Code>,
    pub subdivision: Vec<Code>,
    pub asn: Vec<u32>,
    pub edges: Vec<EdgeIdx>,
}

impl Rule {
    fn matches(&self, loc: &Location) -> bool {
        fn one<T: PartialEq + Copy>(want: &[T], have: Option<T>) -> bool {
            want.is_empty() || have.is_some_and(|h| want.contains(&h))
        }
        one(&self.continent, loc.continent)
            && one(&self.country, loc.country)
            && one(&self.subdivision, loc.subdivision)
            && one(&self.asn, loc.asn)
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
    /// Wire-form CNAME target.
    pub fallback: Option<Box<[u8]>>,
    pub all_down: AllDown,
}

/// Where an override net sends its clients.
#[derive(Debug, Clone)]
pub enum NetTarget {
    Location(Location),
    Edges(Vec<EdgeIdx>),
}

/// Override nets, checked before the GeoIP DB; the most specific wins.
#[derive(Debug, Default)]
pub struct Nets {
    /// Sorted by prefix length, longest first, so the first hit wins.
    list: Vec<(IpNet, NetTarget)>,
}

impl Nets {
    pub fn new(mut list: Vec<(IpNet, NetTarget)>) -> Nets {
        list.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Nets { list }
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn lookup(&self, ip: IpAddr) -> Option<&(IpNet, NetTarget)> {
        self.list.iter().find(|(n, _)| n.contains(&ip))
    }

    /// A scope must not cover an override net the client is not in, or a
    /// caching resolver would hand that net our answer. Lengthen `scope`
    /// until the client's block at that length excludes every such net.
    pub fn narrow_scope(&self, addr: IpAddr, scope: u8) -> u8 {
        let mut scope = scope;
        for (net, _) in &self.list {
            if net.prefix_len() <= scope
                || net.contains(&addr)
                || net.network().is_ipv4() != addr.is_ipv4()
            {
                continue;
            }
            let common = common_prefix(addr, net.network());
            if common >= scope {
                scope = (common + 1).min(net.prefix_len());
            }
        }
        scope
    }
}

/// One zone's steering data, from `<zone>.pools.yaml`.
#[derive(Debug, Default)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
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
    fn located(&mut self, _how: Located, _loc: Option<&Location>) {}
    fn rule(&mut self, _rule: Option<usize>) {}
    fn candidate(&mut self, _edge: EdgeIdx, _km: Option<f64>, _state: Effective) {}
}

impl Trace for () {}

/// Where is the client: override nets first, then the database.
pub fn locate<'s>(
    st: &'s Steering,
    geo: Option<&GeoDb>,
    addr: IpAddr,
) -> (Located, Option<Location>, Option<&'s [EdgeIdx]>) {
    // IPv4-mapped, 6to4 and Teredo clients are located as their IPv4
    // address, in the override nets as in the database.
    let addr = crate::geo::normalize(addr);
    if let Some((net, target)) = st.nets.lookup(addr) {
        return match target {
            NetTarget::Location(l) => (Located::Net(*net), Some(*l), None),
            NetTarget::Edges(e) => (Located::Net(*net), None, Some(e)),
        };
    }
    match geo.and_then(|g| g.lookup(addr)) {
        Some(m) => (Located::Db(m.network), Some(m.location), None),
        None => (Located::Unknown, None, None),
    }
}

/// Great-circle distance in km (haversine, mean Earth radius).
fn km(edge: &Edge, client: (f64, f64, f64)) -> f64 {
    let (lat1, lon1, cos1) = edge.rad;
    let (lat2, lon2, cos2) = client;
    let a = ((lat2 - lat1) / 2.0).sin().powi(2) + cos1 * cos2 * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// Spreading granularity: one answer per /24 (IPv4) or /56 (IPv6), the
/// sizes resolvers send as ECS by default.
fn spread_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 56,
    }
}

fn masked_bits(addr: IpAddr, prefix: u8) -> u128 {
    match addr {
        IpAddr::V4(a) => {
            let v = u32::from(a) as u128;
            if prefix == 0 {
                0
            } else {
                v & (u32::MAX << (32 - prefix.min(32))) as u128
            }
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            if prefix == 0 {
                0
            } else {
                v & (u128::MAX << (128 - prefix.min(128)))
            }
        }
    }
}

/// The decisive network's prefix in the client address's own family. An
/// IPv6 client located by its embedded IPv4 address (mapped, 6to4, Teredo)
/// was decided by the bits that hold that IPv4 address.
fn embedded_prefix(client: IpAddr, net: IpNet) -> u8 {
    match (client, net) {
        (IpAddr::V6(a), IpNet::V4(n)) => {
            let offset = if a.segments()[0] == 0x2002 { 16 } else { 96 };
            (offset + n.prefix_len()).min(128)
        }
        _ => net.prefix_len(),
    }
}

/// Length of the common leading bits of two addresses of one family.
fn common_prefix(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros() as u8,
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros() as u8,
        _ => 0,
    }
}

/// SplitMix64 finaliser: a fast, well-mixed, stable hash. Stability across
/// restarts and instances matters (a fleet must agree), so no random seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Clone, Copy)]
struct Cand {
    idx: EdgeIdx,
    km: f64,
    /// 0 up, 1 overloaded, 2 drain.
    tier: u8,
}

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
    let (how, loc, pinned) = locate(st, geo, client.addr);
    trace.located(how, loc.as_ref());

    // 1. Candidates: a pinned net, else the first matching rule, else the host's list.
    let mut rule_hit = None;
    let cands: &[EdgeIdx] = match pinned {
        Some(p) => p,
        None => {
            let hit = loc
                .as_ref()
                .and_then(|l| host.rules.iter().position(|r| r.matches(l)));
            rule_hit = hit;
            hit.map_or(&host.candidates[..], |i| &host.rules[i].edges[..])
        }
    };
    trace.rule(rule_hit);

    let here = loc.and_then(|l| l.coords).map(|c| {
        let lat = c.lat.to_radians();
        (lat, c.lon.to_radians(), lat.cos())
    });

    // 2. Family and health filter.
    let mut list: SmallVec<[Cand; 16]> = SmallVec::new();
    let mut any_family = false;
    for &idx in cands {
        let edge = &st.edges[idx as usize];
        let dist = here.map(|h| km(edge, h));
        let state = edge.health.effective();
        trace.candidate(idx, dist, state);
        if !edge.serves(family) {
            continue;
        }
        any_family = true;
        let tier = match state {
            Effective::Up => 0,
            Effective::Overloaded => 1,
            Effective::Drain => 2,
            Effective::Down => continue,
        };
        list.push(Cand {
            idx,
            km: dist.unwrap_or(0.0),
            tier,
        });
    }
    let mut decision = Decision {
        outcome: Outcome::Edges,
        edges: SmallVec::new(),
        scope: 0,
    };
    if !any_family {
        decision.outcome = Outcome::NoData;
        return decision;
    }
    // A draining edge takes new clients only when nothing else can serve.
    if list.iter().any(|c| c.tier < 2) {
        list.retain(|c| c.tier < 2);
    }
    if list.is_empty() {
        match host.all_down {
            AllDown::Serve => {
                for &idx in cands {
                    let edge = &st.edges[idx as usize];
                    if edge.serves(family) {
                        list.push(Cand {
                            idx,
                            km: here.map_or(0.0, |h| km(edge, h)),
                            tier: 0,
                        });
                    }
                }
            }
            AllDown::Fallback => decision.outcome = Outcome::Fallback,
            AllDown::Servfail => decision.outcome = Outcome::ServFail,
            AllDown::Empty => decision.outcome = Outcome::Empty,
        }
    }

    // 3. Order: healthy first, then by distance; stable, so with no
    // location the configured order stands.
    list.sort_by(|a, b| a.tier.cmp(&b.tier).then(a.km.total_cmp(&b.km)));

    // 4. Spread among the healthy edges within spread_km of the nearest,
    // by weighted rendezvous hashing of the client's network.
    let mut spread_bits = None;
    if host.spread_km > 0.0 && list.len() > 1 && list[0].tier == 0 {
        let limit = list[0].km + host.spread_km;
        let group = list
            .iter()
            .take_while(|c| c.tier == 0 && c.km <= limit)
            .count();
        if group > 1 {
            let prefix = spread_prefix(client.addr).min(client.ecs_source.unwrap_or(u8::MAX));
            let bits = masked_bits(client.addr, prefix);
            let key = mix((bits as u64) ^ mix((bits >> 64) as u64));
            let mut best = 0;
            let mut best_score = f64::INFINITY;
            for (i, c) in list[..group].iter().enumerate() {
                let h = mix(key ^ (c.idx as u64).wrapping_mul(0x9E37_79B9));
                let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let w = st.edges[c.idx as usize].weight.max(1) as f64;
                let score = -u.ln() / w;
                if score < best_score {
                    best_score = score;
                    best = i;
                }
            }
            list[..=best].rotate_right(1);
            spread_bits = Some(prefix);
        }
    }

    for c in list.iter().take(host.answers.max(1) as usize) {
        decision.edges.push(c.idx);
    }

    // 5. ECS scope: how much of the client's address decided this answer.
    // With one possible edge and nothing keyed on location, none of it.
    if let Some(source) = client.ecs_source {
        let depends = !st.nets.is_empty() || !host.rules.is_empty() || list.len() > 1;
        if depends {
            let mut scope = match how {
                Located::Net(n) | Located::Db(n) => embedded_prefix(client.addr, n),
                Located::Unknown => source,
            };
            if let Some(p) = spread_bits {
                scope = scope.max(p);
            }
            decision.scope = st.nets.narrow_scope(client.addr, scope);
        }
    }
    decision
}
