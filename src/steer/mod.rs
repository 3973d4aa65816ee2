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
//! the per-place cache), [`spread`] (sharing among near-equal edges) and
//! [`scope`] (the ECS scope). This file holds the types and [`decide`].

mod candidates;
mod locate;
mod order;
mod scope;
mod spread;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;

pub use candidates::Rule;
pub use locate::{NetTarget, Nets, Place, locate};
pub use order::forget_cached_orders;

use crate::geo::{Coords, GeoDb, Location};
use crate::health::{EdgeHealth, Effective};
use scope::Located4;

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
    /// Position on the unit sphere: ordering by straight-line (chord)
    /// distance equals ordering by great-circle distance, without trig.
    unit: [f64; 3],
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
        Edge {
            name,
            v4,
            v6,
            coords,
            unit: coords.unit(),
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

/// One zone's steering data, from `<zone>.pools.yaml`.
#[derive(Debug)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
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
            uid: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
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
    /// Whether [`Trace::candidate`] wants kilometres; computing them costs
    /// an `asin` per edge that the query path doesn't need.
    const DETAILED: bool = false;
    fn located(&mut self, _how: Located, _loc: Option<&Location>) {}
    fn rule(&mut self, _rule: Option<usize>) {}
    fn candidate(&mut self, _edge: EdgeIdx, _km: Option<f64>, _state: Effective) {}
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
    let at = Located4 {
        raw: client.addr,
        addr,
        offset,
        source,
    };
    // explain's trace wants the decoded location, the query path doesn't.
    let place = if T::DETAILED {
        locate(st, geo, addr)
    } else {
        locate::locate_lazy(st, geo, addr)
    };
    order::with_order(st, host, family, place, geo, addr, |order, place| {
        trace.located(place.how, place.location.as_ref());
        trace.rule(order.rule().map(|r| r as usize));
        if T::DETAILED {
            // Every candidate with its distance and state, for explain.
            let here = place.unit();
            for &idx in candidates::candidates(host, place, order.rule()) {
                let edge = &st.edges[idx as usize];
                let km = here.map(|h| order::km_of(order::chord2(&edge.unit, &h)));
                trace.candidate(idx, km, edge.health.effective());
            }
        }
        choose(
            st,
            host,
            order.list(),
            order.any_family(),
            addr,
            source,
            &at,
            place.how,
        )
    })
}

/// Picks from the candidates in metric order: health first, then the
/// spreading hash, then `answers` of them.
#[allow(clippy::too_many_arguments)]
fn choose(
    st: &Steering,
    host: &Host,
    order: &[(EdgeIdx, f64)],
    any_family: bool,
    addr: IpAddr,
    source: Option<u8>,
    at: &Located4,
    how: Located,
) -> Decision {
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
    if host.spread_km <= 0.0 && candidates::all_up_prefix(st, order, wanted, &mut decision.edges) {
        decision.scope = at.scope(st, how, None);
        return decision;
    }
    let mut list = candidates::by_health(st, order);
    if list.is_empty() {
        match host.all_down {
            AllDown::Serve => {
                list.extend(
                    order
                        .iter()
                        .map(|&(idx, d)| candidates::Cand { idx, d, tier: 0 }),
                )
            }
            AllDown::Fallback => decision.outcome = Outcome::Fallback,
            AllDown::Servfail => decision.outcome = Outcome::ServFail,
            AllDown::Empty => decision.outcome = Outcome::Empty,
        }
    }
    let spread_bits = spread::spread(st, host, &mut list, addr, source);
    for c in list.iter().take(wanted) {
        decision.edges.push(c.idx);
    }
    // ECS scope: how much of the client's address decided this answer.
    // With one possible edge and nothing keyed on location, none of it.
    if !st.nets.is_empty() || !host.rules.is_empty() || list.len() > 1 {
        decision.scope = at.scope(st, how, spread_bits);
    }
    decision
}
